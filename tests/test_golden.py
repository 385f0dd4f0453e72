"""A checkpoint written before the restructuring of the code (tests/data/resume_golden, made by
its make.sh) resumes and continues with the losses it printed then: bit for bit when this
machine runs the same kernels (crnn's instruction set and OpenBLAS's core), within 1e-6
relative otherwise. A change of the numerics that is meant regenerates the folder, with the
parity tests as the judge."""
import ctypes
import json
import os
import re
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import prog, run, tempdir  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "data", "resume_golden")


def kernel():
    """The kernels a CPU run takes here: crnn's (kernels/cpu_kernels.c picks AVX-512, AVX2+FMA
    or generic by the processor) and OpenBLAS's core (runtime.c swaps Prescott for SkylakeX or
    Haswell; OPENBLAS_CORETYPE wins)."""
    flags = set()
    for line in open("/proc/cpuinfo"):
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    if {"avx512f", "avx512dq", "avx512bw", "avx512vl"} <= flags:
        isa = "avx512"
    elif {"avx2", "fma"} <= flags:
        isa = "avx2"
    else:
        isa = "generic"
    core = os.environ.get("OPENBLAS_CORETYPE")
    if not core:
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        core = lib.openblas_get_corename().decode()
        if core.lower() == "prescott" and isa != "generic":
            core = "SkylakeX" if isa == "avx512" else "Haswell"
    return {"isa": isa, "openblas_core": core.lower()}


def main():
    want = json.load(open(os.path.join(GOLDEN, "expected.json")))
    with tempdir(prefix="crnn-golden-") as d:
        for f in ("data.h5", "data.json", "ck_10.h5"):
            shutil.copy(os.path.join(GOLDEN, f), d)
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
        rc, out, err = run([prog("crnn-train"), "-resume", "ck_10.h5", "-input_h5", "data.h5",
                            "-input_json", "data.json", "-gpu", "-1", "-max_iters", "30", "-checkpoint_every", "10",
                            "-print_every", "1", "-checkpoint_name", "cont", "-progress", "plain", "-quiet", "0"],
                           cwd=d, env=env)
        assert rc == 0, out + err
        recs = [json.loads(l) for l in open(os.path.join(d, "cont_metrics.jsonl"))]
    got_train = {str(r["iteration"]): r["loss"] for r in recs if r["type"] == "train"}
    got_val = {str(r["iteration"]): r["val_loss"] for r in recs if r["type"] == "val"}
    assert sorted(got_train, key=int) == sorted(want["train_loss"], key=int), (got_train, want["train_loss"])
    assert sorted(got_val, key=int) == sorted(want["val_loss"], key=int), (got_val, want["val_loss"])
    same = kernel() == want["kernel"]
    for name, got, ref in (("train", got_train, want["train_loss"]), ("val", got_val, want["val_loss"])):
        a = np.array([got[k] for k in sorted(ref, key=int)])
        b = np.array([ref[k] for k in sorted(ref, key=int)])
        if same:  # the losses are float32: compare them as such, exactly
            bad = np.nonzero(a.astype(np.float32) != b.astype(np.float32))[0]
        else:
            bad = np.nonzero(np.abs(a - b) > 1e-6 * np.abs(b))[0]
        assert bad.size == 0, f"{name} losses differ at iterations {[sorted(ref, key=int)[i] for i in bad]}: " \
                              f"{a[bad]} against {b[bad]} (written by {want['written_by']})"
    # the printed progress lines' losses, as torch-rnn's format shows them
    printed = [l for l in out.splitlines() if "loss = " in l]
    strip = lambda lines: [re.sub(r", \d+ chars/s$", "", l) for l in lines]
    if same:
        assert strip(printed) == strip(want["printed"]), (printed, want["printed"])
    print(f"resumed the golden checkpoint: {len(got_train)} training and {len(got_val)} validation losses "
          f"{'identical' if same else 'within 1e-6'} (kernels {kernel()}, golden's {want['kernel']})")


if __name__ == "__main__":
    sys.exit(main())
