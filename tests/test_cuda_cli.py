#!/usr/bin/env python3
"""The programs' -gpu handling (docs/FORMATS.md section 5) and CPU <-> GPU checkpoints.

`test_cuda_cli.py fallback`: runs everywhere. Without a device (or without CUDA in the build)
`-gpu 0` says so once on stderr (once under mpirun too) and trains on the CPU exactly as
`-gpu -1`, which says nothing; with a device, `-gpu 0` trains on it and a device number beyond
those present is an error naming -gpu. Bad -gpu values are errors either way.
`test_cuda_cli.py module`: runs everywhere. No program links a CUDA library; a CUDA build's
libcrnn-cuda.so is loaded only by `-gpu 0` (a CPU run never opens it), and one that does not load
is said once, named, and the run trains on the CPU as `-gpu -1`.
`test_cuda_cli.py checkpoint`: needs a device (exit 77 otherwise): -precision bf16 is refused on it
(status 2); a GPU-trained checkpoint samples
the same greedy text on the CPU and on the GPU, evaluates to the same loss, and resumes on the CPU;
a CPU checkpoint samples the same text on the GPU; one rank through NCCL (CRNN_NCCL=1) trains as
without it; two ranks through NCCL train as one rank of the same global batch, and their
checkpoint continues on one CPU rank as they did.
`test_cuda_cli.py device_failure`: needs the CUDA emulation (CRNN_CUDA=EMULATE, tests/cuemu): a
device lost in the middle of training, and one too small for the model."""
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import SKIP, losses, must, prog, run, run_case  # noqa: E402

NO_DEVICE = re.compile(r"no CUDA device|has no CUDA backend")
# the build runs its CUDA code on tests/cuemu (CRNN_CUDA=EMULATE), which can have any number of devices
EMULATED = os.environ.get("CRNN_CUDA_EMULATED") == "1"


def train(c, name, gpu, *extra, env=None):
    args = c.train_args(name, "-max_iters", 20, "-print_every", 1, "-checkpoint_every", 20, *extra)
    args[args.index("-gpu") + 1] = str(gpu)
    return run(args, env=env)


def mpirun():
    return shutil.which("mpirun")


def case_fallback(c):
    rc, out, err = train(c, "g", 0)
    assert rc == 0, f"-gpu 0 failed ({rc}):\n{out}\n{err}"
    device = not NO_DEVICE.search(err)
    rc, out_cpu, err_cpu = train(c, "c", -1)
    assert rc == 0, f"-gpu -1 failed ({rc}):\n{out_cpu}\n{err_cpu}"
    assert not NO_DEVICE.search(err_cpu) and "CUDA" not in err_cpu, f"-gpu -1 mentions CUDA:\n{err_cpu}"
    assert len(losses(out)) == 20 and len(losses(out_cpu)) == 20, f"20 losses expected:\n{out}\n{out_cpu}"
    assert os.path.exists(os.path.join(c.dir, "g_20.h5")), "no checkpoint from the -gpu 0 run"
    if not device:
        lines = [l for l in err.splitlines() if NO_DEVICE.search(l)]
        assert len(lines) == 1, f"the fallback should be said once, got:\n{err}"
        assert "running on the CPU" in lines[0] and lines[0].startswith("crnn-train: "), lines[0]
        assert losses(out) == losses(out_cpu), "the fallback does not train as -gpu -1 does"
        # a device number beyond those present: with none at all, still the CPU
        rc, out99, err99 = train(c, "g99", 99)
        assert rc == 0 and len(NO_DEVICE.findall(err99)) == 1, f"-gpu 99 without a device:\n{out99}\n{err99}"
        # under mpirun: every rank falls back, one says so
        if mpirun():
            args = c.train_args("m", "-max_iters", 3, "-print_every", 1)
            rc, outm, errm = run([mpirun(), "-np", "2"] + [str(a) for a in args[:args.index("-gpu") + 1]] + ["0"] +
                                 [str(a) for a in args[args.index("-gpu") + 2:]])
            assert rc == 0, f"mpirun -np 2 -gpu 0 failed ({rc}):\n{outm}\n{errm}"
            said = len(NO_DEVICE.findall(errm + outm))
            assert said == 1, f"2 ranks should say it once, said {said} times:\n{outm}\n{errm}"
    else:
        assert not NO_DEVICE.search(err), err
        for l_gpu, l_cpu in zip(losses(out), losses(out_cpu)):
            assert abs(l_gpu - l_cpu) <= 1e-4, f"GPU and CPU losses differ: {losses(out)} vs {losses(out_cpu)}"
        rc, out99, err99 = train(c, "g99", 99)
        assert rc != 0 and "-gpu 99" in err99 and "this machine has" in err99, f"-gpu 99:\n{out99}\n{err99}"
    for bad, needle in ((-2, "-gpu must be -1"),):
        rc, o, e = train(c, "bad", bad)
        assert rc != 0 and needle in e, f"-gpu {bad}: expected an error with '{needle}':\n{o}\n{e}"
    rc, o, e = run(c.train_args("bad", "-gpu_backend", "opencl", "-max_iters", 1))
    assert rc != 0 and "-gpu_backend opencl is not supported" in e, f"-gpu_backend opencl:\n{o}\n{e}"


