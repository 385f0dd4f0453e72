"""The harness every Python test of crnn imports (tests/README.md).

Finding and running the programs (BIN from $CRNN_BIN, prog, run, must, expect_error,
expect_status), a case's workspace (Case: a temporary folder with a small preprocessed text and
train_args for a small crnn-train), the main of a case script (run_case: `script.py CASE`),
ctest's skip (SKIP, Skip, skip), temporary folders (tempdir), checks that report every failure
rather than stopping at the first (check, failures, check_exit: check.h's CHECK for Python), and
reading what the programs print and write (losses, val_losses, params_of, read_jsonl, close,
norm_rel), the parity tests' Workspace (prose_text, binary) and a local Slurm (Slurm). A case
that stops at its first failure simply asserts."""
import contextlib
import json
import os
import pty
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
BIN = os.environ.get("CRNN_BIN", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build"))
TIMEOUT = 300
LOCAL_SLURM = os.path.join(ROOT, "tests", "slurm", "local_slurm.sh")
# the exit status ctest counts as a skip (SKIP_RETURN_CODE 77 in tests/*.cmake)
SKIP = 77


class Skip(Exception):
    """Raised where the machine lacks what a case needs; run_case turns it into SKIP."""


def skip(why):
    """Ends the script as skipped, saying why."""
    print(f"SKIP: {why}")
    sys.exit(SKIP)


failures = 0


def check(cond, what):
    """Counts a failure and prints it when cond does not hold; the script goes on."""
    global failures
    if not cond:
        failures += 1
        print("check failed:", what, file=sys.stderr, flush=True)
    return bool(cond)


def check_exit(name):
    """The end of a script of checks: prints the summary and gives the exit status (0 or 1)."""
    if failures:
        print(f"{name}: {failures} check(s) failed", file=sys.stderr)
        return 1
    print(f"{name}: all checks passed")
    return 0


@contextlib.contextmanager
def tempdir(prefix="crnn-test-"):
    """A temporary folder, removed with what it holds at the end of the with-block."""
    d = tempfile.mkdtemp(prefix=prefix)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def prog(name):
    return os.path.join(BIN, name)


def run(args, timeout=TIMEOUT, **kw):
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, **kw)
    return p.returncode, p.stdout, p.stderr


def must(args, **kw):
    rc, out, err = run(args, **kw)
    if rc != 0:
        raise AssertionError(f"{' '.join(map(str, args))} failed ({rc}):\n{out}\n{err}")
    return out


def run_raw(args):
    """stdout as printed (text mode would turn carriage returns into newlines)."""
    p = subprocess.run([str(a) for a in args], capture_output=True, timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    return p.stdout.decode("utf-8", "replace")


def run_in_pty(args, timeout=120):
    """Runs args with stdout on a pseudo-terminal; returns (exit status, everything printed)."""
    master, slave = pty.openpty()
    p = subprocess.Popen([str(a) for a in args], stdout=slave, stderr=subprocess.PIPE)
    os.close(slave)
    chunks, deadline = [], time.time() + timeout
    while time.time() < deadline:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed its side
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    p.wait(timeout=60)
    return p.returncode, b"".join(chunks).decode("utf-8", "replace")


def expect_error(args, *needles, rc_ok=lambda rc: rc != 0):
    rc, out, err = run(args)
    assert rc_ok(rc), f"expected failure, got {rc}: {out}\n{err}"
    assert "error:" in err, f"no error message: {err!r}"
    for n in needles:
        assert n in err, f"expected {n!r} in the message: {err!r}"
    assert "Traceback" not in err and "Segmentation" not in err
    return err


def expect_status(args, status, *needles, **kw):
    """Runs args; expects exit status `status`, and for a failure an error message holding each
    needle. Returns (stdout, stderr)."""
    rc, out, err = run(args, **kw)
    assert rc == status, f"{' '.join(map(str, args))}: exit {rc}, expected {status}\n{out}\n{err}"
    if status != 0:
        assert "error:" in err, f"no error message: {err!r}"
    for n in needles:
        assert n in err, f"expected {n!r} in the message: {err!r}"
    assert "Traceback" not in err and "Segmentation" not in err
    return out, err


def make_text(path, n_chars=20000, seed=1):
    rng = random.Random(seed)
    words = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "and", "cat",
             "runs", "away", "from", "home", "to", "sea", "ship", "sails", "north", "at", "dawn"]
    out = []
    n = 0
    while n < n_chars:
        line = " ".join(rng.choice(words) for _ in range(rng.randint(3, 9))).capitalize() + ".\n"
        out.append(line)
        n += len(line)
    with open(path, "w") as f:
        f.write("".join(out)[:n_chars])


