#!/usr/bin/env python3
"""char-rnn's workflow in crnn-train: -data_dir, -checkpoint_dir/-savefile names, <prefix>_best.h5,
-resume auto with those names, and -grad_clip_mode norm. Run as `test_workflow.py <case>`."""
import glob
import os
import re
import subprocess
import sys
import time

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from harness import losses, make_text, must, params_of, prog, run, run_case  # noqa: E402


def case_data_dir(c):
    d = os.path.join(c.dir, "shakes")
    os.mkdir(d)
    make_text(os.path.join(d, "input.txt"), 12000, seed=3)
    base = [prog("crnn-train"), "-data_dir", d, "-gpu", -1, "-batch_size", 4, "-seq_length", 16,
            "-rnn_size", 16, "-checkpoint_every", 0, "-checkpoint_name", os.path.join(c.dir, "cv", "dd")]
    out = must([*base, "-max_iters", 3])
    assert "preprocessing" in out, out
    with h5py.File(os.path.join(d, "input.h5")) as f:
        n = sum(len(f[k]) for k in ("train", "val", "test"))
        assert len(f["val"]) == int(0.05 * n) and len(f["test"]) == 0, (len(f["val"]), n)
    first = os.stat(os.path.join(d, "input.h5")).st_mtime_ns
    out = must([*base, "-max_iters", 3])
    assert "preprocessing" not in out and os.stat(os.path.join(d, "input.h5")).st_mtime_ns == first, out
    # a newer input.txt is preprocessed again
    time.sleep(0.05)
    make_text(os.path.join(d, "input.txt"), 13000, seed=4)
    out = must([*base, "-max_iters", 3])
    assert "preprocessing" in out, out
    # errors: no input.txt; both ways of naming the data
    rc, out, err = run([*base[:2], os.path.join(c.dir, "nothing"), *base[3:]])
    assert rc != 0 and "input.txt" in err and "error:" in err, err
    rc, out, err = run([*base, "-input_h5", c.h5])
    assert rc != 0 and "-data_dir" in err, err


def case_charrnn_names(c):
    cv = os.path.join(c.dir, "cv")
    args = c.train_args("unused", "-max_iters", 40, "-checkpoint_every", 10, "-print_every", 0,
                        "-learning_rate", 0.01)
    args = [a for a in args if a not in ("-checkpoint_name", os.path.join(c.dir, "unused"))]
    out = must([*args, "-checkpoint_dir", cv, "-savefile", "lstm"])
    files = sorted(os.path.basename(f) for f in glob.glob(os.path.join(cv, "lm_lstm_epoch*.h5")))
    assert len(files) == 4, files
    vals = [float(v) for v in re.findall(r"val loss = (\S+)", out)]
    for f in files:
        m = re.fullmatch(r"lm_lstm_epoch(\d+\.\d\d)_(\d+\.\d{4})\.h5", f)
        assert m, f
        assert any(abs(float(m.group(2)) - v) < 6e-5 for v in vals), (f, vals)
    # the best checkpoint is the one with the lowest validation loss
    best = os.path.join(cv, "lm_lstm_best.h5")
    assert os.path.exists(best)
    lowest = min(files, key=lambda f: float(f.split("_")[-1][:-3]))
    pb, pl = params_of(best), params_of(os.path.join(cv, lowest))
    assert all(np.array_equal(pb[k], pl[k]) for k in pb), lowest
    assert os.path.exists(os.path.join(cv, "lm_lstm_metrics.jsonl"))
    # -resume auto finds char-rnn's names (the newest epoch)
    out = must([*args[:-4], "-max_iters", 43, "-checkpoint_every", 10, "-print_every", 1,
                "-checkpoint_dir", cv, "-savefile", "lstm", "-resume", "auto"])
    assert "i = 41 / 43" in out and "resuming from" in out and "epoch" in out, out
    # both naming schemes at once is an error
    rc, out, err = run([*args, "-checkpoint_dir", cv, "-checkpoint_name", os.path.join(c.dir, "x")])
    assert rc != 0 and "-checkpoint_name" in err, err


