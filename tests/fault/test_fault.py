#!/usr/bin/env python3
"""Fault injection: what crnn does when the disk fills up, a file it reads is cut short or
removed, an allocation of its own fails, or the numbers go wrong. Every case ends in a clear
error (a message naming the file or the place, non-zero exit), never a crash or a hang, with the
checkpoint written before intact and nothing else lost.

Run as `test_fault.py <case>`; CRNN_BIN names the build folder, which also holds the shims
libcrnn_failalloc.so and libcrnn_faultfs.so (tests/fault/*.c, built unless CRNN_SANITIZE).
CRNN_FAULT_NO_MOUNT=1 makes disk_full use the shim even where it could mount a tmpfs.
Exit status 77 (ctest SKIP) when a case cannot run here, with the reason."""
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import BIN, Skip, expect_error, make_text, must, prog, run, run_case  # noqa: E402

import h5py  # noqa: E402
import numpy as np  # noqa: E402

SANITIZED = os.environ.get("CRNN_SANITIZE") == "1"


def shim(name):
    path = os.path.join(BIN, f"libcrnn_{name}.so")
    if SANITIZED:
        raise Skip(f"the {name} shim replaces libc functions that AddressSanitizer owns; "
                   "this case runs in the build without CRNN_SANITIZE")
    if not os.path.exists(path):
        raise Skip(f"{path} was not built")
    return path


def digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def assert_loads(ck):
    """The checkpoint is whole: crnn-sample and crnn-eval read it, h5py sees finite params."""
    must([prog("crnn-sample"), ck, "-length", 10, "-gpu", -1])
    out = must([prog("crnn-eval"), ck, "-gpu", -1])
    assert "val loss = " in out, out
    with h5py.File(ck, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and name.startswith("params/"):
                assert np.all(np.isfinite(obj[()])), f"{ck}: {name} is not finite"
        f.visititems(visit)


def no_crash(rc, err, what):
    """A clean exit: 0, or non-zero with an error message; never a signal or a sanitizer."""
    assert rc >= 0, f"{what}: killed by signal {-rc}\n{err}"
    assert rc not in (23, 124, 134, 139), f"{what}: exit {rc} (sanitizer/abort/crash)\n{err}"
    if rc != 0:
        assert "error:" in err, f"{what}: exit {rc} without an error message: {err!r}"


class Case:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="crnn-fault-")
        self.txt = os.path.join(self.dir, "t.txt")
        self.h5 = os.path.join(self.dir, "t.h5")
        self.json = os.path.join(self.dir, "t.json")
        make_text(self.txt, n_chars=6000)
        must([prog("crnn-preprocess"), "--input_txt", self.txt, "--output_h5", self.h5,
              "--output_json", self.json, "--quiet"])

    def train_args(self, name, *extra, h5=None):
        return [prog("crnn-train"), "-input_h5", h5 or self.h5, "-input_json", self.json,
                "-gpu", -1, "-batch_size", 2, "-seq_length", 8, "-rnn_size", 16,
                "-num_layers", 1, "-wordvec_size", 8, "-print_every", 0,
                "-checkpoint_name", name if os.path.isabs(name) else os.path.join(self.dir, name),
                *extra]

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# A full disk

def mount_tmpfs(path, size):
    """A tmpfs of `size` at path; False when this container may not mount."""
    if os.geteuid() != 0 or not shutil.which("mount") or os.environ.get("CRNN_FAULT_NO_MOUNT"):
        return False
    os.makedirs(path, exist_ok=True)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path],
                       capture_output=True)
    return p.returncode == 0