class Case:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="crnn-cli-")
        self.txt = os.path.join(self.dir, "t.txt")
        self.h5 = os.path.join(self.dir, "t.h5")
        self.json = os.path.join(self.dir, "t.json")
        make_text(self.txt)
        must([prog("crnn-preprocess"), "--input_txt", self.txt, "--output_h5", self.h5,
              "--output_json", self.json, "--quiet"])

    def train_args(self, name, *extra):
        return [prog("crnn-train"), "-input_h5", self.h5, "-input_json", self.json, "-gpu", "-1",
                "-batch_size", 4, "-seq_length", 16, "-rnn_size", 24, "-num_layers", 2,
                "-wordvec_size", 8, "-checkpoint_name", os.path.join(self.dir, name), *extra]

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def run_case(cases, make_case=None):
    """The main of the test scripts: runs the case named by argv[1] in a fresh Case (or what
    make_case() gives: an object with close()). A case that returns SKIP (or raises Skip) ends
    the script with status 77, which ctest counts as skipped (SKIP_RETURN_CODE 77 in the test's
    .cmake)."""
    if len(sys.argv) != 2 or sys.argv[1] not in cases:
        sys.exit(f"usage: {os.path.basename(sys.argv[0])} CASE, one of: {' '.join(sorted(cases))}")
    name = sys.argv[1]
    c = (make_case or Case)()
    try:
        rc = cases[name](c)
    except Skip as e:
        print(f"SKIP: {e}")
        rc = SKIP
    finally:
        c.close()
    if rc == SKIP:
        sys.exit(SKIP)
    print(f"{name}: ok")


def losses_by_iteration(out):
    """{iteration: training loss} as crnn-train prints them."""
    return {int(m.group(1)): float(m.group(2)) for m in re.finditer(r"i = (\d+) / \d+, loss = (\S+),", out)}


def losses(out):
    return [float(m.group(2)) for m in re.finditer(r"i = (\d+) / \d+, loss = (\S+),", out)]


def val_losses(out):
    return [float(x) for x in re.findall(r"val loss = (\S+)", out)]


