#!/usr/bin/env python3
"""Data-parallel training under mpirun: P ranks x B streams against 1 rank x P*B, exact resume
at the same P, resume on another P, SIGUSR1 through mpirun, and a rank killed with SIGKILL.

Run as `test_mpi.py <case>`; CRNN_BIN names the build folder."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from harness import close, losses, make_text, must, norm_rel, params_of, prog, run_case, stop_with_signal, val_losses  # noqa: E402

MPIRUN = ["mpirun", "--oversubscribe", "--bind-to", "none"]


def mpi(n, args):
    return [*MPIRUN, "-np", str(n), *[str(a) for a in args]]


def case_np2_vs_np1(c):
    common = ("-max_iters", 50, "-checkpoint_every", 0, "-seq_length", 16, "-print_every", 1)
    # dropout's masks follow the global stream, so they too are the same on 1 and 2 ranks
    for mode, extra in (("overlap", ()), ("flat", ()), ("dropout", ("-dropout", 0.4))):
        allreduce = "flat" if mode == "flat" else "overlap"
        # 1 x 50 streams against 2 x 25; 20 batches an epoch, so the run crosses two epoch ends
        one = must(c.train_args(f"one_{mode}", *common, *extra, "-batch_size", 50, "-allreduce", allreduce))
        two = must(mpi(2, c.train_args(f"two_{mode}", *common, *extra, "-batch_size", 25, "-allreduce", allreduce)))
        l1, l2 = losses(one), losses(two)
        assert len(l1) == len(l2) == 50, (len(l1), len(l2), two)
        if mode == "overlap":  # the communication thread reduces the same buckets the same way
            without = must(mpi(2, c.train_args("two_nothread", *common, "-batch_size", 25, "-allreduce", "overlap")),
                           env=dict(os.environ, CRNN_COMM_THREAD="0"))
            assert losses(without) == l2, f"with and without the communication thread:\n{l2}\n{losses(without)}"
        assert close(l2, l1, 1e-5), f"{mode}: per-iteration losses differ:\n{l1}\n{l2}"
        p1 = params_of(os.path.join(c.dir, f"one_{mode}_50.h5"))
        p2 = params_of(os.path.join(c.dir, f"two_{mode}_50.h5"))
        err = norm_rel(p2, p1)
        assert err < 1e-5, f"{mode}: final parameters differ by {err:.3g} in norm"
        with h5py.File(os.path.join(c.dir, f"two_{mode}_50.h5")) as f:
            assert f["state/data"].attrs["streams"] == 50
            assert f["state/hidden/0/h"].shape == (50, 24)
        with h5py.File(os.path.join(c.dir, f"one_{mode}_50.h5")) as f1, h5py.File(os.path.join(c.dir, f"two_{mode}_50.h5")) as f2:
            # every stream's final state, gathered from both ranks in stream order
            d = np.max(np.abs(f2["state/hidden/1/h"][()] - f1["state/hidden/1/h"][()]))
            assert d < 1e-4, f"{mode}: gathered hidden states differ by {d:.3g}"
        # only rank 0 prints progress
        assert len(re.findall(r"^crnn-train: lstm", two, re.M)) == 1, two


def case_shared_memory(c):
    """-allreduce shared (auto's choice here, one node, the CPU): the ranks' parameters, moments
    and gradients in memory they all map, each rank averaging and updating its part. The same
    arithmetic as the allreduce at P = 2 (a sum of two is the same either way round): the same
    losses, parameters and moments to the bit; at P = 3 (parts that do not divide evenly) the
    one-rank run's up to summation order; norm clipping and RMSprop through their parts."""
    common = ("-max_iters", 30, "-checkpoint_every", 0, "-seq_length", 16, "-print_every", 1)
    for name, extra in (("adam", ()), ("rmsprop", ("-optimizer", "rmsprop", "-learning_rate", 0.01)),
                        ("norm", ("-grad_clip", 0.5, "-grad_clip_mode", "norm"))):
        runs = {}
        for allreduce in ("shared", "overlap", "auto"):
            out = must(mpi(2, c.train_args(f"{name}_{allreduce}", *common, *extra, "-batch_size", 25, "-allreduce", allreduce)))
            said = out.count("share one copy of the parameters")
            assert said == (allreduce != "overlap"), f"{allreduce}: said {said} times that the ranks share:\n{out}"
            runs[allreduce] = (losses(out), h5py.File(os.path.join(c.dir, f"{name}_{allreduce}_30.h5"), "r"))
        (ls, fs), (lo, fo), (la, fa) = runs["shared"], runs["overlap"], runs["auto"]
        assert len(ls) == 30 and la == ls, f"{name}: auto is not shared here:\n{ls}\n{la}"
        exact = name != "norm"  # the norm's sum of parts differs from one sum in the last bits
        for k in ("optim/v", "optim/m", *("params/" + n for n in params_of(os.path.join(c.dir, f"{name}_shared_30.h5")))):
            if k not in fs:
                continue
            a, b = fs[k][()], fo[k][()]
            if exact:
                assert np.array_equal(a, b), f"{name}: {k} differs between shared and overlap"
            else:
                assert np.max(np.abs(a - b)) <= 1e-5 * max(1e-3, float(np.max(np.abs(b)))), f"{name}: {k}"
        assert (ls == lo) if exact else close(ls, lo, 1e-5), f"{name}: losses differ:\n{ls}\n{lo}"
        for f in (fs, fo, fa):
            f.close()
    # three ranks, parts of uneven length, against one rank with all 48 streams
    three = must(mpi(3, c.train_args("three", *common, "-batch_size", 16, "-allreduce", "shared")))
    one = must(c.train_args("one", *common, "-batch_size", 48))
    assert close(losses(three), losses(one), 1e-5), f"{losses(one)}\n{losses(three)}"
    err = norm_rel(params_of(os.path.join(c.dir, "three_30.h5")), params_of(os.path.join(c.dir, "one_30.h5")))
    assert err < 1e-5, f"3 ranks sharing against 1: parameters differ by {err:.3g} in norm"
    # shared asked for where there is nothing to share: one process trains as it would
    assert losses(must(c.train_args("single", *common, "-batch_size", 48, "-allreduce", "shared"))) == losses(one)


def case_resume(c):
    # 2 x 25 streams, 20 batches an epoch: the 40 iterations cross epoch ends and decays;
    # with dropout, whose masks a resumed run must draw as the straight one did
    args = ("-seq_length", 16, "-batch_size", 25, "-print_every", 1, "-lr_decay_every", 1, "-dropout", 0.25)
    straight = must(mpi(2, c.train_args("a", *args, "-max_iters", 40, "-checkpoint_every", 20)))
    first = must(mpi(2, c.train_args("b", *args, "-max_iters", 20, "-checkpoint_every", 20)))
    second = must(mpi(2, c.train_args("b", *args, "-max_iters", 40, "-resume", os.path.join(c.dir, "b_20.h5"))))
    la, lb = losses(straight), losses(first) + losses(second)
    assert la == lb, f"np=2 resume is not exact:\n{la}\n{lb}"
    pa, pb = params_of(os.path.join(c.dir, "a_40.h5")), params_of(os.path.join(c.dir, "b_40.h5"))
    for k in pa:
        assert np.array_equal(pa[k], pb[k]), k
    # the same P*B on another P: 2 x 25 -> 1 x 50 continues up to summation order
    other = must(c.train_args("b", *args[:2], "-batch_size", 50, *args[4:], "-max_iters", 40,
                              "-resume", os.path.join(c.dir, "b_20.h5"), "-checkpoint_name", os.path.join(c.dir, "c")))
    lc = losses(first) + losses(other)
    assert "hidden states start from zero" not in other, other
    assert close(lc, la, 1e-5), f"resume on another P:\n{la}\n{lc}"
    # another P*B: fresh hidden states, and it says so
    third = must(mpi(2, c.train_args("b", *args[:2], "-batch_size", 20, *args[4:], "-max_iters", 25,
                                     "-resume", os.path.join(c.dir, "b_20.h5"), "-checkpoint_name", os.path.join(c.dir, "d"))))
    assert third.count("hidden states start from zero") == 1, f"said by rank 0 only:\n{third}"
    assert "i = 21 / 25" in third, third


def case_sigusr1(c):
    it = stop_with_signal(c, mpi(2, c.train_args("sig", "-max_iters", 1000000, "-checkpoint_every", 0,
                                                 "-print_every", 1, "-seq_length", 16, "-batch_size", 4)),
                          signal.SIGUSR1)
    out = must(mpi(2, c.train_args("sig", "-resume", "auto", "-max_iters", it + 2, "-seq_length", 16, "-batch_size", 4)))
    assert f"i = {it + 2} / {it + 2}" in out, out


def case_sigkill(c):
    cmd = mpi(2, c.train_args("kill", "-max_iters", 1000000, "-checkpoint_every", 10, "-print_every", 1,
                              "-seq_length", 16, "-batch_size", 4))
    # kill rank 1: the crnn-train process that is not rank 0's (its parent is mpirun)
    rc, err, took = signal_rank1(cmd, lambda line: line.startswith("wrote"), signal.SIGKILL)
    assert rc != 0
    assert took < 20, f"the job took {took:.1f} s to end"
    assert "rank 1" in err, err
    assert not subprocess.run(["pgrep", "-f", os.path.join(c.dir, "kill")], capture_output=True).stdout, "a rank is left"
    # the last checkpoint is intact and the run resumes from it
    out = must(mpi(2, c.train_args("kill", "-resume", "auto", "-max_iters", 12, "-seq_length", 16, "-batch_size", 4)))
    assert "resuming from" in out, out


def signal_rank1(cmd, ready, sig):
    """Starts cmd (mpirun, 2 ranks of crnn-train), waits for a line of its output that ready()
    accepts, sends sig to rank 1 (the crnn-train process that is not rank 0's; their parent is
    mpirun) and waits for the job to end: (its status, its stderr, seconds from the signal)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, line = time.time() + 60, ""
        while not ready(line) and time.time() < deadline:
            line = p.stdout.readline()
        assert ready(line), line
        pids = subprocess.run(["pgrep", "-P", str(p.pid), "-f", "crnn-train"], capture_output=True, text=True).stdout.split()
        assert len(pids) == 2, pids
        ranks = {}
        for pid in pids:
            env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
            r = [e for e in env if e.startswith(b"OMPI_COMM_WORLD_RANK=")]
            ranks[int(r[0].split(b"=")[1])] = int(pid)
        t0 = time.time()
        os.kill(ranks[1], sig)
        _, err = p.communicate(timeout=60)
        return p.returncode, err, time.time() - t0
    finally:
        if p.poll() is None:
            p.kill()


def case_shared_timeout(c):
    """A rank that stops answering under -allreduce shared: the others wait at most -comm_timeout
    at the step's barrier, say so, and end the job."""
    cmd = mpi(2, c.train_args("stall", "-max_iters", 1000000, "-checkpoint_every", 0, "-print_every", 1,
                              "-seq_length", 16, "-batch_size", 4, "-allreduce", "shared", "-comm_timeout", 3))
    rc, err, took = signal_rank1(cmd, lambda line: "i = 5 /" in line, signal.SIGSTOP)
    assert rc != 0
    assert took < 3 + 20, f"the job took {took:.1f} s to end"
    assert re.search(r"rank 0 of 2 on \S+: waited 3 s \(-comm_timeout\) for the other ranks in [a-z' ]+ at iteration \d+",
                     err), err
    assert not subprocess.run(["pgrep", "-f", os.path.join(c.dir, "stall")], capture_output=True).stdout, "a rank is left"


def case_dataset_shards(c):
    # a uint8 file (this case's text) and a uint32 one (a vocabulary over 255 tokens)
    big_txt, big_h5, big_json = (os.path.join(c.dir, n) for n in ("u.txt", "u.h5", "u.json"))
    with open(big_txt, "w") as f:
        f.write("".join(chr(0x4E00 + (i * 7919) % 400) for i in range(30000)))
    must([prog("crnn-preprocess"), "--input_txt", big_txt, "--output_h5", big_h5, "--output_json", big_json, "--quiet"])
    with h5py.File(big_h5) as f:
        assert f["train"].dtype == np.uint32
    out = must(mpi(3, [prog("test_dataset_mpi"), c.h5, big_h5]))
    assert "3 ranks: every shard equals the serial read" in out, out


def val_records(ck):
    with open(ck + "_metrics.jsonl") as f:
        return [r for r in map(json.loads, f) if r["type"] == "val"]


def case_validation_shared(c):
    """Every rank validates its share of the global validation view and rank 0 adds the shares:
    the loss of np=2 and np=4 equals np=1's within 1e-6, also when the split is short (5 streams
    shared 2 + 3, or 1 stream that rank 1 has no part of), and with -val_max_batches; crnn-eval
    under mpirun (3 ranks, 8 streams: 2 + 3 + 3) gives the run's last validation loss."""
    common = ("-max_iters", 20, "-checkpoint_every", 10, "-seq_length", 16, "-print_every", 10)
    one = must(c.train_args("v1", *common, "-batch_size", 8))
    two = must(mpi(2, c.train_args("v2", *common, "-batch_size", 4)))
    four = must(mpi(4, c.train_args("v4", *common, "-batch_size", 2)))
    v1, v2, v4 = val_losses(one), val_losses(two), val_losses(four)
    assert len(v1) == 2 and close(v2, v1, 1e-6) and close(v4, v1, 1e-6), (v1, v2, v4)
    with h5py.File(os.path.join(c.dir, "v1_20.h5")) as f:  # the history a checkpoint records
        assert close(v2, f["history/val_loss"][()], 1e-6), (v2, f["history/val_loss"][()])
    # crnn-eval shares the streams the same way: its loss is the run's last validation loss
    ev = [prog("crnn-eval"), os.path.join(c.dir, "v1_20.h5"), "-gpu", -1]
    e1, e3 = must(ev), must(mpi(3, ev))
    ve1, ve3 = (float(re.search(r"^val loss = (\S+)$", o, re.M).group(1)) for o in (e1, e3))
    assert close([ve1, ve3], [v1[-1]] * 2, 1e-6), (e1, e3, v1)
    assert len(re.findall("val loss", e3)) == 1, e3
    rec = val_records(os.path.join(c.dir, "v2"))
    assert [r["val_batches"] for r in rec] == [r["val_batches_total"] for r in rec] and rec[0]["val_batches"] > 3, rec
    assert all(r["val_seconds"] > 0 for r in rec), rec
    # the first 3 batches only: the same on 1 and 2 ranks, and not the whole split's loss
    p1 = must(c.train_args("p1", *common, "-batch_size", 8, "-val_max_batches", 3))
    p2 = must(mpi(2, c.train_args("p2", *common, "-batch_size", 4, "-val_max_batches", 3)))
    assert close(val_losses(p2), val_losses(p1), 1e-6) and abs(val_losses(p1)[0] - v1[0]) > 1e-4, (p1, p2)
    total = rec[0]["val_batches_total"]
    assert f"(the first 3 of {total} batches, -val_max_batches)" in p2, p2
    assert [(r["val_batches"], r["val_batches_total"]) for r in val_records(os.path.join(c.dir, "p2"))] == [(3, total)] * 2
    # short validation splits: 16 x 5 + 1 tokens hold 5 streams; 17 tokens one
    for name, frac, streams in (("five", 0.0045, 5), ("single", 0.0009, 1)):
        txt, h5, js = (os.path.join(c.dir, name + e) for e in (".txt", ".h5", ".json"))
        make_text(txt)
        must([prog("crnn-preprocess"), "--input_txt", txt, "--output_h5", h5, "--output_json", js,
              "--val_frac", frac, "--test_frac", 0, "--quiet"])
        with h5py.File(h5) as f:
            assert (f["val"].shape[0] - 1) // 16 == streams, (name, f["val"].shape)
        args = lambda ck, B: ["-input_h5", h5, "-input_json", js, "-checkpoint_name", os.path.join(c.dir, ck),  # noqa: E731
                              "-batch_size", B]
        a = must(c.train_args(name + "1", *common) + args(name + "1", 8))
        b = must(mpi(2, c.train_args(name + "2", *common) + args(name + "2", 4)))
        assert f"validating on {streams}" in a and f"validating on {streams}" in b, (a, b)
        assert close(val_losses(b), val_losses(a), 1e-6) and len(val_losses(a)) == 2, (name, a, b)


def case_comm_algorithm(c):
    out = must(mpi(4, [prog("test_comm_algo")]))
    assert "algorithm choice: ok (crnn's, 4 ranks)" in out, out
    env = dict(os.environ, OMPI_MCA_coll_libnbc_iallreduce_algorithm="4")
    p = subprocess.run(mpi(4, [prog("test_comm_algo"), "user"]), capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0 and "algorithm choice: ok (the user's, 4 ranks)" in p.stdout, p.stdout + p.stderr


CASES = {k[5:]: v for k, v in globals().items() if k.startswith("case_")}

if __name__ == "__main__":
    run_case(CASES)