def full_disk(c, env, ckdir):
    """crnn-train checkpoints every 2 iterations into ckdir, which fills up: it stops with a
    message naming the checkpoint, the earlier checkpoints load, and no .tmp is left."""
    rc, out, err = run(c.train_args(os.path.join(ckdir, "ck"), "-max_iters", 400,
                                    "-checkpoint_every", 2), env=env)
    no_crash(rc, err, "crnn-train on a full disk")
    assert rc != 0, f"crnn-train did not notice the full disk:\n{out}"
    assert "ck_" in err and ".h5" in err, f"the message does not name the checkpoint: {err}"
    assert "space" in err or "disk" in err or "No space" in err, f"no hint of the cause: {err}"
    left = sorted(os.listdir(ckdir))
    assert not [f for f in left if f.endswith(".tmp")], f"temporary files left: {left}"
    cks = sorted(glob.glob(os.path.join(ckdir, "ck_[0-9]*.h5")),
                 key=lambda p: int(p.rsplit("_", 1)[1][:-3]))
    assert cks, f"not even the first checkpoint was written: {left}\n{err}"
    for ck in cks:
        assert_loads(ck)
    # it goes on from the newest one once there is space (here: another folder)
    more = os.path.join(c.dir, "more")
    os.makedirs(more)
    last = int(cks[-1].rsplit("_", 1)[1][:-3])
    out = must(c.train_args(os.path.join(more, "ck"), "-resume", cks[-1], "-max_iters", last + 2,
                            "-checkpoint_every", 2))
    assert os.path.exists(os.path.join(more, f"ck_{last + 2}.h5")), out

    # crnn-preprocess into the full folder: a clear error, and no half output
    for name in os.listdir(ckdir):
        if name.startswith("ck_") and name.endswith(".json"):
            os.remove(os.path.join(ckdir, name))  # leave just enough room for nothing useful
    big = os.path.join(c.dir, "big.txt")
    make_text(big, n_chars=400000, seed=2)
    out_h5, out_json = os.path.join(ckdir, "big.h5"), os.path.join(ckdir, "big.json")
    rc, out, err = run([prog("crnn-preprocess"), "--input_txt", big, "--output_h5", out_h5,
                        "--output_json", out_json, "--quiet"], env=env)
    no_crash(rc, err, "crnn-preprocess on a full disk")
    assert rc != 0 and "big.h5" in err, f"crnn-preprocess into a full folder: {rc}\n{err}"
    left = os.listdir(ckdir)
    assert not [f for f in left if f.startswith("big.")], f"crnn-preprocess left {left}"


def preprocess_budgets(c, lib):
    """crnn-preprocess into a folder with room for 0 B .. 12 kB: each run fails naming the
    file, leaves no output and does not crash (HDF5 1.10 crashed at exit after a failed write
    before crnn-preprocess reserved the file's space)."""
    out = os.path.join(c.dir, "small")
    os.makedirs(out)
    for budget in (0, 400, 800, 2000, 4000, 12000):
        env = dict(os.environ, LD_PRELOAD=lib, CRNN_FAULTFS_DIR=out, CRNN_FAULTFS_BYTES=str(budget))
        rc, _, err = run([prog("crnn-preprocess"), "--input_txt", c.txt, "--output_h5",
                          os.path.join(out, "p.h5"), "--output_json", os.path.join(out, "p.json"),
                          "--quiet"], env=env)
        no_crash(rc, err, f"crnn-preprocess with {budget} bytes free")
        assert rc != 0 and "p.h5" in err, f"{budget} bytes free: {rc} {err}"
        assert not os.listdir(out), f"{budget} bytes free: left {os.listdir(out)}"


def case_disk_full(c):
    mnt = os.path.join(c.dir, "mnt")
    if not SANITIZED and os.path.exists(os.path.join(BIN, "libcrnn_faultfs.so")):
        preprocess_budgets(c, shim("faultfs"))
    if mount_tmpfs(mnt, "160k"):
        try:
            print("a 160 KiB tmpfs")
            full_disk(c, None, mnt)
        finally:
            subprocess.run(["umount", "-l", mnt])
        return
    lib = shim("faultfs")
    print("cannot mount a tmpfs here; writes fail with ENOSPC through the faultfs shim")
    os.makedirs(mnt)
    env = dict(os.environ, LD_PRELOAD=lib, CRNN_FAULTFS_DIR=mnt, CRNN_FAULTFS_BYTES="160000")
    full_disk(c, env, mnt)


# ---------------------------------------------------------------------------------------------
# Files that are cut short or go away