def case_best_torchrnn_names(c):
    out = must(c.train_args("t", "-max_iters", 40, "-checkpoint_every", 10, "-print_every", 0,
                            "-keep_last", 1, "-learning_rate", 0.01))
    vals = [float(v) for v in re.findall(r"val loss = (\S+)", out)]
    best_it = 10 * (1 + int(np.argmin(vals)))
    with h5py.File(os.path.join(c.dir, "t_best.h5")) as f:
        assert f.attrs["iteration"] == best_it, (f.attrs["iteration"], vals)
    # -keep_last 1 kept only the newest numbered checkpoint, and the best survives it
    assert sorted(os.path.basename(f) for f in glob.glob(os.path.join(c.dir, "t_*.h5"))) == ["t_40.h5", "t_best.h5"]


def case_clip_norm(c):
    # a tiny norm limit against none: the runs differ, and grad_norm is reported before clipping
    a = must(c.train_args("a", "-max_iters", 10, "-checkpoint_every", 0, "-grad_clip", 0))
    b = must(c.train_args("b", "-max_iters", 10, "-checkpoint_every", 0, "-grad_clip", 1e-3,
                          "-grad_clip_mode", "norm"))
    assert losses(a)[0] == losses(b)[0] and losses(a)[-1] != losses(b)[-1], (losses(a), losses(b))
    rc, out, err = run(c.train_args("x", "-grad_clip_mode", "sideways"))
    assert rc != 0 and "-grad_clip_mode" in err


def case_inspect(c):
    progress = must(c.train_args("i", "-max_iters", 20, "-checkpoint_every", 10, "-print_every", 20,
                                 "-decay_rate", 0.95, "-learning_rate", 0.1 + 0.2, "-progress", "plain"))
    out = must([prog("crnn-inspect"), os.path.join(c.dir, "i_20.h5")])
    assert "model: lstm, 2 layers of 24, wordvec 8" in out, out
    assert "optimizer: adam, step 20" in out, out
    # the epoch attribute counts epochs completed; the progress line counts from 1, as torch-rnn's
    with h5py.File(os.path.join(c.dir, "i_20.h5")) as f:
        done = float(f.attrs["epoch"])
    shown = re.search(r"^Epoch (\S+) / \S+, i = 20 / 20,", progress, re.M).group(1)
    assert abs(float(shown) - (done + 1)) < 0.006, (shown, done)
    assert f'iteration: 20, epochs completed {done:.2f} (the progress line\'s "Epoch {shown}")' in out, out
    with h5py.File(os.path.join(c.dir, "i_20.h5")) as f:
        elapsed = float(f.attrs["elapsed_seconds"])
    assert f"time: {elapsed:.1f} s of the run" in out, out
    # reals as the shortest text that reads back to the same double
    assert re.search(r"^  decay_rate = 0\.95$", out, re.M), out
    assert re.search(r"^  learning_rate = 0\.30000000000000004$", out, re.M), out
    assert re.search(r"train loss: 20 iterations; first \d", out), out
    assert len(re.findall(r"^val loss = \d+\.\d+ at iteration (10|20)$", out, re.M)) == 2, out
    assert re.search(r"^  rnn_size = 24$", out, re.M) and re.search(r"^  input_json = .*t\.json$", out, re.M), out
    out = must([prog("crnn-inspect"), "-checkpoint", os.path.join(c.dir, "i_20.h5"), "-history", 1])
    assert len(re.findall(r"^train loss = ", out, re.M)) == 20
    rc, out, err = run([prog("crnn-inspect"), os.path.join(c.dir, "none.h5")])
    assert rc != 0 and "none.h5" in err, err


def case_num_samples(c):
    must(c.train_args("s", "-max_iters", 30, "-checkpoint_every", 0, "-print_every", 0))
    ck = os.path.join(c.dir, "s_30.h5")
    one = must([prog("crnn-sample"), ck, "-length", 60, "-seed", 9, "-gpu", -1])
    three = must([prog("crnn-sample"), ck, "-length", 60, "-seed", 9, "-num_samples", 3, "-gpu", -1])
    parts = three.split("\n\n")
    assert len(parts) == 4 and parts[3] == "", repr(three)
    # the first of several is the single sample of the same seed; the others differ from it
    assert parts[0] + "\n" == one, (parts[0], one)
    assert all(len(p) == 60 for p in parts[:3]) and len(set(parts[:3])) == 3, parts
    # greedy: all equal, with a start text counted apart from -length
    g = must([prog("crnn-sample"), ck, "-sample", 0, "-start_text", "The ", "-length", 40, "-num_samples", 2, "-gpu", -1])
    a, b, rest = g.split("\n\n")
    assert a == b and a.startswith("The ") and len(a) == 44 and rest == "", repr(g)
    rc, out, err = run([prog("crnn-sample"), ck, "-num_samples", 0, "-gpu", -1])
    assert rc != 0 and "-num_samples" in err


