#!/usr/bin/env python3
"""crnn across hosts: an emulated cluster (tests/cluster/cluster.sh: network namespaces with
hostnames and cores of their own, joined by a bridge, Open MPI's daemons started through an rsh
agent) and launch/crnn-launch with its hostfile.

Run as `test_cluster.py <case>`; CRNN_BIN names the build folder. Exits 77 (ctest SKIP) where the
cluster cannot be made (not root, no `ip`) and in sanitizer builds."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from harness import SKIP, close, losses, must, norm_rel, params_of, refused_while_running, run_case  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CLUSTER = os.path.join(HERE, "cluster", "cluster.sh")
LAUNCH = os.path.join(HERE, "..", "launch", "crnn-launch")


class Cluster:
    """N emulated hosts h1..hN; cpus: a taskset list per host (default one core each)."""

    def __init__(self, n, cpus=None, rate=None):
        self.dir = tempfile.mkdtemp(prefix="crnn-cluster-")
        env = dict(os.environ)
        if cpus:
            env["CLUSTER_CPUS"] = " ".join(cpus)
        p = subprocess.run(["bash", CLUSTER, "start", str(n), self.dir, *([rate] if rate else [])],
                           capture_output=True, text=True, env=env, timeout=120)
        if p.returncode == SKIP:
            print(p.stderr.strip())
            shutil.rmtree(self.dir, ignore_errors=True)
            # CI's plain build must run these: there a skip is a failure
            sys.exit(1 if os.environ.get("CRNN_REQUIRE_CLUSTER") == "1" else SKIP)
        assert p.returncode == 0, p.stdout + p.stderr
        self.env = dict(os.environ)
        for line in open(os.path.join(self.dir, "env")):
            k, v = line.split(None, 1)[1].strip().split("=", 1)
            self.env[k] = v
        self.env.pop("OPENBLAS_NUM_THREADS", None)
        self.env.pop("OMP_NUM_THREADS", None)
        self.n = n

    def hostfile(self, slots):
        """A hostfile of the first len(slots) hosts with these slots."""
        path = os.path.join(self.dir, "hosts-" + "-".join(map(str, slots)))
        with open(path, "w") as f:
            for k, s in enumerate(slots):
                f.write(f"h{k + 1} slots={s}\n")
        return path

    def launch(self, hostfile, args):
        return [LAUNCH, "--hostfile", hostfile, *[str(a) for a in args]]

    def run(self, cmd, timeout=300):
        p = subprocess.run([str(a) for a in cmd], capture_output=True, text=True, env=self.env, timeout=timeout)
        return p.returncode, p.stdout, p.stderr

    def must(self, cmd, timeout=300):
        rc, out, err = self.run(cmd, timeout)
        assert rc == 0, f"{' '.join(map(str, cmd))} failed ({rc}):\n{out}\n{err}"
        return out

    def pids_on(self, host, pattern):
        """The pids of processes on host whose command line contains pattern."""
        ns = subprocess.run(["ip", "netns", "pids", f"crnn-{host}"], capture_output=True, text=True).stdout.split()
        found = []
        for pid in ns:
            try:
                cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if pattern in cmd:
                found.append(int(pid))
        return found

    def cut(self, host):
        subprocess.run(["bash", CLUSTER, "cut", self.dir, host], check=True)

    def close(self):
        subprocess.run(["bash", CLUSTER, "stop", self.dir], capture_output=True, timeout=120)
        shutil.rmtree(self.dir, ignore_errors=True)


def rank_lines(out):
    """{rank: (host, local rank, local size, threads, cpus)} from -verbose 1's lines."""
    found = {}
    for m in re.finditer(r"^rank (\d+) of (\d+): host (\S+), node-local rank (\d+) of (\d+), cpu backend, "
                         r"(\d+) threads?, CPUs (\S+)$", out, re.M):
        found[int(m.group(1))] = (m.group(3), int(m.group(4)), int(m.group(5)), int(m.group(6)), m.group(7))
    return found