CUDA_LIBS = re.compile(r"lib(cudart|cublas|cublasLt|nccl|cuda)\.so")


def case_module(c):
    """The programs link no CUDA library: a CUDA build's backend is libcrnn-cuda.so, loaded only when
    a run asks for a GPU, so a CPU run does not pay for the CUDA libraries (memory, start-up) nor
    need them installed. Runs everywhere; the module's own checks where the build made one."""
    for name in ("crnn-preprocess", "crnn-train", "crnn-sample", "crnn-eval", "crnn-plot", "crnn-inspect"):
        linked = must(["ldd", prog(name)])
        assert not CUDA_LIBS.search(linked), f"{name} links CUDA libraries itself:\n{linked}"
    module = prog("libcrnn-cuda.so")
    if not os.path.isfile(module):
        print("no libcrnn-cuda.so in this build (a CPU build, or CUDA emulated and linked in): "
              "only the programs' links checked")
        return
    linked = must(["ldd", module])
    assert "not found" not in linked and CUDA_LIBS.search(linked), f"the module's libraries:\n{linked}"
    # a CPU run never opens it: not even a broken module is noticed
    broken = os.path.join(c.dir, "broken.so")
    with open(broken, "w") as f:
        f.write("not a shared object\n")
    rc, out, err = train(c, "cpu", -1, env=dict(os.environ, CRNN_CUDA_MODULE=broken))
    assert rc == 0 and "CUDA" not in err, f"-gpu -1 with a broken module:\n{out}\n{err}"
    # -gpu 0 loads it: it asks the CUDA driver (a device, or "no CUDA device (<the driver's reason>)")
    rc, out_gpu, err_gpu = train(c, "gpu", 0)
    assert rc == 0 and "libcrnn-cuda" not in err_gpu and "CUDA module" not in err_gpu, err_gpu
    # a module that does not load: said once, named, and the run goes on on the CPU as -gpu -1
    for bad, needle in ((broken, "CRNN_CUDA_MODULE=" + broken), (os.path.join(c.dir, "none.so"), "none.so")):
        rc, out_bad, err_bad = train(c, "bad", 0, env=dict(os.environ, CRNN_CUDA_MODULE=bad))
        said = [l for l in err_bad.splitlines() if needle in l]
        assert rc == 0 and len(said) == 1 and said[0].startswith("crnn-train: ") and \
            said[0].endswith("running on the CPU (use -gpu -1 to say so)"), f"CRNN_CUDA_MODULE={bad}:\n{err_bad}"
        assert losses(out_bad) == losses(out), "the fallback does not train as -gpu -1 does"