def case_rmsprop_resume(c):
    args = ("-optimizer", "rmsprop", "-print_every", 1, "-checkpoint_every", 10)
    a = must(c.train_args("a", *args, "-max_iters", 20))
    b = must(c.train_args("b", *args, "-max_iters", 10)) + must(
        c.train_args("b", "-resume", os.path.join(c.dir, "b_10.h5"), "-max_iters", 20))
    assert losses(a) == losses(b), (losses(a), losses(b))
    with h5py.File(os.path.join(c.dir, "b_20.h5")) as f:
        assert "m" not in f["optim"] and f["optim"].attrs["name"] in ("rmsprop", b"rmsprop")
        assert f["optim/v"].shape[0] == sum(v.size for v in params_of(os.path.join(c.dir, "b_20.h5")).values())
    pa, pb = params_of(os.path.join(c.dir, "a_20.h5")), params_of(os.path.join(c.dir, "b_20.h5"))
    assert all(np.array_equal(pa[k], pb[k]) for k in pa)


def case_help(c):
    # every program lists every flag with its default and one line of meaning
    for name in ("crnn-preprocess", "crnn-train", "crnn-sample", "crnn-eval", "crnn-plot", "crnn-inspect"):
        out = must([prog(name), "--help"])
        assert out.startswith("usage: " + name), out
        flags = [l for l in out.splitlines() if re.match(r"^  --?\w", l) and not l.startswith("  -config FILE")]
        assert flags, out
        for line in flags:
            if line.lstrip().startswith("--"):  # a switch (--quiet) has no default
                continue
            assert re.search(r"^  -\w+ \S+ +\S.*\[default: [^\]]*\]", line), (name, line)
    out = must([prog("crnn-train"), "--help"])
    for flag in ("batch_size", "seq_length", "rnn_size", "num_layers", "model_type", "learning_rate", "grad_clip",
                 "lr_decay_every", "checkpoint_every", "checkpoint_name", "resume", "init_from", "gpu", "progress"):
        assert re.search(r"^  -%s " % flag, out, re.M), flag


def case_version(c):
    """--version on every program: the same version, commit and build line, exit 0; each
    checkpoint records the same build (crnn_version), and crnn-inspect shows it"""
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    with open(os.path.join(root, "CMakeLists.txt")) as f:
        version = re.search(r"project\(crnn VERSION (\S+)", f.read()).group(1)
    seen = set()
    for name in ("crnn-preprocess", "crnn-train", "crnn-sample", "crnn-eval", "crnn-plot", "crnn-inspect"):
        for arg in ("--version", "-version"):
            p = subprocess.run([prog(name), arg], capture_output=True, text=True, timeout=60)
            assert p.returncode == 0 and not p.stderr, (name, p.returncode, p.stderr)
            m = re.fullmatch(rf"{name} {re.escape(version)} \(commit (\S+)\)\nbuilt with: (CUDA [^;]+); float; "
                             r"(OpenBLAS [^;]+); ([^;]*MPI[^;]*); HDF5 (\d+\.\d+\.\d+)\n", p.stdout)
            assert m, (name, p.stdout)
            seen.add(m.group(0).split("\n", 1)[1] + m.group(1))
    assert len(seen) == 1, seen  # one build line and commit for all six
    built = next(iter(seen))
    must(c.train_args("ver", "-max_iters", 2, "-checkpoint_every", 0, "-print_every", 0))
    with h5py.File(os.path.join(c.dir, "ver_2.h5")) as f:
        recorded = f.attrs["crnn_version"]
    recorded = recorded.decode() if isinstance(recorded, bytes) else recorded
    commit = re.search(r"\(commit (\S+)\)", must([prog("crnn-train"), "--version"])).group(1)
    line = must([prog("crnn-train"), "--version"]).splitlines()[1][len("built with: "):]
    assert recorded == f"crnn {version} (commit {commit}); {line}", (recorded, built)
    out = must([prog("crnn-inspect"), os.path.join(c.dir, "ver_2.h5")])
    assert f"written by: {recorded}\n" in out, out


CASES = {k[5:]: v for k, v in globals().items() if k.startswith("case_")}

if __name__ == "__main__":
    run_case(CASES)