COMMON = ("-max_iters", 30, "-checkpoint_every", 0, "-seq_length", 16, "-print_every", 1, "-verbose", 1)


def equivalent(c, cl, slots, per_rank, expect):
    """len(slots) hosts with these ranks each x B=per_rank against 1 rank x P*B; expect: the
    ranks' (host, local rank, local size, threads, cpus)."""
    P = sum(slots)
    name = "x".join(map(str, slots))
    one = must(c.train_args(f"one{name}", *COMMON, "-batch_size", P * per_rank))
    many = cl.must(cl.launch(cl.hostfile(slots), c.train_args(f"many{name}", *COMMON, "-batch_size", per_rank)))
    ranks = rank_lines(many)
    assert ranks == expect, f"ranks report {ranks}, expected {expect}:\n{many}"
    l1, lp = losses(one), losses(many)
    assert len(l1) == len(lp) == 30, (len(l1), len(lp), many)
    assert close(lp, l1, 1e-5), f"{name}: per-iteration losses differ:\n{l1}\n{lp}"
    err = norm_rel(params_of(os.path.join(c.dir, f"many{name}_30.h5")), params_of(os.path.join(c.dir, f"one{name}_30.h5")))
    assert err < 1e-5, f"{name}: final parameters differ by {err:.3g} in norm"


def case_equivalence(c):
    # hosts of different sizes: h1 has both cores, h2 and h3 one each
    cl = Cluster(3, cpus=["0-1", "1", "0"])
    try:
        # 2 hosts x 2 ranks: on h1 each rank has a core of its own, on h2 they share one
        equivalent(c, cl, [2, 2], 25, {0: ("h1", 0, 2, 1, "0"), 1: ("h1", 1, 2, 1, "1"),
                                       2: ("h2", 0, 2, 1, "1"), 3: ("h2", 1, 2, 1, "1")})
        # 3 hosts x 1 rank: the rank on h1 runs 2 threads on both cores
        equivalent(c, cl, [1, 1, 1], 20, {0: ("h1", 0, 1, 2, "0-1"), 1: ("h2", 0, 1, 1, "1"),
                                          2: ("h3", 0, 1, 1, "0")})
        # -allreduce shared needs every rank on one node: on two it says so before training
        rc, out, err = cl.run(cl.launch(cl.hostfile([1, 1]), c.train_args("shared2", *COMMON, "-batch_size", 25,
                                                                            "-allreduce", "shared")), timeout=120)
        assert rc != 0 and "-allreduce shared needs every rank on one node" in err, out + err
        assert "i = 1 /" not in out, out
    finally:
        cl.close()


def case_resume(c):
    """A run started on 2 hosts x 2 ranks resumes on 1 host x 4 ranks and on 4 hosts x 1 rank:
    the same P*B, so it continues exactly where it stood (docs/FORMATS.md section 4)."""
    cl = Cluster(4)
    args = ("-seq_length", 16, "-batch_size", 25, "-print_every", 1, "-dropout", 0.25)
    try:
        hf = cl.hostfile([2, 2])
        straight = cl.must(cl.launch(hf, c.train_args("a", *args, "-max_iters", 30, "-checkpoint_every", 15)))
        first = cl.must(cl.launch(hf, c.train_args("b", *args, "-max_iters", 15, "-checkpoint_every", 15)))
        la = losses(straight)
        b15 = os.path.join(c.dir, "b_15.h5")
        one_host = ["mpirun", "--oversubscribe", "--bind-to", "none", "-np", "4"]
        # the same P and the same reduction (-allreduce overlap: auto's choice on several hosts):
        # exact, as if it had never stopped; on one host auto shares the parameters in memory
        # instead (-allreduce shared), which sums the 4 gradients in another order
        for name, cmd, extra in (("1x4", one_host, ("-allreduce", "overlap")),
                                 ("4x1", [LAUNCH, "--hostfile", cl.hostfile([1, 1, 1, 1])], ()),
                                 ("1x4shared", one_host, ())):
            out = cl.must(cmd + c.train_args(f"r{name}", *args, *extra, "-max_iters", 30, "-resume", b15))
            assert "hidden states start from zero" not in out, out
            assert "resuming from" in out, out
            assert ("share one copy of the parameters" in out) == (name == "1x4shared"), out
            lb = losses(first) + losses(out)
            assert len(lb) == 30, out
            pa, pb = params_of(os.path.join(c.dir, "a_30.h5")), params_of(os.path.join(c.dir, f"r{name}_30.h5"))
            if name == "1x4shared":
                assert close(lb, la, 1e-5), f"{name}: the resumed run differs:\n{la}\n{lb}"
                assert norm_rel(pb, pa) < 1e-5, name
                continue
            assert lb == la, f"{name}: the resumed run differs:\n{la}\n{lb}"
            for k in pa:
                assert np.array_equal(pa[k], pb[k]), (name, k)
    finally:
        cl.close()