def sample(ckpt, gpu):
    return must([prog("crnn-sample"), "-checkpoint", ckpt, "-gpu", gpu, "-sample", 0, "-length", 100,
                 "-start_text", "The "])


def case_checkpoint(c):
    rc, out, err = train(c, "probe", 0, "-max_iters", 1)
    if rc == 0 and NO_DEVICE.search(err):
        print(f"SKIP: no CUDA device ({err.strip()})")
        return SKIP
    assert rc == 0, f"-gpu 0 failed ({rc}):\n{out}\n{err}"
    # -precision bf16 is the CPU's only: on a device, a usage error that says what to do
    rc, out, err = train(c, "bf", 0, "-precision", "bf16")
    assert rc == 2 and "-precision bf16" in err and "-gpu -1" in err, f"-precision bf16 on a GPU:\n{out}\n{err}"
    rc, out, err = train(c, "g", 0)
    assert rc == 0, f"training on the GPU failed:\n{out}\n{err}"
    ck_gpu = os.path.join(c.dir, "g_20.h5")
    text_cpu, text_gpu = sample(ck_gpu, -1), sample(ck_gpu, 0)
    assert len(text_cpu) >= 104 and text_cpu == text_gpu, f"greedy text differs:\nCPU: {text_cpu!r}\nGPU: {text_gpu!r}"
    evals = []
    for gpu in (-1, 0):
        o = must([prog("crnn-eval"), "-checkpoint", ck_gpu, "-gpu", gpu, "-split", "val"])
        evals.append(float(re.search(r"val loss = (\S+)", o).group(1)))
    assert abs(evals[0] - evals[1]) <= 1e-4, f"crnn-eval on the CPU and the GPU: {evals}"
    # the GPU run resumed on the CPU, and the CPU's continuation against the GPU's
    rc, o_cpu, e = run(c.train_args("g", "-resume", ck_gpu, "-max_iters", 25, "-print_every", 1))
    assert rc == 0 and len(losses(o_cpu)) == 5, f"resuming a GPU checkpoint on the CPU:\n{o_cpu}\n{e}"
    args = c.train_args("g2", "-resume", ck_gpu, "-max_iters", 25, "-print_every", 1)
    args[args.index("-gpu") + 1] = "0"
    o_gpu = must(args)
    for a, b in zip(losses(o_cpu), losses(o_gpu)):
        assert abs(a - b) <= 1e-4, f"resumed on the CPU {losses(o_cpu)} and on the GPU {losses(o_gpu)}"
    # a CPU checkpoint on the GPU
    rc, out, err = train(c, "c", -1)
    ck_cpu = os.path.join(c.dir, "c_20.h5")
    assert sample(ck_cpu, 0) == sample(ck_cpu, -1), "a CPU checkpoint samples differently on the GPU"
    # one rank through NCCL: a mean over one rank changes nothing
    env = dict(os.environ, CRNN_NCCL="1")
    rc, out_n, err_n = train(c, "n", 0, env=env)
    assert rc == 0, f"CRNN_NCCL=1 failed:\n{out_n}\n{err_n}"
    rc, out_g, err_g = train(c, "n0", 0)
    assert losses(out_n) == losses(out_g), f"through NCCL {losses(out_n)}, without {losses(out_g)}"
    # two ranks of 2 streams against one of 4 (the same global batch, dropout's masks keyed by
    # the global stream): on one device the second rank's device (0 + local rank 1) does not
    # exist, and both ranks stop (neither waits for the other); with two devices (the emulation
    # can have both) they train as one rank does
    if mpirun():
        def ranks(name, np, batch, devices=None, streams="eager"):
            args = [str(a) for a in c.train_args(name, "-max_iters", 5, "-print_every", 1, "-checkpoint_every", 3,
                                                 "-dropout", 0.4)]
            args[args.index("-gpu") + 1] = "0"
            args[args.index("-batch_size") + 1] = str(batch)
            if np == 1:
                return run(args)
            if not devices:
                return run([mpirun(), "-np", str(np)] + args)
            # both of the emulation's stream orders: a missing event wait shows in one of them
            env = dict(os.environ, CUEMU_DEVICES=str(devices), CUEMU_STREAMS=streams)
            return run([mpirun(), "-np", str(np), "-x", "CUEMU_DEVICES", "-x", "CUEMU_STREAMS"] + args, env=env)
        rc1, o1, e1 = ranks("r1", 1, 4)
        assert rc1 == 0 and len(losses(o1)) == 5, f"one rank:\n{o1}\n{e1}"
        for devices, streams in (((1, "eager"), (2, "eager"), (2, "lazy")) if EMULATED else ((None, ""),)):
            rc, o, e = ranks("m", 2, 2, devices, streams)
            if rc != 0:
                assert "node-local rank 1" in o + e and "-gpu 0" in o + e, f"mpirun -np 2:\n{o}\n{e}"
                assert "another rank could not start" in o + e, f"rank 0 did not say why it stopped:\n{o}\n{e}"
                assert devices != 2, f"two ranks on two emulated devices failed:\n{o}\n{e}"
            else:
                assert devices != 1, f"two ranks on one device should fail:\n{o}\n{e}"
                assert len(losses(o)) == 5, f"two ranks through NCCL:\n{o}\n{e}"
                for a, b in zip(losses(o), losses(o1)):
                    assert abs(a - b) <= 1e-5, f"two ranks ({streams}) {losses(o)}, one rank {losses(o1)}"
                # their checkpoint continues on one CPU rank (the same global batch) as they did
                rc, o_cpu, e_cpu = run(c.train_args("m", "-resume", os.path.join(c.dir, "m_3.h5"), "-max_iters", 5,
                                                    "-print_every", 1, "-dropout", 0.4))
                assert rc == 0 and len(losses(o_cpu)) == 2, f"resuming two GPU ranks' checkpoint on a CPU:\n{o_cpu}\n{e_cpu}"
                for a, b in zip(losses(o_cpu), losses(o)[3:]):
                    assert abs(a - b) <= 1e-5, f"resumed on one CPU rank {losses(o_cpu)}, two GPU ranks {losses(o)[3:]}"
    return 0