def params_of(path):
    with h5py.File(path, "r") as f:
        out = {}
        f["params"].visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
        return out


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def stop_with_signal(c, args, sig):
    """Starts a long crnn-train, sends sig once it has printed iteration 5, and checks that it
    stopped with status 75 after writing <prefix>_<i>.h5 ("sig" prefix). Returns i."""
    p = subprocess.Popen([str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, line = time.time() + 60, ""
        while "i = 5 /" not in line and time.time() < deadline:
            line = p.stdout.readline()
        p.send_signal(sig)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 75, f"exit {p.returncode}\n{out}\n{err}"
    m = re.search(r"stopped by a signal at iteration (\d+)", out)
    assert m, out
    it = int(m.group(1))
    assert os.path.exists(os.path.join(c.dir, f"sig_{it}.h5")), out
    return it


def refused_while_running(c, start_a, start_b, holder_host):
    """start_a: the command of a long run A; start_b: a second start on A's checkpoint name.
    B must exit 1 within seconds naming A's host and pid, and touch nothing of A's: its metrics
    keep every record and grow on, its checkpoints stay as they were. Returns A's Popen, still
    running."""
    a = subprocess.Popen([str(x) for x in start_a], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = os.path.join(c.dir, "lock_metrics.jsonl")
    deadline = time.time() + 60
    while time.time() < deadline:
        assert a.poll() is None, a.communicate()
        if os.path.exists(metrics) and open(metrics).read().count('"train"') >= 12:
            break
        time.sleep(0.05)
    before = open(metrics).read()
    ckpts = {f: os.stat(os.path.join(c.dir, f)).st_mtime_ns for f in os.listdir(c.dir) if f.startswith("lock_1")}
    assert ckpts, os.listdir(c.dir)
    t0 = time.time()
    b = subprocess.run([str(x) for x in start_b], capture_output=True, text=True, timeout=60)
    took = time.time() - t0
    assert b.returncode == 1, (b.returncode, b.stdout, b.stderr)
    assert took < 10, f"the refusal took {took:.1f} s"
    holder = open(os.path.join(c.dir, "lock.lock")).read()
    assert f"host {holder_host}, pid " in holder, holder
    assert "another crnn-train is writing this run" in b.stderr and holder.strip() in b.stderr, b.stderr
    after = open(metrics).read()
    assert after.startswith(before), "the second start changed the running job's metrics"
    for f, t in ckpts.items():
        assert os.stat(os.path.join(c.dir, f)).st_mtime_ns == t, f"the second start touched {f}"
    return a


def close(a, b, rel):
    """Every element of a within rel (relative) of b's."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.all(np.abs(a - b) <= rel * np.abs(b))


def norm_rel(pa, pb):
    """The relative difference in norm of two parameter dicts (params_of)."""
    num = sum(float(np.sum((pa[k].astype(np.float64) - pb[k]) ** 2)) for k in pa)
    den = sum(float(np.sum(pb[k].astype(np.float64) ** 2)) for k in pb)
    return (num / den) ** 0.5


# --------------------------------------------------------------------------------------------
# Parity with the PyTorch reference (test_parity.py, test_optim_parity.py): a workspace whose
# text has ~50 distinct characters, and the reference's view of its data and checkpoints

WORDS = ("the of and to in that it was his her with for as had you not be he she on at by "
         "which from this but have all were they are one so said when there what we would "
         "their them him my me then out up into no could like more over time little old man "
         "night queen king crown sword river mountain crystal journey shadow quiet jumping "
         "fox lazy dog brown vexed wizard zephyr quick buzz jinx").split()
NAMES = ["Anna", "Bertram", "Clara", "Dmitri", "Elena", "Fjodor", "Gustav", "Hugo", "Iris",
         "Katja", "Leo", "Marie", "Otto", "Petra", "The", "Wilhelm", "Yusuf", "Zoë"]
EXTRA = ["café", "naïve", "über"]


def binary(name):
    """prog(name), which must be built."""
    path = prog(name)
    if not os.access(path, os.X_OK):
        raise AssertionError("%s is not built (looked in CRNN_BIN=%s)" % (name, BIN))
    return path


def prose_text(seed=7, chars=6000):
    """Pseudo-prose, ~50 distinct characters including three non-ASCII code points."""
    rng = np.random.default_rng(seed)
    out, n = [], 0
    while n < chars:
        words = [NAMES[rng.integers(len(NAMES))]]
        for _ in range(int(rng.integers(4, 14))):
            pool = EXTRA if rng.random() < 0.03 else WORDS
            w = pool[rng.integers(len(pool))]
            if rng.random() < 0.08:
                w += ","
            words.append(w)
        s = " ".join(words) + str(rng.choice([".", ".", ".", "!", "?", ";", ":"]))
        s += "\n" if rng.random() < 0.25 else " "
        out.append(s)
        n += len(s)
    return "".join(out)


class Workspace:
    """A temporary folder with prose_text, .h5 and .json made by crnn-preprocess, its splits and
    vocabulary as torch_reference reads them (splits, idx_to_token, token_to_idx, V), and random
    checkpoints written by torch_reference (checkpoint). CRNN_PARITY_KEEP=1 keeps the folder."""

    def __init__(self, seed=7, chars=6000):
        self.dir = tempfile.mkdtemp(prefix="crnn-parity-")
        self.txt = os.path.join(self.dir, "data.txt")
        self.h5 = os.path.join(self.dir, "data.h5")
        self.json = os.path.join(self.dir, "data.json")
        self.text = prose_text(seed, chars)
        with open(self.txt, "w", encoding="utf-8") as f:
            f.write(self.text)
        must([binary("crnn-preprocess"), "--input_txt", self.txt, "--output_h5", self.h5,
              "--output_json", self.json])
        import torch_reference as ref  # imports torch: only the parity tests pay for it
        self.splits, self.idx_to_token, self.token_to_idx = ref.load_data(self.h5, self.json)
        self.V = len(self.idx_to_token)

    def path(self, name):
        return os.path.join(self.dir, name)

    def checkpoint(self, name, D, H, L, seed, **kw):
        """Random weights (ref.init_params; cell= picks lstm, gru or rnn) as a checkpoint."""
        import torch_reference as ref
        params = ref.init_params(self.V, D, H, L, seed=seed, **kw)
        path = self.path(name)
        ref.write_checkpoint(path, params, self.idx_to_token, L)
        return path

    def close(self):
        if os.environ.get("CRNN_PARITY_KEEP"):
            print("kept %s" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# A local Slurm (tests/slurm/local_slurm.sh) for test_slurm.py and test_install.py

class Slurm:
    """A local Slurm for one case: start() or Skip, stop() always. nodes: that many emulated
    hosts as its nodes (tests/cluster), else this machine as its one node."""

    def __init__(self, nodes=None):
        self.nodes = nodes
        self.dir = tempfile.mkdtemp(prefix="crnn-slurm-")
        self.env = dict(os.environ, SLURM_CONF=os.path.join(self.dir, "slurm.conf"),
                        PATH=os.environ["PATH"] + ":/usr/sbin", CRNN_ROOT=ROOT)

    def start(self):
        p = subprocess.run([LOCAL_SLURM, "start", self.dir, *([str(self.nodes)] if self.nodes else [])],
                           capture_output=True, text=True, timeout=120)
        if p.returncode == SKIP:
            raise Skip(p.stderr.strip() or p.stdout.strip())
        assert p.returncode == 0, f"local_slurm.sh start failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"
        # the nodes' subnet for Open MPI's TCP (sbatch passes the environment on to the jobs)
        for line in open(os.path.join(self.dir, "env")):
            for kv in line.split()[1:]:
                k, v = kv.split("=", 1)
                if k.startswith("OMPI_MCA_"):
                    self.env[k] = v

    def stop(self):
        p = subprocess.run([LOCAL_SLURM, "stop", self.dir], capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            print(f"local_slurm.sh stop: {p.returncode}\n{p.stdout}\n{p.stderr}")
        shutil.rmtree(self.dir, ignore_errors=True)

    def logs(self):
        out = []
        for name in ("slurmctld.log", "slurmd.log", "slurmd.h1.log", "slurmd.h2.log"):
            path = os.path.join(self.dir, name)
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    out.append(f"--- {name} (end)\n" + "".join(f.readlines()[-30:]))
        return "\n".join(out)

    def cmd(self, args, timeout=30, **kw):
        env = dict(self.env, **kw.pop("env", {}))
        p = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, env=env, **kw)
        assert p.returncode == 0, f"{' '.join(map(str, args))} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"
        return p.stdout

    def sbatch(self, args, env=None, cwd=None):
        return int(self.cmd(["sbatch", "--parsable", *args], env=env or {}, cwd=cwd).strip().split(";")[0])

    def job(self, j):
        """scontrol's fields of job j (completed jobs stay MinJobAge = 600 s)."""
        out = self.cmd(["scontrol", "-o", "show", "job", str(j)])
        return dict(kv.split("=", 1) for kv in out.split() if "=" in kv)

    def wait(self, j, states, timeout=120, what=""):
        deadline = time.time() + timeout
        while time.time() < deadline:
            info = self.job(j)
            if info["JobState"] in states:
                return info
            time.sleep(0.5)
        raise AssertionError(f"job {j} is {info['JobState']} after {timeout} s, not {states} {what}\n{info}\n{self.logs()}")