def start(cl, cmd):
    out = tempfile.NamedTemporaryFile("w+", delete=False, dir=cl.dir, suffix=".out")
    err = tempfile.NamedTemporaryFile("w+", delete=False, dir=cl.dir, suffix=".err")
    p = subprocess.Popen([str(a) for a in cmd], stdout=out, stderr=err, env=cl.env, text=True)
    return p, out.name, err.name


def wait_for_iteration(metrics, it, p, limit=120):
    """Waits until the metrics file has a train record of iteration >= it."""
    deadline = time.time() + limit
    while time.time() < deadline:
        assert p.poll() is None, f"the job ended early ({p.returncode})"
        try:
            with open(metrics) as f:
                its = [json.loads(line).get("iteration", 0) for line in f if '"train"' in line]
            if its and max(its) >= it:
                return max(its)
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"iteration {it} not reached in {limit} s")


def case_signals(c):
    cl = Cluster(2)
    try:
        hf = cl.hostfile([2, 2])
        # SIGUSR1 to the launcher: every rank checkpoints at the same step and the job exits 75
        p, out, err = start(cl, cl.launch(hf, c.train_args("sig", "-max_iters", 1000000, "-checkpoint_every", 0,
                                                           "-print_every", 1)))
        try:
            it = wait_for_iteration(os.path.join(c.dir, "sig_metrics.jsonl"), 5, p)
            p.send_signal(signal.SIGUSR1)
            p.wait(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
        text = open(out).read()
        assert p.returncode == 75, (p.returncode, text, open(err).read())
        m = re.search(r"stopped by a signal at iteration (\d+)", text)
        assert m and int(m.group(1)) >= it, text
        stopped = int(m.group(1))
        with h5py.File(os.path.join(c.dir, f"sig_{stopped}.h5")) as f:
            assert f.attrs["iteration"] == stopped
        resumed = cl.must(cl.launch(hf, c.train_args("sig", "-resume", "auto", "-max_iters", stopped + 2)))
        assert f"i = {stopped + 2} / {stopped + 2}" in resumed, resumed

        # SIGKILL of a rank on the second host: the job ends, naming the host and the rank
        p, out, err = start(cl, cl.launch(hf, c.train_args("kill", "-max_iters", 1000000, "-checkpoint_every", 10,
                                                           "-print_every", 1)))
        try:
            wait_for_iteration(os.path.join(c.dir, "kill_metrics.jsonl"), 12, p)
            victims = [v for v in cl.pids_on("h2", os.path.join(c.dir, "kill"))
                       if open(f"/proc/{v}/cmdline", "rb").read().split(b"\0")[0].endswith(b"crnn-train")]
            assert len(victims) == 2, victims
            env = open(f"/proc/{victims[0]}/environ", "rb").read().split(b"\0")
            rank = int([e for e in env if e.startswith(b"OMPI_COMM_WORLD_RANK=")][0].split(b"=")[1])
            t0 = time.time()
            os.kill(victims[0], signal.SIGKILL)
            p.wait(timeout=60)
            took = time.time() - t0
        finally:
            if p.poll() is None:
                p.kill()
        text = open(err).read()
        assert p.returncode != 0
        assert took < 20, f"the job took {took:.1f} s to end"
        assert re.search(rf"rank {rank} .*on node h2", text), text
        left = cl.pids_on("h1", os.path.join(c.dir, "kill")) + cl.pids_on("h2", os.path.join(c.dir, "kill"))
        assert not left, f"processes left: {left}"
        out = cl.must(cl.launch(hf, c.train_args("kill", "-resume", "auto", "-max_iters", 12)))
        assert "resuming from" in out, out
    finally:
        cl.close()


def case_cutoff(c):
    """A host cut off mid-run (its link down, its TCP connections left open) while the others
    wait for it in an allreduce: the job ends within -comm_timeout + 30 s with a message naming
    the operation and the iteration, no crnn-train is left on any host, and every checkpoint and
    metrics record up to the last checkpoint is kept."""
    timeout = 5
    cl = Cluster(2)
    try:
        hf = cl.hostfile([2, 2])
        # a model slow enough per step that the cut lands in training, not in a checkpoint
        p, out, err = start(cl, cl.launch(hf, c.train_args("cut", "-max_iters", 1000000, "-checkpoint_every", 30,
                                                           "-print_every", 1, "-rnn_size", 128,
                                                           "-comm_timeout", timeout)))
        metrics = os.path.join(c.dir, "cut_metrics.jsonl")
        try:
            wait_for_iteration(metrics, 36, p)
            cl.cut("h2")
            t0 = time.time()
            p.wait(timeout=timeout + 60)
            took = time.time() - t0
        finally:
            if p.poll() is None:
                p.kill()
        text = open(err).read()
        assert p.returncode != 0, text
        assert took < timeout + 30, f"the job took {took:.1f} s to end after the cut:\n{text}"
        # the operation and the iteration, after a wait that ran out or a connection that failed
        m = re.search(r"rank \d+ of 4 on h1: (waited 5 s \(-comm_timeout\) for the other ranks in the [a-z' ]+ "
                      r"at iteration \d+ and heard nothing|the [a-z' ]+ at iteration \d+ failed)", text)
        assert m, text
        print(f"the job ended {took:.1f} s after the cut (-comm_timeout {timeout}): "
              + [line for line in text.splitlines() if "crnn-train: error" in line][0])
        # nothing of the job is left on any host
        time.sleep(1)
        for h in ("h1", "h2"):
            left = cl.pids_on(h, "crnn-train")
            assert not left, f"crnn-train left on {h}: {left}"
        # the checkpoints and the metrics up to the last one are whole
        with h5py.File(os.path.join(c.dir, "cut_30.h5")) as f:
            assert f.attrs["iteration"] == 30
        its = [json.loads(line)["iteration"] for line in open(metrics) if '"train"' in line]
        assert its[:30] == list(range(1, 31)), its[:40]
        # a fresh cluster: the run continues from its last checkpoint
    finally:
        cl.close()
    cl = Cluster(2)
    try:
        out = cl.must(cl.launch(cl.hostfile([2, 2]), c.train_args("cut", "-resume", "auto", "-max_iters", 32,
                                                                  "-rnn_size", 128)))
        assert "resuming from" in out and "cut_30.h5" in out, out
    finally:
        cl.close()


def case_slow_link(c):
    """A slow but live link (4 Mbit/s) does not trip -comm_timeout at its default, and a
    2-rank job across it still trains exactly as one rank does."""
    cl = Cluster(2, rate="4mbit")
    try:
        hf = cl.hostfile([1, 1])
        args = ("-max_iters", 6, "-checkpoint_every", 0, "-seq_length", 16, "-print_every", 1, "-rnn_size", 64)
        many = cl.must(cl.launch(hf, c.train_args("slow", *args, "-batch_size", 10)))
        one = must(c.train_args("slow1", *args, "-batch_size", 20))
        assert close(losses(many), losses(one), 1e-5), (losses(many), losses(one))

        # reshaping in place (benchmarks/overlap.sh alternates the links' states this way): both
        # ends of every link, with a token bucket of 2 ms of the rate; none removes it
        def qdiscs():
            out = [subprocess.run(["tc", "qdisc", "show", "dev", f"crnnv{k}"], capture_output=True, text=True).stdout
                   for k in (1, 2)]
            out += [subprocess.run(["ip", "netns", "exec", f"crnn-h{k}", "tc", "qdisc", "show", "dev", "eth0"],
                                   capture_output=True, text=True).stdout for k in (1, 2)]
            return out
        assert all("rate 4Mbit" in q for q in qdiscs()), qdiscs()
        cl.must(["bash", CLUSTER, "shape", cl.dir, "500mbit"])
        assert all(re.search(r"tbf .*rate 500Mbit burst 125000b", q) for q in qdiscs()), qdiscs()
        cl.must(["bash", CLUSTER, "shape", cl.dir, "none"])
        assert not any("tbf" in q for q in qdiscs()), qdiscs()
        bad = subprocess.run(["bash", CLUSTER, "shape", cl.dir, "fast"], capture_output=True, text=True)
        assert bad.returncode == 2 and "RATE must read like" in bad.stderr, bad.stderr
    finally:
        cl.close()


def case_dry_run(c):
    """--dry-run with a hostfile: mpirun across its hosts, every slot a rank, no binding by
    mpirun (each rank binds itself on its node), and the keepalive that notices a lost host."""
    cl = Cluster(2)
    try:
        hf = cl.hostfile([2, 3])
        out = cl.must([LAUNCH, "--dry-run", "--hostfile", hf, "crnn-train", "-gpu", "-1"])
        assert re.search(rf"would run: mpirun --hostfile {re.escape(hf)} -np 5 --bind-to none "
                         r"--mca oob_tcp_keepalive_time 60", out), out
        env = dict(cl.env, CRNN_HOSTFILE=hf)
        p = subprocess.run([LAUNCH, "--dry-run", "--ranks", "2", "crnn-train"], capture_output=True, text=True,
                           env=env, timeout=60)
        assert p.returncode == 0 and "-np 2" in p.stdout and "--hostfile" in p.stdout, p.stdout + p.stderr
        bad = subprocess.run([LAUNCH, "--hostfile", os.path.join(cl.dir, "missing"), "crnn-train"],
                             capture_output=True, text=True, env=cl.env, timeout=60)
        assert bad.returncode == 2 and "cannot read the hostfile" in bad.stderr, bad.stderr
    finally:
        cl.close()


def case_lock(c):
    """One writer per run across hosts: a run on h1 holds its checkpoint name; a start on h2 in
    the same (shared) folder refuses within seconds naming h1, and changes nothing."""
    cl = Cluster(2)
    try:
        on = lambda h, args: ["bash", CLUSTER, "run", cl.dir, h, *args]  # noqa: E731
        a = refused_while_running(
            c, on("h1", c.train_args("lock", "-max_iters", 1000000, "-checkpoint_every", 10, "-print_every", 1)),
            on("h2", c.train_args("lock", "-max_iters", 5, "-resume", "auto")), "h1")
        a.kill()
        a.wait(timeout=30)
    finally:
        cl.close()


if __name__ == "__main__":
    if os.environ.get("CRNN_SANITIZE"):
        print("the cluster tests run in the plain build only (as the Slurm tests)")
        sys.exit(SKIP)
    run_case({"equivalence": case_equivalence, "resume": case_resume, "signals": case_signals,
              "cutoff": case_cutoff, "slow_link": case_slow_link, "dry_run": case_dry_run,
              "lock": case_lock})