def case_read_fail(c):
    must(c.train_args("base", "-max_iters", 4, "-checkpoint_every", 2))
    ck2, ck4 = (os.path.join(c.dir, f"base_{i}.h5") for i in (2, 4))
    data = open(c.h5, "rb").read()

    # the data file truncated, emptied or removed before a resume
    cut = os.path.join(c.dir, "cut.h5")
    for size in (len(data) // 2, 100, 0):
        open(cut, "wb").write(data[:size])
        expect_error(c.train_args("r", "-resume", ck4, "-max_iters", 6, h5=cut), "cut.h5")
    os.remove(cut)
    expect_error(c.train_args("r", "-resume", ck4, "-max_iters", 6, h5=cut), "cut.h5")
    assert not glob.glob(os.path.join(c.dir, "r_*")), "a failed resume wrote files"

    # the data file truncated while training runs: crnn holds its data in memory, so the run
    # either finishes or stops with an error; never a crash, and its checkpoints load
    live = os.path.join(c.dir, "live.h5")
    shutil.copy(c.h5, live)
    p = subprocess.Popen([str(a) for a in c.train_args("live", "-max_iters", 3000,
                                                       "-checkpoint_every", 50, h5=live)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)
        os.truncate(live, 64)
        out, err = p.communicate(timeout=240)
    finally:
        if p.poll() is None:
            p.kill()
    no_crash(p.returncode, err, "crnn-train with its data truncated")
    # and its resume reads the truncated file: a clear error
    done = sorted(glob.glob(os.path.join(c.dir, "live_[0-9]*.h5")))
    if done:
        expect_error(c.train_args("live", "-resume", done[0], "-max_iters", 4000, h5=live), "live.h5")

    # a truncated checkpoint: sample, eval and resume say so; -resume auto takes the one before
    good = digest(ck2)
    blob = open(ck4, "rb").read()
    open(ck4, "wb").write(blob[: len(blob) // 2])
    for args in ([prog("crnn-sample"), ck4, "-gpu", -1], [prog("crnn-eval"), ck4, "-gpu", -1],
                 c.train_args("x", "-resume", ck4, "-max_iters", 6)):
        expect_error(args, "base_4.h5")
    out = must(c.train_args("base", "-resume", "auto", "-max_iters", 4, "-checkpoint_every", 2))
    assert "base_2.h5" in out, f"-resume auto did not fall back to base_2.h5:\n{out}"
    assert digest(ck2) == good
    assert_loads(ck4)  # rewritten whole by the resumed run


# ---------------------------------------------------------------------------------------------
# Allocations of crnn's own code that fail

LOSS = re.compile(r"loss = ([-+0-9.eE]+|nan|inf)")


def same_results(base, out, what):
    """A run that survived a failed allocation (a fallback took over) computed what the
    undisturbed one did: its losses within 1e-4 relative (a fallback may sum in another
    order), and otherwise (sampled text) the same output."""
    lb, lo = [float(v) for v in LOSS.findall(base)], [float(v) for v in LOSS.findall(out)]
    if lb:
        assert len(lb) == len(lo) and all(abs(a - b) <= 1e-4 * abs(b) for a, b in zip(lo, lb)), \
            f"{what}: the run succeeded with other losses: {lo} against {lb}"
    else:
        assert out == base, f"{what}: the run succeeded with another output:\n{out!r}\nagainst\n{base!r}"


def sweep(lib, name, args, every, check=None):
    """Runs args once counting crnn's allocations, then once per allocation N (every `every`-th
    one) with the N-th failing; each run must succeed with the undisturbed run's results or fail
    with an out-of-memory message."""
    count_file = os.path.join(tempfile.gettempdir(), f"crnn-failalloc-{os.getpid()}")
    env = dict(os.environ, LD_PRELOAD=lib, CRNN_FAILALLOC_COUNT=count_file)
    if os.path.exists(count_file):
        os.remove(count_file)
    base = must(args, env=env)
    counts = [int(x) for x in open(count_file).read().split()]
    os.remove(count_file)
    total = max(counts)
    failed = 0
    problems = []
    for n in range(1, total + 1, every):
        env = dict(os.environ, LD_PRELOAD=lib, CRNN_FAILALLOC_N=str(n))
        try:
            rc, out, err = run(args, env=env, timeout=60)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{name}: hangs when allocation {n} fails")
        try:
            no_crash(rc, err, f"{name} with allocation {n} failing")
            if rc != 0:
                failed += 1
                # the thread pool's allocations fail as "cannot start N threads"
                assert re.search(r"memory|cannot start \d+ threads", err), \
                    f"{name}, allocation {n} failing: the message does not say memory: {err!r}"
            else:
                same_results(base, out, f"{name} with allocation {n} failing")
            if check:
                check(n)
        except AssertionError as e:  # go on, to list every failing allocation at once
            problems.append(str(e))
    print(f"{name}: {total} allocations of crnn's own, every {every}-th failed in turn "
          f"({failed} runs stopped with an out-of-memory error)")
    assert not problems, "\n".join(problems)


def case_alloc(c):
    lib = shim("failalloc")
    must(c.train_args("base", "-max_iters", 2, "-checkpoint_every", 2))
    ck = os.path.join(c.dir, "base_2.h5")
    good = digest(ck)
    every = int(os.environ.get("CRNN_FAILALLOC_EVERY", "1"))

    def intact(n):
        assert digest(ck) == good, f"allocation {n}: the previous checkpoint changed"
        left = [f for f in os.listdir(c.dir) if f.endswith(".tmp")]
        assert not left, f"allocation {n}: temporary files left: {left}"
        for f in glob.glob(os.path.join(c.dir, "next_*.h5")):
            with h5py.File(f, "r") as h:  # whatever it wrote is whole
                assert h.attrs["format"] == "crnn-checkpoint"
            os.remove(f)

    sweep(lib, "crnn-train -resume", c.train_args("next", "-resume", ck, "-max_iters", 4,
                                                  "-checkpoint_every", 2), every, intact)
    sweep(lib, "crnn-sample", [prog("crnn-sample"), ck, "-length", 20, "-gpu", -1], every)
    sweep(lib, "crnn-eval", [prog("crnn-eval"), ck, "-gpu", -1], every)
    out_h5, out_json = os.path.join(c.dir, "p.h5"), os.path.join(c.dir, "p.json")

    def whole(n):
        if os.path.exists(out_h5) or os.path.exists(out_json):
            assert os.path.exists(out_h5) and os.path.exists(out_json), \
                f"allocation {n}: crnn-preprocess left one output"
            os.remove(out_h5)
            os.remove(out_json)
        assert not glob.glob(os.path.join(c.dir, "*.tmp")), f"allocation {n}: .tmp left"

    sweep(lib, "crnn-preprocess", [prog("crnn-preprocess"), "--input_txt", c.txt, "--output_h5",
                                   out_h5, "--output_json", out_json, "--quiet"], 1, whole)


def case_resume_nomem(c):
    """-resume auto falls back to an older checkpoint only when the newer one is corrupt: when
    memory runs short while the newest is read, the run stops with an out-of-memory error naming
    it, and never resumes from the older one. Each of crnn's allocations fails in turn (as in
    case_alloc); a run that survives one must have resumed from the newest.
    Needs train.c's find_resume_checkpoint to skip a checkpoint only when crnn_error_kind() of
    its error is CRNN_ERR_CORRUPT (tests/fault_resume.cmake registers it disabled until then)."""
    lib = shim("failalloc")
    must(c.train_args("base", "-max_iters", 4, "-checkpoint_every", 2))
    newest, older = (os.path.join(c.dir, f"base_{i}.h5") for i in (4, 2))
    args = c.train_args("base", "-resume", "auto", "-max_iters", 4, "-checkpoint_every", 2)
    count_file = os.path.join(c.dir, "count")
    out = must(args, env=dict(os.environ, LD_PRELOAD=lib, CRNN_FAILALLOC_COUNT=count_file))
    assert "resuming from " + newest in out, out
    total = max(int(x) for x in open(count_file).read().split())
    every = int(os.environ.get("CRNN_FAILALLOC_EVERY", "1"))
    problems, stopped_reading = [], 0
    for n in range(1, total + 1, every):
        rc, out, err = run(args, env=dict(os.environ, LD_PRELOAD=lib, CRNN_FAILALLOC_N=str(n)), timeout=60)
        try:
            no_crash(rc, err, f"-resume auto with allocation {n} failing")
            assert "resuming from " + older not in out and "skipping" not in out, \
                f"allocation {n} failing: -resume auto fell back to the older checkpoint:\n{out}\n{err}"
            if rc != 0:
                assert re.search(r"memory|cannot start \d+ threads", err), \
                    f"allocation {n} failing: the message does not say memory: {err!r}"
                stopped_reading += "base_4.h5" in err and "memory" in err
            else:
                assert "resuming from " + newest in out, f"allocation {n} failing: {out}"
        except AssertionError as e:
            problems.append(str(e))
    print(f"-resume auto: {total} allocations of crnn's own, every {every}-th failed in turn; "
          f"{stopped_reading} runs stopped reading the newest checkpoint")
    assert not problems, "\n".join(problems[:5]) + f"\n({len(problems)} in all)"
    assert stopped_reading > 0, "no failed allocation stopped the reading of the newest checkpoint"


# ---------------------------------------------------------------------------------------------
# Numbers that go wrong

def case_numbers(c):
    must(c.train_args("base", "-max_iters", 2, "-checkpoint_every", 2))
    ck = os.path.join(c.dir, "base_2.h5")
    # a NaN or an Inf in the parameters of a checkpoint: every reader names the array
    for bad, name in ((np.nan, "params/decoder/W"), (np.inf, "params/rnn/0/W_h")):
        poisoned = os.path.join(c.dir, "poisoned.h5")
        shutil.copy(ck, poisoned)
        with h5py.File(poisoned, "r+") as f:
            a = f[name][()]
            a.flat[3] = bad
            f[name][...] = a
        for args in ([prog("crnn-sample"), poisoned, "-gpu", -1],
                     [prog("crnn-eval"), poisoned, "-gpu", -1],
                     c.train_args("p", "-resume", poisoned, "-max_iters", 4),
                     c.train_args("p", "-init_from", poisoned, "-max_iters", 4)):
            expect_error(args, "poisoned.h5", name, "non-finite")
        assert not glob.glob(os.path.join(c.dir, "p_*")), "a run from a poisoned file wrote files"
    # NaN in the optimizer moments of a checkpoint: resume refuses it
    poisoned = os.path.join(c.dir, "poisoned.h5")
    shutil.copy(ck, poisoned)
    with h5py.File(poisoned, "r+") as f:
        v = f["optim/v"][()]
        v[0] = np.nan
        f["optim/v"][...] = v
    expect_error(c.train_args("p", "-resume", poisoned, "-max_iters", 4), "poisoned.h5", "optim/v")
    # data that is not token indices (floats with a NaN) is refused, naming the file and split
    floats = os.path.join(c.dir, "floats.h5")
    with h5py.File(c.h5, "r") as src, h5py.File(floats, "w") as dst:
        for split in ("train", "val", "test"):
            a = src[split][()].astype(np.float32)
            if a.size:
                a[0] = np.nan
            dst[split] = a
    expect_error(c.train_args("f", "-max_iters", 2, h5=floats), "floats.h5", "/train")
    # a learning rate so large that training diverges: stopped, naming the iteration, and no
    # checkpoint holds a non-finite value
    rc, out, err = run(c.train_args("lr", "-max_iters", 200, "-learning_rate", 1e6,
                                    "-grad_clip", 0, "-checkpoint_every", 1))
    no_crash(rc, err, "crnn-train -learning_rate 1e6")
    if rc == 0:
        print("note: -learning_rate 1e6 did not make the loss non-finite in 200 iterations")
    else:
        assert "iteration" in err and "-learning_rate" in err, err
    for f in glob.glob(os.path.join(c.dir, "lr_*.h5")):
        with h5py.File(f, "r") as h:
            def visit(name, obj):
                if isinstance(obj, h5py.Dataset) and obj.dtype.kind == "f":
                    assert np.all(np.isfinite(obj[()])), f"{f}: {name} holds a non-finite value"
            h.visititems(visit)


CASES = {k[5:]: v for k, v in globals().items() if k.startswith("case_")}

if __name__ == "__main__":
    run_case(CASES, make_case=Case)