def case_comm_timeout(c):
    """Two GPU ranks through NCCL, one of them stopped (SIGSTOP) mid-run: the other waits at
    most -comm_timeout in the step's collectives, then aborts the NCCL communicator and ends the
    job with a message naming the operation and the iteration. Needs the CUDA emulation with two
    devices (or a machine with two GPUs) and mpirun."""
    import signal
    import time
    if not mpirun() or not EMULATED:
        print("SKIP: needs mpirun and the CUDA emulation (CRNN_CUDA=EMULATE) for two devices")
        return SKIP
    args = [str(a) for a in c.train_args("t", "-max_iters", 1000000, "-print_every", 1, "-checkpoint_every", 0,
                                         "-comm_timeout", 3)]
    args[args.index("-gpu") + 1] = "0"
    # lazy streams: the host goes on past the queued reduction, as it does on a device
    env = dict(os.environ, CUEMU_DEVICES="2", CUEMU_STREAMS="lazy")
    p = subprocess.Popen([mpirun(), "-np", "2", "-x", "CUEMU_DEVICES", "-x", "CUEMU_STREAMS"] + args,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline, line = time.time() + 120, ""
        while "i = 3 /" not in line and time.time() < deadline:
            line = p.stdout.readline()
        assert "i = 3 /" in line, line
        pids = subprocess.run(["pgrep", "-P", str(p.pid), "-f", "crnn-train"], capture_output=True, text=True).stdout.split()
        rank1 = [int(q) for q in pids if b"OMPI_COMM_WORLD_RANK=1" in open(f"/proc/{q}/environ", "rb").read().split(b"\0")]
        assert len(rank1) == 1, pids
        os.kill(rank1[0], signal.SIGSTOP)
        t0 = time.time()
        out, err = p.communicate(timeout=120)
        took = time.time() - t0
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode != 0, (out, err)
    assert took < 3 + 30, f"the job took {took:.1f} s to end"
    assert re.search(r"rank 0 of 2 on \S+: waited 3 s \(-comm_timeout\) for the other ranks in [a-z' ]+ at iteration \d+"
                     r".*; this rank's NCCL communicator was aborted", err), err
    return 0


def case_device_failure(c):
    """A device that fails (a kernel launch, as CUEMU_FAIL_LAUNCH makes the emulation's fail: the
    device is then lost, every later call fails) stops training with the CUDA error and where
    it surfaced, not with advice about a NaN loss; the checkpoints written before stay good
    and none is written after. Device memory too small for the model is an out-of-memory error
    that says what did not fit."""
    if not EMULATED:
        print("SKIP: needs the CUDA emulation's fault injection (a CRNN_CUDA=EMULATE build)")
        return SKIP
    extra = ("-max_iters", 10, "-checkpoint_every", 5)
    rc, out, err = train(c, "ok", 0, *extra, env=dict(os.environ, CUEMU_STATS="1"))
    assert rc == 0, f"the undisturbed run failed:\n{out}\n{err}"
    total = int(re.search(r"cuemu: (\d+) kernel launches", err).group(1))
    text_5 = sample(os.path.join(c.dir, "ok_5.h5"), -1)
    for frac in (0.1, 0.75):  # before the first checkpoint, and between the two
        n = int(total * frac)
        name = f"f{n}"
        rc, out, err = train(c, name, 0, *extra, env=dict(os.environ, CUEMU_FAIL_LAUNCH=str(n)))
        assert rc == 1, f"launch {n} of {total} failed, but crnn-train exited {rc}:\n{out}\n{err}"
        assert re.search(r"crnn-train: error: CUDA device 0: backend_cuda\.cu:\d+: .*unspecified launch failure", err), \
            f"the CUDA error is not reported:\n{err}"
        assert "learning_rate" not in err, f"a lost device reported as a NaN loss:\n{err}"
        assert "CUDA_LAUNCH_BLOCKING=1" in err, f"no hint for finding the failing launch:\n{err}"
        left = os.listdir(c.dir)
        assert not [f for f in left if f.startswith(name) and f.endswith(".tmp")], f"temporary files left: {left}"
        assert f"{name}_10.h5" not in left, "a checkpoint was written after the device failed"
        if frac < 0.5:
            assert f"{name}_5.h5" not in left, "a checkpoint was written after the device failed"
        else:
            assert sample(os.path.join(c.dir, f"{name}_5.h5"), -1) == text_5, "the checkpoint before the failure changed"
    # with launches that wait for their kernels, the error names the failing one
    rc, out, err = train(c, "blocking", 0, *extra,
                         env=dict(os.environ, CUEMU_FAIL_LAUNCH=str(total // 2), CUDA_LAUNCH_BLOCKING="1"))
    assert rc == 1 and re.search(r"CUDA device 0: backend_cuda\.cu:\d+: cuk_\w+\(.*unspecified launch failure", err) \
        and "CUDA_LAUNCH_BLOCKING=1" not in err, f"CUDA_LAUNCH_BLOCKING=1 does not name the launch:\n{err}"
    # room for the runtime's own buffers (cuBLAS's 32 MiB workspace) but not for the model
    rc, out, err = train(c, "oom", 0, "-rnn_size", 512, env=dict(os.environ, CUEMU_MEMORY=str(34 << 20)))
    assert rc == 1 and re.search(r"out of memory for \d+ parameters on the cuda backend; try a smaller -rnn_size", err), \
        f"a model too big for the device:\n{out}\n{err}"
    return 0


CASES = {"fallback": case_fallback, "module": case_module, "checkpoint": case_checkpoint, "device_failure": case_device_failure,
         "comm_timeout": case_comm_timeout}

if __name__ == "__main__":
    run_case(CASES)
