#!/usr/bin/env python3
"""End-to-end and bad-input tests of crnn-train, crnn-sample and crnn-eval.

Run as `test_cli.py <case>`; CRNN_BIN names the build folder. Each case makes its own small
text in a temporary folder."""
import glob
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (expect_error, expect_status, losses, must, params_of, prog, read_jsonl,  # noqa: E402
                     refused_while_running, run, run_case, run_in_pty, run_raw, stop_with_signal,
                     val_losses)


def case_end_to_end(c):
    out = must(c.train_args("ck", "-max_iters", 60, "-checkpoint_every", 20, "-print_every", 1))
    ls = losses(out)
    assert len(ls) == 60, f"expected 60 progress lines, got {len(ls)}:\n{out}"
    assert re.search(r"^Epoch \d+\.\d\d / 50, i = 1 / 60, loss = \d+\.\d{6}, \d+ chars/s$", out, re.M), out
    assert np.mean(ls[-10:]) < np.mean(ls[:10]) - 0.3, f"the loss did not fall: {ls[:10]} ... {ls[-10:]}"
    for it in (20, 40, 60):
        assert os.path.exists(os.path.join(c.dir, f"ck_{it}.h5")), f"no checkpoint at {it}"
    assert not glob.glob(os.path.join(c.dir, "*.tmp")), "a .tmp file was left"
    vl = val_losses(out)
    assert len(vl) == 3, out
    assert "done: 60 iterations" in out, out
    ck = os.path.join(c.dir, "ck_60.h5")
    with h5py.File(ck, "r") as f:
        assert f.attrs["iteration"] == 60
        assert len(f["history/train_loss"]) == 60
        np.testing.assert_allclose(f["history/train_loss"][()], ls, atol=2e-6)
        np.testing.assert_allclose(f["history/val_loss"][()], vl, atol=2e-6)
        assert f["config"].attrs["rnn_size"] == 24
    # crnn-eval prints the same validation loss as training did at that checkpoint
    out = must([prog("crnn-eval"), "-checkpoint", ck, "-gpu", "-1"])
    m = re.search(r"^val loss = (\S+)$", out.strip().splitlines()[-1])
    assert m, out
    assert abs(float(m.group(1)) - vl[-1]) < 1e-5, (m.group(1), vl[-1])
    out = must([prog("crnn-eval"), ck, "-split", "test", "-gpu", "-1"])
    assert re.search(r"^test loss = \d+\.\d{6}$", out.strip().splitlines()[-1]), out
    # greedy sampling is deterministic, starts with the start text, and -length counts new characters
    a = must([prog("crnn-sample"), "-checkpoint", ck, "-sample", 0, "-start_text", "The ", "-length", 80, "-gpu", "-1"])
    b = must([prog("crnn-sample"), ck, "-sample", 0, "-primetext", "The ", "-length", 80, "-gpu", "-1"])
    assert a == b
    assert a.startswith("The ") and len(a) == 4 + 80 + 1 and a.endswith("\n"), repr(a)
    # sampling with a seed is repeatable; another seed differs
    s1 = must([prog("crnn-sample"), ck, "-length", 200, "-seed", 5, "-gpu", "-1"])
    s2 = must([prog("crnn-sample"), ck, "-length", 200, "-seed", 5, "-gpu", "-1"])
    s3 = must([prog("crnn-sample"), ck, "-length", 200, "-seed", 6, "-gpu", "-1"])
    assert s1 == s2 and s1 != s3
    assert len(s1) == 201, len(s1)  # an empty start text: the first character counts
    vocab = set(open(c.txt).read())
    assert set(s1[:-1]) <= vocab
    s4 = must([prog("crnn-sample"), ck, "-length", 100, "-temperature", 0.5, "-top_k", 3, "-gpu", "-1"])
    assert len(s4) == 101


def case_resume_exact(c):
    # 40 iterations straight, against 17 + a resume to 40; 12 batches an epoch, so the run
    # crosses epochs, state resets and learning-rate decays (every epoch here)
    common = ("-max_iters", 40, "-lr_decay_every", 1, "-lr_decay_factor", 0.7, "-print_every", 1)
    out_a = must(c.train_args("a", *common, "-checkpoint_every", 17, "-batch_size", 20, "-seq_length", 64))
    out_b1 = must(c.train_args("b", "-max_iters", 17, "-lr_decay_every", 1, "-lr_decay_factor", 0.7,
                               "-checkpoint_every", 17, "-batch_size", 20, "-seq_length", 64))
    out_b2 = must(c.train_args("b", "-resume", os.path.join(c.dir, "b_17.h5"), "-max_iters", 40,
                               "-batch_size", 20, "-seq_length", 64))
    la, lb = losses(out_a), losses(out_b1) + losses(out_b2)
    assert la == lb, f"losses differ:\n{la}\n{lb}"
    pa, pb = params_of(os.path.join(c.dir, "a_40.h5")), params_of(os.path.join(c.dir, "b_40.h5"))
    for k in pa:
        assert np.array_equal(pa[k], pb[k]), f"{k} differs after resume"
    with h5py.File(os.path.join(c.dir, "a_40.h5")) as fa, h5py.File(os.path.join(c.dir, "b_40.h5")) as fb:
        for k in ("optim/m", "optim/v", "history/train_loss", "state/hidden/0/h", "state/hidden/1/c"):
            assert np.array_equal(fa[k][()], fb[k][()]), k
        assert fa["optim"].attrs["learning_rate"] == fb["optim"].attrs["learning_rate"]
        assert abs(fa["optim"].attrs["learning_rate"] - 2e-3 * 0.7 ** 3) < 1e-12, fa["optim"].attrs["learning_rate"]
    # -resume auto picks the newest valid checkpoint and skips a broken newer one
    with open(os.path.join(c.dir, "b_99.h5"), "wb") as f:
        f.write(b"not hdf5")
    out = must(c.train_args("b", "-resume", "auto", "-max_iters", 42, "-batch_size", 20, "-seq_length", 64))
    assert "skipping" in out and "b_99.h5" in out, out
    assert losses(out)[0] == losses(out)[0] and re.search(r"i = 41 / 42", out), out
    # -resume auto without any checkpoint starts fresh
    out = must(c.train_args("fresh", "-resume", "auto", "-max_iters", 3))
    assert "starting a fresh run" in out and "i = 1 / 3" in out, out
    # changing the model on resume is refused
    rc, out, err = run(c.train_args("b", "-resume", os.path.join(c.dir, "b_40.h5"), "-rnn_size", 32, "-max_iters", 45,
                                    "-batch_size", 20, "-seq_length", 64))
    assert rc != 0 and "rnn_size" in err and "b_40.h5" in err, err


def case_precision(c):
    # -precision bf16: recorded in the checkpoint's /config; a resume without the flag continues
    # it exactly; changing it on resume is refused, also for a checkpoint from before the flag
    common = ("-max_iters", 10, "-print_every", 1, "-checkpoint_every", 5)
    out_a = must(c.train_args("a", *common, "-precision", "bf16"))
    out_b = must(c.train_args("b", "-max_iters", 5, "-print_every", 1, "-checkpoint_every", 5, "-precision", "bf16"))
    out_b2 = must(c.train_args("b", "-resume", os.path.join(c.dir, "b_5.h5"), "-max_iters", 10))
    la, lb = losses(out_a), losses(out_b) + losses(out_b2)
    assert len(la) == 10 and la == lb, f"bf16 losses differ after resume:\n{la}\n{lb}"
    with h5py.File(os.path.join(c.dir, "b_10.h5")) as f:
        assert f["config"].attrs["precision"] in (b"bf16", "bf16"), f["config"].attrs["precision"]
    # float32 from the same start: the same within bf16's rounding, and not equal
    lf = losses(must(c.train_args("f", *common)))
    assert la != lf and max(abs(x - y) for x, y in zip(la, lf)) < 0.02, f"bf16 {la}\nfloat32 {lf}"
    for ck, flag in (("b_5.h5", "float32"), ("f_5.h5", "bf16")):
        rc, out, err = run(c.train_args("r", "-resume", os.path.join(c.dir, ck), "-precision", flag, "-max_iters", 12))
        assert rc == 2 and "-precision" in err and ck in err and "-init_from" in err, (rc, err)
    golden = os.path.join(c.dir, "golden.h5")
    shutil.copy(os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "resume_golden", "ck_10.h5"), golden)
    rc, out, err = run([prog("crnn-train"), "-resume", golden, "-precision", "bf16", "-max_iters", 12, "-gpu", "-1",
                        "-checkpoint_name", os.path.join(c.dir, "g")])
    assert rc == 2 and "written before -precision existed" in err and "golden.h5" in err, (rc, err)
    expect_error(c.train_args("x", "-precision", "fp16", "-max_iters", 1), "fp16")
    # the generic kernels (no bf16 instructions) give the same losses, and say why they are slower
    rc, out_g, err_g = run(c.train_args("g", *common, "-precision", "bf16"), env=dict(os.environ, CRNN_CPU_ISA="generic"))
    assert rc == 0 and "without AVX512_BF16" in out_g + err_g, (rc, out_g, err_g)
    lg = losses(out_g)
    assert len(lg) == 10 and lg[0] == la[0], f"generic {lg}\nbest {la}"  # the same first step
    # (later steps: Adam's division by the gradients' size turns summation-order bits into ~1e-5)
    assert max(abs(x - y) for x, y in zip(la, lg)) <= 1e-4 < max(abs(x - y) for x, y in zip(la, lf)), (la, lg, lf)


def case_cells(c):
    # -model_type gru and rnn (and the -model alias): train, sample, resume bit for bit, and a
    # checkpoint holding model_type and the cell's shapes (G = 3, 1) and no cell state
    for cell, G in (("gru", 3), ("rnn", 1)):
        flag = "-model_type" if cell == "gru" else "-model"
        common = (flag, cell, "-lr_decay_every", 1, "-batch_size", 20, "-seq_length", 64, "-print_every", 1)
        out_a = must(c.train_args(cell + "a", *common, "-max_iters", 30, "-checkpoint_every", 13))
        la = losses(out_a)
        assert len(la) == 30 and np.mean(la[-5:]) < np.mean(la[:5]) - 0.2, f"{cell}: the loss did not fall: {la}"
        out_b = must(c.train_args(cell + "a", "-resume", os.path.join(c.dir, cell + "a_13.h5"), "-max_iters", 30,
                                  "-batch_size", 20, "-seq_length", 64, "-print_every", 1,
                                  "-checkpoint_name", os.path.join(c.dir, cell + "b")))
        assert losses(out_b) == la[13:], f"{cell}: losses differ after resume:\n{la[13:]}\n{losses(out_b)}"
        pa = params_of(os.path.join(c.dir, cell + "a_30.h5"))
        pb = params_of(os.path.join(c.dir, cell + "b_30.h5"))
        for k in pa:
            assert np.array_equal(pa[k], pb[k]), f"{cell}: {k} differs after resume"
        ck = os.path.join(c.dir, cell + "a_30.h5")
        with h5py.File(ck, "r") as f:
            mt = f.attrs["model_type"]
            assert (mt.decode() if isinstance(mt, bytes) else mt) == cell, mt
            assert f["params/rnn/0/W_h"].shape == (24, G * 24), f["params/rnn/0/W_h"].shape
            assert "h" in f["state/hidden/0"] and "c" not in f["state/hidden/0"], list(f["state/hidden/0"])
        a = must([prog("crnn-sample"), ck, "-sample", 0, "-start_text", "The ", "-length", 60, "-gpu", "-1"])
        assert a.startswith("The ") and len(a) == 4 + 60 + 1, repr(a)
        assert set(a[:-1]) <= set(open(c.txt).read())
        s1 = must([prog("crnn-sample"), ck, "-length", 100, "-seed", 3, "-gpu", "-1"])
        assert len(s1) == 101
        # the model type may not change on resume
        rc, out, err = run(c.train_args(cell + "a", "-resume", ck, "-model_type", "lstm", "-max_iters", 31,
                                        "-batch_size", 20, "-seq_length", 64))
        assert rc != 0 and "model_type" in err, err


def case_onehot(c):
    # -wordvec_size 0, char-rnn's one-hot input: trains, resumes bit for bit, samples and
    # evaluates; the checkpoint has no /params/embedding and layer 0's W_x is [V, 4H]
    common = ("-wordvec_size", 0, "-batch_size", 20, "-seq_length", 64, "-lr_decay_every", 1,
              "-print_every", 1)
    out_a = must(c.train_args("oa", *common, "-max_iters", 30, "-checkpoint_every", 13))
    la = losses(out_a)
    assert len(la) == 30 and np.mean(la[-5:]) < np.mean(la[:5]) - 0.2, f"the loss did not fall: {la}"
    out_b = must(c.train_args("oa", "-resume", os.path.join(c.dir, "oa_13.h5"), *common, "-max_iters", 30,
                              "-checkpoint_name", os.path.join(c.dir, "ob")))
    assert losses(out_b) == la[13:], f"losses differ after resume:\n{la[13:]}\n{losses(out_b)}"
    ck = os.path.join(c.dir, "oa_30.h5")
    pa, pb = params_of(ck), params_of(os.path.join(c.dir, "ob_30.h5"))
    assert sorted(pa) == sorted(pb), (sorted(pa), sorted(pb))
    for k in pa:
        assert np.array_equal(pa[k], pb[k]), f"{k} differs after resume"
    with h5py.File(ck, "r") as fa, h5py.File(os.path.join(c.dir, "ob_30.h5"), "r") as fb:
        for k in ("optim/m", "optim/v", "state/hidden/0/h", "state/hidden/1/c"):
            assert np.array_equal(fa[k][()], fb[k][()]), k
    V = len(set(open(c.txt).read()))
    with h5py.File(ck, "r") as f:
        assert int(f.attrs["wordvec_size"]) == 0 and int(f.attrs["vocab_size"]) == V, dict(f.attrs)
        assert "embedding" not in f["params"], list(f["params"])
        assert f["params/rnn/0/W_x"].shape == (V, 4 * 24), f["params/rnn/0/W_x"].shape
        assert f["params/rnn/1/W_x"].shape == (24, 4 * 24), f["params/rnn/1/W_x"].shape
        # the optimizer moments cover exactly the parameters
        n = sum(d.size for d in pa.values())
        assert f["optim/m"].shape == (n,) and f["optim/v"].shape == (n,), (f["optim/m"].shape, n)
    a = must([prog("crnn-sample"), ck, "-sample", 0, "-start_text", "The ", "-length", 60, "-gpu", "-1"])
    assert a.startswith("The ") and len(a) == 4 + 60 + 1, repr(a)
    assert set(a[:-1]) <= set(open(c.txt).read())
    s1 = must([prog("crnn-sample"), ck, "-length", 100, "-seed", 3, "-gpu", "-1"])
    assert len(s1) == 101 and s1 == must([prog("crnn-sample"), ck, "-length", 100, "-seed", 3, "-gpu", "-1"])
    # crnn-eval gives the validation loss training printed at that checkpoint
    vl = val_losses(out_a)
    out = must([prog("crnn-eval"), "-checkpoint", ck, "-gpu", "-1"])
    m = re.search(r"^val loss = (\S+)$", out.strip().splitlines()[-1])
    assert m and abs(float(m.group(1)) - vl[-1]) < 1e-5, (out, vl)
    # -init_from a one-hot checkpoint, and the input width may not change on resume
    must(c.train_args("oi", "-init_from", ck, "-wordvec_size", 0, "-max_iters", 2))
    rc, out, err = run(c.train_args("oa", "-resume", ck, "-max_iters", 31, "-batch_size", 20, "-seq_length", 64))
    assert rc != 0 and "wordvec_size" in err, err
    expect_error(c.train_args("neg", "-wordvec_size", -1, "-max_iters", 1), "-wordvec_size")


def case_signal(c):
    it = stop_with_signal(c, c.train_args("sig", "-max_iters", 1000000, "-checkpoint_every", 0, "-print_every", 1),
                          signal.SIGTERM)
    out = must(c.train_args("sig", "-resume", "auto", "-max_iters", it + 3))
    assert f"i = {it + 1} / {it + 3}" in out, out


def case_bad_input(c):
    before = sorted(os.listdir(c.dir))
    # too little text for B*S+1
    expect_error(c.train_args("x", "-batch_size", 500, "-seq_length", 50), "t.h5", "-batch_size", "-seq_length")
    # flags
    expect_error(c.train_args("x", "-rnn_size", 0), "-rnn_size")
    expect_error(c.train_args("x", "-batch_size", -1), "-batch_size")
    expect_error(c.train_args("x", "-learning_rate", "abc"), "-learning_rate", "abc")
    expect_error(c.train_args("x", "-no_such_flag", 1), "no_such_flag", "--help")
    expect_error([prog("crnn-train"), "-input_h5"], "-input_h5", "value")
    expect_error(c.train_args("x", "-model_type", "transformer"), "transformer", "lstm", "gru", "rnn")
    expect_error(c.train_args("x", "-dropout", 1), "-dropout", "[0, 1)")
    expect_error(c.train_args("x", "-dropout", -0.1), "-dropout", "[0, 1)")
    expect_error(c.train_args("x", "-batchnorm", 1), "batchnorm")
    expect_error([prog("crnn-train"), "-input_json", c.json], "-input_h5")
    # a missing, truncated or garbage data file
    expect_error(c.train_args("x", "-input_h5", os.path.join(c.dir, "nope.h5")), "nope.h5")
    trunc = os.path.join(c.dir, "trunc.h5")
    data = open(c.h5, "rb").read()
    open(trunc, "wb").write(data[: len(data) // 2])
    expect_error(c.train_args("x", "-input_h5", trunc), "trunc.h5")
    junk = os.path.join(c.dir, "junk.json")
    open(junk, "w").write("{not json")
    expect_error(c.train_args("x", "-input_json", junk), "junk.json")
    # an unwritable checkpoint folder (a path through a regular file)
    expect_error([*c.train_args("x"), "-checkpoint_name", os.path.join(c.txt, "sub", "ck")], "checkpoint", "t.txt")
    after = sorted(os.listdir(c.dir))
    assert set(after) - set(before) == {"trunc.h5", "junk.json"}, f"files left: {set(after) - set(before)}"

    # a trained checkpoint for the sampling and evaluation cases
    must(c.train_args("ck", "-max_iters", 3, "-checkpoint_every", 0))
    ck = os.path.join(c.dir, "ck_3.h5")
    expect_error([prog("crnn-sample"), ck, "-temperature", 0, "-gpu", -1], "-temperature", "-sample 0")
    expect_error([prog("crnn-sample"), ck, "-start_text", "The Ω", "-gpu", -1], "Ω")
    expect_error([prog("crnn-sample"), "-gpu", -1], "-checkpoint")
    expect_error([prog("crnn-sample"), os.path.join(c.dir, "none.h5"), "-gpu", -1], "none.h5")
    bad = os.path.join(c.dir, "bad_ck.h5")
    blob = open(ck, "rb").read()
    open(bad, "wb").write(blob[: len(blob) // 3])
    expect_error([prog("crnn-sample"), bad, "-gpu", -1], "bad_ck.h5")
    open(bad, "wb").write(os.urandom(4096))
    expect_error([prog("crnn-sample"), bad, "-gpu", -1], "bad_ck.h5")
    expect_error([prog("crnn-eval"), bad, "-gpu", -1], "bad_ck.h5")
    # data whose vocabulary does not match the checkpoint's
    other_txt, other_h5, other_json = (os.path.join(c.dir, n) for n in ("o.txt", "o.h5", "o.json"))
    open(other_txt, "w").write("0123456789+-*/=\n" * 2000)
    must([prog("crnn-preprocess"), "--input_txt", other_txt, "--output_h5", other_h5, "--output_json", other_json, "--quiet"])
    expect_error(c.train_args("y", "-input_h5", other_h5, "-input_json", other_json, "-init_from", ck), "vocabulary", "o.json")
    expect_error([prog("crnn-eval"), ck, "-input_h5", other_h5, "-input_json", other_json, "-gpu", -1], "vocabulary", "o.json")
    expect_error(c.train_args("y", "-input_h5", other_h5, "-input_json", other_json, "-resume", ck), "vocabulary")
    assert not glob.glob(os.path.join(c.dir, "y_*")), "a failed run left a checkpoint"


def case_nonfinite(c):
    rc, out, err = run(c.train_args("nan", "-max_iters", 50, "-learning_rate", 1e38, "-grad_clip", 0,
                                    "-checkpoint_every", 1))
    assert rc != 0, out
    m = re.search(r"loss is (nan|inf) at iteration (\d+)", err)
    assert m, err
    assert "-learning_rate" in err
    it = int(m.group(2))
    assert not os.path.exists(os.path.join(c.dir, f"nan_{it}.h5"))
    for f in glob.glob(os.path.join(c.dir, "nan_*.h5")):
        for k, v in params_of(f).items():
            assert np.all(np.isfinite(v)), f"{f} holds non-finite {k}"


def case_init_from(c):
    must(c.train_args("base", "-max_iters", 5, "-checkpoint_every", 0))
    ck = os.path.join(c.dir, "base_5.h5")
    out = must(c.train_args("next", "-init_from", ck, "-max_iters", 3, "-checkpoint_every", 0))
    assert "i = 1 / 3" in out, out
    out = must(c.train_args("keep", "-init_from", ck, "-reset_iterations", 0, "-max_iters", 8, "-checkpoint_every", 0))
    assert "i = 6 / 8" in out, out
    # -config: name = value lines, the command line wins
    cfg = os.path.join(c.dir, "run.cfg")
    open(cfg, "w").write("# a preset\nlearning_rate = 0.001\nmax_iters = 2\ncheckpoint_every = 0\n")
    out = must([*c.train_args("cfg", "-config", cfg), "-max_iters", 4])
    assert "i = 4 / 4" in out, out
    with h5py.File(os.path.join(c.dir, "cfg_4.h5")) as f:
        assert f["config"].attrs["learning_rate"] == 0.001
        assert f["config"].attrs["max_iters"] == 4


def case_metrics(c):
    import json
    must(c.train_args("m", "-max_iters", 30, "-print_every", 5, "-checkpoint_every", 10, "-keep_last", 2))
    recs = read_jsonl(os.path.join(c.dir, "m_metrics.jsonl"))
    train = [r for r in recs if r["type"] == "train"]
    val = [r for r in recs if r["type"] == "val"]
    assert [r["iteration"] for r in train] == [5, 10, 15, 20, 25, 30], train
    assert [r["iteration"] for r in val] == [10, 20, 30], val
    # each validation's batches (all of them) and time; the start-up and each checkpoint's time
    assert all(r["val_batches"] == r["val_batches_total"] > 0 and r["val_seconds"] > 0 for r in val), val
    assert [(r["type"], r["iteration"]) for r in recs if r["type"] in ("start", "checkpoint")] == \
        [("start", 0), ("checkpoint", 10), ("checkpoint", 20), ("checkpoint", 30)], recs
    assert all(r["seconds"] > 0 for r in recs if r["type"] in ("start", "checkpoint")), recs
    for r in train:
        for k in ("epoch", "loss", "learning_rate", "grad_norm", "chars_per_s"):
            assert isinstance(r[k], float) and r[k] > 0, (k, r)
        assert set(r["time"]) == {"compute", "comm", "io"} and len(r["time"]["compute"]) == 1, r
    with h5py.File(os.path.join(c.dir, "m_30.h5")) as f:
        np.testing.assert_allclose([r["val_loss"] for r in val], f["history/val_loss"][()], rtol=1e-6)
        np.testing.assert_allclose(train[-1]["loss"], f["history/train_loss"][29], rtol=1e-6)
    # torch-rnn's sidecar JSON beside each kept checkpoint; -keep_last 2 removed the oldest pair
    assert not os.path.exists(os.path.join(c.dir, "m_10.h5")) and not os.path.exists(os.path.join(c.dir, "m_10.json"))
    side = json.load(open(os.path.join(c.dir, "m_30.json")))
    assert set(side) >= {"opt", "i", "train_loss_history", "val_loss_history", "val_loss_history_it",
                         "forward_backward_times"}, side.keys()
    assert side["i"] == 30 and len(side["train_loss_history"]) == 30 and side["val_loss_history_it"] == [10, 20, 30]
    assert side["opt"]["rnn_size"] == 24 and side["opt"]["checkpoint_name"].endswith("/m")
    # a resume drops the records after the resumed iteration, then appends
    must(c.train_args("m", "-resume", os.path.join(c.dir, "m_20.h5"), "-max_iters", 25, "-print_every", 5))
    its = [(r["type"], r["iteration"]) for r in read_jsonl(os.path.join(c.dir, "m_metrics.jsonl"))]
    assert its == [("start", 0), ("train", 5), ("train", 10), ("val", 10), ("checkpoint", 10), ("train", 15),
                   ("train", 20), ("val", 20), ("checkpoint", 20), ("start", 20), ("train", 25), ("val", 25),
                   ("checkpoint", 25)], its
    # a fresh run of the same name starts the file again
    must(c.train_args("m", "-max_iters", 5, "-print_every", 5, "-checkpoint_every", 0))
    assert [r["iteration"] for r in read_jsonl(os.path.join(c.dir, "m_metrics.jsonl"))] == [0, 5, 5, 5]


def case_advice(c):
    # far too large: memorises random text; validation loss climbs above training loss
    rnd = os.path.join(c.dir, "rnd.txt")
    rng = random.Random(5)
    open(rnd, "w").write("".join(rng.choice("abcdefghij") for _ in range(3000)))
    h5, js = os.path.join(c.dir, "rnd.h5"), os.path.join(c.dir, "rnd.json")
    must([prog("crnn-preprocess"), "--input_txt", rnd, "--output_h5", h5, "--output_json", js, "--quiet"])
    args = c.train_args("big", "-input_h5", h5, "-input_json", js, "-rnn_size", 128, "-num_layers", 1,
                        "-max_iters", 450, "-checkpoint_every", 150, "-print_every", 0, "-learning_rate", 0.01)
    out = must(args)
    assert re.search(r"advice: \d+ parameters for 2400 training characters: the model is far larger", out), out
    assert re.search(r"advice: the validation loss .* is well above the training loss .*overfitting", out), out
    assert "advice" not in must([*args, "-quiet", 1])
    # far too small; three validations are too few to say it has stopped improving, so no
    # underfitting advice yet (case_advice_plateau has the rest)
    out = must(c.train_args("small", "-rnn_size", 4, "-num_layers", 1, "-wordvec_size", 4, "-max_iters", 60,
                            "-checkpoint_every", 20, "-print_every", 0))
    assert re.search(r"advice: \d+ parameters for 16000 training characters: the model is far smaller", out), out
    assert len(val_losses(out)) == 3 and "underfitting" not in out, out
    # of the same order: no advice at the start
    out = must(c.train_args("fit", "-rnn_size", 24, "-max_iters", 1, "-checkpoint_every", 0))
    assert "advice" not in out, out


def case_presets(c):
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "configs")
    expect = {"corpus-1MB": ("gru", 384, 2), "corpus-2MB": ("lstm", 200, 2), "corpus-3MB": ("lstm", 250, 2),
              "corpus-6MB": ("lstm", 400, 2), "corpus-large": ("lstm", 512, 3)}
    assert sorted(os.path.splitext(f)[0] for f in os.listdir(here)) == sorted(expect)
    for name, (cell, H, L) in expect.items():
        # the preset's model; the command line's other flags still apply
        args = [prog("crnn-train"), "-config", os.path.join(here, name + ".conf"), "-input_h5", c.h5,
                "-input_json", c.json, "-gpu", -1, "-batch_size", 2, "-seq_length", 8, "-max_iters", 1,
                "-checkpoint_every", 0, "-checkpoint_name", os.path.join(c.dir, name)]
        out = must(args)
        assert f"{cell} {L} x {H}," in out, out
        with h5py.File(os.path.join(c.dir, name + "_1.h5")) as f:
            assert (f.attrs["model_type"], f.attrs["rnn_size"], f.attrs["num_layers"]) == (cell, H, L)
        # and the command line wins over the preset
        out = must([*args, "-rnn_size", 16, "-model_type", "lstm"])
        assert f"lstm {L} x 16," in out, out


def case_progress(c):
    args = c.train_args("p", "-max_iters", 30, "-checkpoint_every", 10, "-print_every", 1)
    # on a terminal: one live line redrawn in place, with the last validation loss and an ETA
    rc, out = run_in_pty(args)
    assert rc == 0, out
    assert out.count("\r\x1b[K") >= 30, out[:500]
    assert re.search(r"i = 25 / 30, loss = \d+\.\d{4}, val \d+\.\d{4}, \d+ chars/s, \d+:\d\d elapsed, ETA \d+:\d\d", out), out
    assert not re.search(r"loss = \d+\.\d{6}, \d+ chars/s\r?\n", out), "plain progress lines on a terminal"
    assert re.search(r"\r\x1b\[KEpoch [^\r\n]*val loss = \d", out), "the live line was not cleared before a validation line"
    assert "done: 30 iterations" in out
    # in a pipe: plain lines, no carriage returns
    out = run_raw(args)
    assert "\r" not in out and len(losses(out)) == 30, out
    # -progress forces either
    rc, out = run_in_pty([*args, "-progress", "plain"])
    assert rc == 0 and "\x1b[K" not in out and len(losses(out.replace("\r\n", "\n"))) == 30, out
    out = run_raw([*args, "-progress", "line"])
    assert "\r\x1b[K" in out and "ETA" in out, out
    # -quiet silences both
    rc, out = run_in_pty([*args, "-quiet", 1])
    assert rc == 0 and out.strip() == "", repr(out)


def case_lock(c):
    """One writer per run: a second start on a running job's checkpoint name refuses and changes
    nothing; the job goes on and ends as it would have."""
    args = c.train_args("lock", "-max_iters", 1000000, "-checkpoint_every", 10, "-print_every", 1)
    a = refused_while_running(c, args, c.train_args("lock", "-max_iters", 5, "-resume", "auto"), socket.gethostname())
    try:
        a.send_signal(signal.SIGUSR1)
        out, err = a.communicate(timeout=60)
    finally:
        if a.poll() is None:
            a.kill()
    assert a.returncode == 75, (out, err)
    its = [json.loads(line)["iteration"] for line in open(os.path.join(c.dir, "lock_metrics.jsonl")) if '"train"' in line]
    assert its == list(range(1, len(its) + 1)), its
    # the lock dies with its holder: the run continues at once
    out = must(c.train_args("lock", "-resume", "auto", "-max_iters", its[-1] + 1))
    assert f"i = {its[-1] + 1} / {its[-1] + 1}" in out, out


# ---- issue 15: time in the metrics, samples during training, the underfitting advice ----

def check_clock(recs, t_begin, t_end):
    """Every record has time_s and wall (Unix seconds, sub-second); time_s never goes back and,
    within one start of the run, advances as wall does."""
    for r in recs:
        assert isinstance(r.get("time_s"), float) and r["time_s"] >= 0, r
        assert isinstance(r.get("wall"), float) and t_begin - 1 <= r["wall"] <= t_end + 1, (r, t_begin, t_end)
    ts = [r["time_s"] for r in recs]
    assert all(a <= b for a, b in zip(ts, ts[1:])), f"time_s goes back: {ts}"
    assert any(r["wall"] != int(r["wall"]) for r in recs), "wall has no fraction of a second"
    run_start = 0
    for k in range(1, len(recs)):
        if recs[k]["type"] == "start":
            run_start = k
            continue
        if k > run_start and recs[k]["type"] != "checkpoint" and recs[k - 1]["type"] != "checkpoint":
            dt, dw = recs[k]["time_s"] - recs[k - 1]["time_s"], recs[k]["wall"] - recs[k - 1]["wall"]
            assert abs(dt - dw) < 0.05, f"time_s advanced {dt} s while wall advanced {dw} s: {recs[k - 1]} {recs[k]}"


def case_time_resume(c):
    """time_s and wall in every metrics record; a run stopped by a signal and resumed goes on
    from its checkpoint's elapsed_seconds instead of starting again at 0; a checkpoint without
    elapsed_seconds (an older crnn's) still resumes."""
    t_begin = time.time()
    metrics = os.path.join(c.dir, "sig_metrics.jsonl")
    args = c.train_args("sig", "-max_iters", 1000000, "-max_epochs", 100000, "-checkpoint_every", 0,
                        "-print_every", 5, "-progress", "plain")
    p = subprocess.Popen([str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, line = time.time() + 60, ""
        while "i = 5 /" not in line and time.time() < deadline:
            line = p.stdout.readline()
        time.sleep(1.5)  # training goes on: the checkpoint's time is well above any start-up
        p.send_signal(signal.SIGUSR1)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 75, f"exit {p.returncode}\n{out}\n{err}"
    it = int(re.search(r"stopped by a signal at iteration (\d+)", out).group(1))
    with h5py.File(os.path.join(c.dir, f"sig_{it}.h5")) as f:
        elapsed = float(f.attrs["elapsed_seconds"])
    assert 1.5 <= elapsed <= time.time() - t_begin, (elapsed, time.time() - t_begin)
    recs = read_jsonl(metrics)
    check_clock(recs, t_begin, time.time())
    assert {r["type"] for r in recs} == {"start", "train", "val", "checkpoint"}, {r["type"] for r in recs}
    ck = [r for r in recs if r["type"] == "checkpoint"]
    assert [r["iteration"] for r in ck] == [it] and abs(ck[0]["time_s"] - elapsed) < 2e-6, (ck, elapsed)
    # resumed: the clock goes on from the checkpoint's elapsed_seconds
    out = must(c.train_args("sig", "-resume", "auto", "-max_iters", it + 20, "-checkpoint_every", 10,
                            "-print_every", 5))
    t_end = time.time()
    recs = read_jsonl(metrics)
    check_clock(recs, t_begin, t_end)
    starts = [r for r in recs if r["type"] == "start"]
    assert [r["iteration"] for r in starts] == [0, it], starts
    s = starts[1]
    assert s["time_s"] >= elapsed, (s, elapsed)
    assert abs((s["time_s"] - s["seconds"]) - elapsed) < 0.05, f"the resumed clock starts at {s['time_s'] - s['seconds']}, not {elapsed}"
    last = os.path.join(c.dir, f"sig_{it + 20}.h5")
    with h5py.File(last) as f:
        final = float(f.attrs["elapsed_seconds"])
        assert int(f.attrs["iteration"]) == it + 20
    assert final > elapsed and final >= s["time_s"], (final, elapsed, s)
    assert abs([r for r in recs if r["type"] == "checkpoint"][-1]["time_s"] - final) < 2e-6
    # the sidecar keeps torch-rnn's keys
    side = json.load(open(os.path.join(c.dir, f"sig_{it + 20}.json")))
    assert set(side) == {"opt", "i", "train_loss_history", "val_loss_history", "val_loss_history_it",
                         "forward_backward_times"}, side.keys()
    # a checkpoint from before elapsed_seconds resumes, its clock starting from 0
    old = os.path.join(c.dir, "old.h5")
    shutil.copy(last, old)
    with h5py.File(old, "a") as f:
        del f.attrs["elapsed_seconds"]
    must(c.train_args("old", "-resume", old, "-max_iters", it + 22, "-checkpoint_every", 0, "-print_every", 1))
    recs = read_jsonl(os.path.join(c.dir, "old_metrics.jsonl"))
    check_clock(recs, t_begin, time.time())
    assert recs[0]["type"] == "start" and recs[0]["time_s"] - recs[0]["seconds"] < 0.05, recs[0]
    with h5py.File(os.path.join(c.dir, f"old_{it + 22}.h5")) as f:
        assert float(f.attrs["elapsed_seconds"]) < elapsed, "the clock of a checkpoint without elapsed_seconds"
    # a value no clock can have is refused, naming the attribute and the file
    for bad in (-1.0, float("nan")):
        with h5py.File(old, "a") as f:
            f.attrs["elapsed_seconds"] = bad
        expect_error(c.train_args("old", "-resume", old, "-max_iters", it + 23), "elapsed_seconds", "old.h5")


def symbol_text(path, n=6000, seed=3):
    """Text made of characters a JSON string must escape (quotes, backslashes, tabs, newlines)."""
    rng = random.Random(seed)
    with open(path, "w") as f:
        f.write("".join(rng.choice('ab"\\\t\n{}') for _ in range(n)))


def sample_records(recs):
    return [r for r in recs if r["type"] == "sample"]


def case_sample_every(c):
    """-sample_every: a sample after every N validations, in the log and the metrics (escaped
    JSON), drawn on its own model state and random numbers, so that the run trains bit for bit
    as without it; on rank 0 only under mpirun; on the CUDA backend too (-gpu 0)."""
    txt, h5, js = (os.path.join(c.dir, "sym" + e) for e in (".txt", ".h5", ".json"))
    symbol_text(txt)
    must([prog("crnn-preprocess"), "--input_txt", txt, "--output_h5", h5, "--output_json", js, "--quiet"])
    vocab = set(open(txt).read())
    common = ("-input_h5", h5, "-input_json", js, "-max_iters", 60, "-checkpoint_every", 10, "-print_every", 5,
              "-dropout", 0.3, "-progress", "plain")
    out_a = must(c.train_args("a", *common))
    out_b = must(c.train_args("b", *common, "-sample_every", 2, "-sample_length", 50))
    # trains exactly as without the samples: losses, weights, optimizer, hidden states
    assert losses(out_a) == losses(out_b) and len(losses(out_a)) == 12, (losses(out_a), losses(out_b))
    assert val_losses(out_a) == val_losses(out_b), (val_losses(out_a), val_losses(out_b))
    ra, rb = read_jsonl(os.path.join(c.dir, "a_metrics.jsonl")), read_jsonl(os.path.join(c.dir, "b_metrics.jsonl"))
    key = lambda recs: [(r["type"], r["iteration"], r.get("loss"), r.get("val_loss")) for r in recs if r["type"] in ("train", "val")]
    assert key(ra) == key(rb), "the metrics' losses differ with -sample_every"
    with h5py.File(os.path.join(c.dir, "a_60.h5")) as fa, h5py.File(os.path.join(c.dir, "b_60.h5")) as fb:
        names = []
        fa.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) and not n.startswith("history") else None)
        assert any(n.startswith("params/") for n in names) and "optim/m" in names, names
        for n in names:
            assert np.array_equal(fa[n][()], fb[n][()]), f"{n} differs with -sample_every"
    # the samples: after validations 2, 4, 6 (iterations 20, 40, 60), between the validation and
    # the checkpoint, 50 characters of the vocabulary each, printed and recorded alike
    assert sample_records(ra) == [] and "sample at" not in out_a
    samples = sample_records(rb)
    assert [r["iteration"] for r in samples] == [20, 40, 60], samples
    check_clock(rb, 0, time.time())
    for r in samples:
        k = rb.index(r)
        assert (rb[k - 1]["type"], rb[k + 1]["type"]) == ("val", "checkpoint"), rb[k - 1:k + 2]
        assert len(r["text"]) == 50 and set(r["text"]) <= vocab, repr(r["text"])
        assert f"sample at i = {r['iteration']} (-sample_every 2, temperature 0.8):\n{r['text']}\n" in out_b, out_b
    joined = "".join(r["text"] for r in samples)
    assert '"' in joined and "\\" in joined and "\t" in joined, repr(joined)  # escaped, and read back
    # the same run draws the same samples
    must(c.train_args("b2", *common, "-sample_every", 2, "-sample_length", 50))
    assert [r["text"] for r in sample_records(read_jsonl(os.path.join(c.dir, "b2_metrics.jsonl")))] == \
        [r["text"] for r in samples]
    # -quiet: nothing printed, the samples still recorded; a resume continues the count of validations
    out = must(c.train_args("b", "-input_h5", h5, "-input_json", js, "-resume", os.path.join(c.dir, "b_30.h5"),
                            "-max_iters", 50, "-quiet", 1))
    assert out == "", out
    assert [r["iteration"] for r in sample_records(read_jsonl(os.path.join(c.dir, "b_metrics.jsonl")))] == [20, 40], \
        "after a resume from iteration 30, validation 4 is at 40"
    # bytes mode: a sample of bytes that are not UTF-8 is still valid JSON (U+FFFD)
    raw = os.path.join(c.dir, "raw.txt")
    rng = random.Random(4)
    with open(raw, "wb") as f:
        f.write(bytes(rng.choice(b"ab \xe9\xff") for _ in range(4000)))
    rh5, rjs = os.path.join(c.dir, "raw.h5"), os.path.join(c.dir, "raw.json")
    must([prog("crnn-preprocess"), "--input_txt", raw, "--output_h5", rh5, "--output_json", rjs, "--encoding", "bytes",
          "--quiet"])
    out = must(c.train_args("raw", "-input_h5", rh5, "-input_json", rjs, "-max_iters", 10, "-checkpoint_every", 5,
                            "-sample_every", 1, "-sample_length", 80, "-quiet", 1))  # raw bytes in no log
    with open(os.path.join(c.dir, "raw_metrics.jsonl"), "rb") as f:
        lines = [json.loads(line.decode("utf-8")) for line in f]  # strict UTF-8
    raw_samples = sample_records(lines)
    assert len(raw_samples) == 2 and all(len(r["text"]) == 80 for r in raw_samples), raw_samples
    assert "\ufffd" in "".join(r["text"] for r in raw_samples), raw_samples
    # flag values
    expect_error(c.train_args("x", "-sample_every", -1), "-sample_every")
    expect_error(c.train_args("x", "-sample_every", 1, "-sample_length", 0), "-sample_length")
    # the device (on the CPU where there is none): the samples run on the model's backend
    dev = ("-input_h5", h5, "-input_json", js, "-max_iters", 20, "-checkpoint_every", 10, "-print_every", 5,
           "-dropout", 0.3)
    ga, gb = c.train_args("ga", *dev), c.train_args("gb", *dev, "-sample_every", 1, "-sample_length", 30)
    for args in (ga, gb):
        args[args.index("-gpu") + 1] = "0"
    out_ga, out_gb = must(ga), must(gb)
    assert losses(out_ga) == losses(out_gb) and val_losses(out_ga) == val_losses(out_gb)
    pa, pb = params_of(os.path.join(c.dir, "ga_20.h5")), params_of(os.path.join(c.dir, "gb_20.h5"))
    assert all(np.array_equal(pa[k], pb[k]) for k in pa), "-gpu 0: the weights differ with -sample_every"
    gs = sample_records(read_jsonl(os.path.join(c.dir, "gb_metrics.jsonl")))
    assert [r["iteration"] for r in gs] == [10, 20] and all(len(r["text"]) == 30 for r in gs), gs
    # two ranks: rank 0 alone samples, and nobody waits for ever
    if shutil.which("mpirun"):
        args = c.train_args("mp", *common, "-sample_every", 3, "-sample_length", 40)
        args[args.index("-max_iters") + 1] = 30
        out = must(["mpirun", "-np", 2, *args], timeout=240)
        assert out.count("sample at i = ") == 1 and "sample at i = 30 " in out, out
        ms = sample_records(read_jsonl(os.path.join(c.dir, "mp_metrics.jsonl")))
        assert [r["iteration"] for r in ms] == [30] and len(ms[0]["text"]) == 40, ms


def case_advice_plateau(c):
    """The underfitting advice only once the validation loss has stopped improving: a tiny model
    whose validation loss is within 2% of its training loss for validations on end while it
    still falls by more than 1% over three validations is not told to grow; once it has
    plateaued it is, once."""
    small = ("-rnn_size", 4, "-num_layers", 1, "-wordvec_size", 4, "-learning_rate", 0.01, "-print_every", 0)
    out = must(c.train_args("learning", *small, "-max_iters", 1200, "-checkpoint_every", 100))
    vl = val_losses(out)
    with h5py.File(os.path.join(c.dir, "learning_1200.h5")) as f:
        tl, its = f["history/train_loss"][()], f["history/val_iteration"][()]
    train = [float(np.mean(tl[a:b])) for a, b in zip([0, *its[:-1]], its)]
    close = [abs(v - t) < 0.02 * t for v, t in zip(vl, train)]
    assert any(a and b for a, b in zip(close, close[1:])), \
        f"the run never had validation ~ training twice in a row, so it tests nothing: {vl} {train}"
    assert all(vl[k] < 0.99 * vl[k - 3] for k in range(3, len(vl))), f"not still learning: {vl}"
    assert "underfitting" not in out, out
    # the same model trained on until the validation loss stops falling: advised, once
    out = must(c.train_args("plateau", *small, "-max_iters", 12000, "-checkpoint_every", 1000, "-keep_last", 1))
    vl = val_losses(out)
    lines = out.splitlines()
    advised = [k for k, line in enumerate(lines) if "underfitting" in line]
    assert len(advised) == 1, out
    assert re.search(r"advice: the validation loss \(\S+\) stays equal to the training loss \(\S+\) and has stopped "
                     r"improving \(less than 1% better than 3 validations ago\): the model is underfitting", out), out
    # it follows the validation where the rule first held
    k = sum(1 for line in lines[:advised[0]] if "val loss = " in line) - 1
    assert k >= 3 and vl[k] > 0.99 * vl[k - 3], (k, vl)
    assert all(vl[j] <= 0.99 * vl[j - 3] for j in range(3, k)), (k, vl)


def case_typo(c):
    """An unknown flag names the closest one (on the command line and in -config files, with
    file:line), or what a char-rnn/torch-rnn flag became; exit status 2 for all."""
    train = c.train_args("t", "-max_iters", 1)
    expect_status([*train, "-rnn_sise", 32], 2, "unknown flag '-rnn_sise'; did you mean -rnn_size?")
    expect_status([*train, "--rnn_sise=32"], 2, "unknown flag '--rnn_sise'; did you mean --rnn_size?")
    expect_status([*train, "-lerning_rate", 0.1], 2, "did you mean -learning_rate?")
    expect_status([*train, "-chekpoint_every", 5], 2, "did you mean -checkpoint_every?")
    _, err = expect_status([*train, "-xyzzy", 1], 2, "unknown flag '-xyzzy'", "crnn-train --help")
    assert "did you mean" not in err, err
    expect_status([prog("crnn-sample"), "-lenght", 10], 2, "did you mean -length?")
    expect_status([prog("crnn-eval"), "-splt", "val"], 2, "did you mean -split?")
    expect_status([prog("crnn-preprocess"), "--input_txt", c.txt, "--val_fac", 0.1], 2, "did you mean --val_frac?")
    expect_status([prog("crnn-inspect"), "-histroy", 1], 2, "did you mean -history?")
    expect_status([prog("crnn-plot"), "-metrcs", "m.jsonl"], 2, "did you mean -metrics?")
    # -config: the file, the line, the flag as it is written there
    cfg = os.path.join(c.dir, "run.cfg")
    open(cfg, "w").write("# a preset\nrnn_size = 32\n\nlearning_rat = 0.01\n")
    expect_status([*train, "-config", cfg], 2, f"{cfg}:4: unknown flag 'learning_rat'; did you mean learning_rate?")
    open(cfg, "w").write("num_layers = 2\ntrain_frac = 0.9\n")
    expect_status([*train, "-config", cfg], 2, f"{cfg}:2: unknown flag 'train_frac'", "crnn-preprocess")
    open(cfg, "w").write("temprature = 0.5\n")
    expect_status([prog("crnn-sample"), "-config", cfg], 2, f"{cfg}:1: unknown flag 'temprature'; did you mean temperature?")
    # char-rnn's and torch-rnn's flags that crnn does not have: what to use instead
    for flag in ("-train_frac", "-val_frac"):
        expect_status([*train, flag, 0.9], 2, f"unknown flag '{flag}'", "crnn-preprocess", "--val_frac", "--test_frac",
                      "preprocessing")
    for p in (train, [prog("crnn-sample"), "ck.h5"], [prog("crnn-eval"), "ck.h5"]):
        expect_status([*p, "-opencl", 1], 2, "unknown flag '-opencl'", "CUDA or the CPU (-gpu -1)")
    expect_status([*train, "-accurate_gpu_timing", 1], 2, "-accurate_gpu_timing", "metrics")
    expect_status([*train, "-checkpoint", "x.h5"], 2, "-resume", "-init_from")
    # crnn-preprocess has --val_frac itself: no hint there, it works
    must([prog("crnn-preprocess"), "--input_txt", c.txt, "--output_h5", os.path.join(c.dir, "v.h5"), "--output_json",
          os.path.join(c.dir, "v.json"), "--val_frac", 0.2, "--quiet"])
    assert not glob.glob(os.path.join(c.dir, "t_*")), "a refused run wrote a checkpoint"


def case_exit_status(c):
    """0 done, 1 runtime error, 2 flag or value error (75 after a signal: case signal), in every
    program, as --help says; the same through mpirun -np 2."""
    d = c.dir
    missing = os.path.join(d, "missing")
    # crnn-preprocess
    pre = [prog("crnn-preprocess"), "--output_h5", os.path.join(d, "p.h5"), "--output_json", os.path.join(d, "p.json")]
    expect_status([*pre, "--input_txt", c.txt, "--quiet"], 0)
    expect_status([*pre, "--input_txt", c.txt, "--nope", 1], 2, "--nope")
    expect_status([*pre, "--input_txt", c.txt, "--val_frac", 2], 2, "--val_frac")
    expect_status([*pre, "--input_txt", c.txt, "--val_frac", "abc"], 2, "val_frac", "abc")
    expect_status([*pre, "--input_txt", c.txt, "--encoding", "latin1"], 2, "utf-8|bytes")
    expect_status([*pre], 2, "--input_txt")
    expect_status([*pre, "--input_txt", missing + ".txt"], 1, "missing.txt")
    # crnn-train
    expect_status(c.train_args("ok", "-max_iters", 2, "-checkpoint_every", 0), 0)
    ck = os.path.join(d, "ok_2.h5")
    for bad, needle in [(("-rnn_size", -5), "-rnn_size"), (("-rnn_size", "abc"), "-rnn_size"),
                        (("-rnn_size", 0), "-rnn_size"), (("-learning_rate", 0), "-learning_rate"),
                        (("-dropout", 1), "-dropout"), (("-model_type", "lstn"), "-model_type"),
                        (("-batchnorm", 1), "batchnorm"), (("-gpu_backend", "opencl"), "-gpu_backend"), (("-gpu", -2), "-gpu"),
                        (("-resume", ck, "-init_from", ck), "-init_from"),
                        (("-resume", ck, "-rnn_size", 32), "rnn_size"), (("-resume", ck, "-seq_length", 8), "seq_length"),
                        (("-init_from", ck, "-num_layers", 1), "num_layers"),
                        (("-sample_every", -1), "-sample_every"), (("-sample_length", 0), "-sample_length"),
                        (("-batch_size", 100000), "too few")]:
        expect_status(c.train_args("x", *bad), 2, needle)
    expect_status([prog("crnn-train"), "-gpu", -1], 2, "-input_h5")
    expect_status([prog("crnn-train"), "-input_h5"], 2, "-input_h5")
    expect_status(c.train_args("x", "-input_h5", missing + ".h5"), 1, "missing.h5")
    expect_status(c.train_args("x", "-init_from", missing + ".h5"), 1, "missing.h5")
    # a checkpoint of another vocabulary: a mismatch of the flags' files (2), with advice
    other_txt, other_h5, other_json = (os.path.join(d, n) for n in ("o.txt", "o.h5", "o.json"))
    open(other_txt, "w").write("0123456789+-*/=\n" * 2000)
    must([prog("crnn-preprocess"), "--input_txt", other_txt, "--output_h5", other_h5, "--output_json", other_json, "--quiet"])
    expect_status(c.train_args("y", "-input_h5", other_h5, "-input_json", other_json, "-init_from", ck), 2,
                  "vocabulary", "crnn-preprocess --input_txt TEXT --input_json")
    expect_status(c.train_args("y", "-input_h5", other_h5, "-input_json", other_json, "-resume", ck), 2, "vocabulary")
    # crnn-sample
    sample = [prog("crnn-sample"), ck, "-gpu", -1, "-length", 5]
    expect_status(sample, 0)
    expect_status([*sample, "-temperature", 0], 2, "-temperature")
    expect_status([*sample, "-length", -1], 2, "-length")
    expect_status([*sample, "-top_k", -1], 2, "-top_k")
    expect_status([*sample, "-start_text", "The \u03a9"], 2, "-start_text", "\u03a9", "at byte 4")
    expect_status([prog("crnn-sample"), "-gpu", -1], 2, "-checkpoint")
    expect_status([prog("crnn-sample"), missing + ".h5", "-gpu", -1], 1, "missing.h5")
    # crnn-eval
    ev = [prog("crnn-eval"), ck, "-gpu", -1]
    expect_status(ev, 0)
    expect_status([*ev, "-batch_size", -1], 2, "-batch_size")
    expect_status([*ev, "-split", "dev"], 2, "train|val|test")
    expect_status([*ev, "-input_h5", other_h5, "-input_json", other_json], 2, "vocabulary", "--input_json")
    expect_status([prog("crnn-eval"), "-gpu", -1], 2, "-checkpoint")
    expect_status([prog("crnn-eval"), missing + ".h5", "-gpu", -1], 1, "missing.h5")
    expect_status([*ev, "-input_h5", missing + ".h5"], 1, "missing.h5")
    # crnn-inspect
    expect_status([prog("crnn-inspect"), ck], 0)
    expect_status([prog("crnn-inspect")], 2, "crnn-inspect cv/checkpoint_N.h5")
    expect_status([prog("crnn-inspect"), ck, "-history", "x"], 2, "-history")
    expect_status([prog("crnn-inspect"), missing + ".h5"], 1, "missing.h5")
    # crnn-plot (an SVG needs no gnuplot)
    metrics = os.path.join(d, "ok_metrics.jsonl")
    expect_status([prog("crnn-plot"), metrics, "-o", os.path.join(d, "m.svg")], 0)
    expect_status([prog("crnn-plot")], 2, "crnn-plot cv/checkpoint_metrics.jsonl")
    expect_status([prog("crnn-plot"), metrics, "-out", "x.svg"], 2, "-out")
    expect_status([prog("crnn-plot"), missing + ".jsonl", "-o", os.path.join(d, "m2.svg")], 1, "missing.jsonl")
    # every --help says so; crnn-train's adds 75
    for name in ("crnn-preprocess", "crnn-train", "crnn-sample", "crnn-eval", "crnn-plot", "crnn-inspect"):
        last = must([prog(name), "--help"]).strip().splitlines()[-1]
        assert last.startswith("exit status: 0 done, 1 runtime error, 2 flag or value error"), (name, last)
        assert ("75 stopped by a signal" in last) == (name == "crnn-train"), (name, last)
    # under mpirun every rank finds a value error, and mpirun exits 2; a runtime error 1
    mpirun = ["mpirun", "-np", 2, "--oversubscribe", "--bind-to", "none"]
    expect_status([*mpirun, *c.train_args("m", "-rnn_size", -5)], 2, "-rnn_size")
    expect_status([*mpirun, *c.train_args("m", "-rnn_sise", 5)], 2, "did you mean -rnn_size?")
    expect_status([*mpirun, *c.train_args("m", "-input_h5", missing + ".h5")], 1, "missing.h5")
    expect_status([*mpirun, *ev, "-batch_size", -1], 2, "-batch_size")
    assert not glob.glob(os.path.join(d, "[xym]_*.h5")), "a refused run wrote a checkpoint"


def case_quiet(c):
    """-quiet and --quiet alike in every program that has it: alone, =0|1 or a following 0 or 1;
    never a file name; "quiet = 1" in a -config file."""
    d = c.dir
    out_h5, out_json = os.path.join(d, "q.h5"), os.path.join(d, "q.json")
    pre = [prog("crnn-preprocess"), "--input_txt", c.txt, "--output_h5", out_h5, "--output_json", out_json]
    for q in (["-quiet"], ["--quiet"], ["-quiet", 1], ["--quiet", 1], ["--quiet=1"], ["-quiet=1"]):
        assert must([*pre, *q]) == "", q
    for q in (["-quiet", 0], ["--quiet=0"], []):
        assert must([*pre, *q]).startswith("Total vocabulary size: "), q
    # a switch never takes a file name: data.txt stays an argument (crnn-preprocess has none)
    expect_status([*pre, "-quiet", "data.txt"], 2, "unexpected argument 'data.txt'")
    expect_status([*pre, "--quiet=yes"], 2, "--quiet", "0 or 1")
    # crnn-train
    base = c.train_args("q", "-max_iters", 2, "-checkpoint_every", 0)
    for q in (["-quiet"], ["--quiet"], ["-quiet", 1], ["--quiet=1"]):
        assert must([*base, *q]) == "", q
    for q in (["-quiet", 0], ["--quiet=0"]):
        assert "i = 2 / 2" in must([*base, *q]), q
    cfg = os.path.join(d, "quiet.cfg")
    open(cfg, "w").write("quiet = 1\n")
    assert must([*base, "-config", cfg]) == ""
    assert "i = 2 / 2" in must([*base, "-config", cfg, "-quiet", 0])
    open(cfg, "w").write("quiet = 0\n")
    assert "i = 2 / 2" in must([*base, "-config", cfg])
    # its /config records it, and a run resumes from it
    with h5py.File(os.path.join(d, "q_2.h5")) as f:
        assert int(f["config"].attrs["quiet"]) == 0
    must([*base, "-quiet"])
    with h5py.File(os.path.join(d, "q_2.h5")) as f:
        assert int(f["config"].attrs["quiet"]) == 1
    assert must(c.train_args("q", "-resume", os.path.join(d, "q_2.h5"), "-max_iters", 3, "-quiet")) == ""
    assert "i = 4 / 4" in must(c.train_args("q", "-resume", os.path.join(d, "q_3.h5"), "-max_iters", 4, "-quiet", 0))
    # crnn-eval: the checkpoint after -quiet is the checkpoint, not the switch's value
    ck = os.path.join(d, "q_2.h5")
    loud = run([prog("crnn-eval"), ck])  # -gpu 0: on a machine without CUDA it says so on stderr
    assert loud[0] == 0, loud
    for q in (["-quiet"], ["--quiet"], ["-quiet", 1], ["--quiet=1"]):
        rc, out, err = run([prog("crnn-eval"), *q, ck])
        assert rc == 0 and err == "" and out == loud[1], (q, rc, out, err)
    rc, out, err = run([prog("crnn-eval"), "-quiet", 0, ck])
    assert rc == 0 and (out, err) == (loud[1], loud[2]), (out, err)


def case_start_text_file(c):
    """crnn-sample -start_text_file FILE primes as -start_text with the file's text does, long
    primes too; errors name the file; crnn-sample -config works like crnn-train's."""
    d = c.dir
    must(c.train_args("s", "-max_iters", 20, "-checkpoint_every", 0))
    ck = os.path.join(d, "s_20.h5")
    sample = [prog("crnn-sample"), ck, "-gpu", -1, "-length", 60]
    text = open(c.txt).read()
    for name, prime in (("short", "The quick "), ("long", text[1000:1700]), ("newlines", "dog.\nThe cat\n\n")):
        f = os.path.join(d, name + ".txt")
        open(f, "w").write(prime)
        for mode in (["-sample", 0], ["-sample", 1, "-seed", 9, "-num_samples", 2]):
            a = must([*sample, *mode, "-start_text", prime])
            b = must([*sample, *mode, "-start_text_file", f])
            assert a == b and a.startswith(prime), (name, mode, a[:200], b[:200])
    # an empty file is an empty start text
    empty = os.path.join(d, "empty.txt")
    open(empty, "w").close()
    assert must([*sample, "-seed", 4, "-start_text_file", empty]) == must([*sample, "-seed", 4])
    # errors
    short = os.path.join(d, "short.txt")
    expect_status([*sample, "-start_text", "x", "-start_text_file", short], 2, "-start_text", "-start_text_file", "not both")
    missing = os.path.join(d, "missing.txt")
    expect_status([*sample, "-start_text_file", missing], 1, missing, "-start_text_file")
    expect_status([*sample, "-start_text_file", d], 1, d, "-start_text_file")
    bad = os.path.join(d, "bad.txt")
    open(bad, "w").write("The \u03a9 fox")
    expect_status([*sample, "-start_text_file", bad], 2, f"-start_text_file {bad}", "\u03a9", "at byte 4",
                  "not in the vocabulary")
    open(bad, "wb").write(b"The \xff fox")
    expect_status([*sample, "-start_text_file", bad], 2, f"-start_text_file {bad}", "invalid UTF-8", "at byte 4")
    # crnn-sample -config: name = value lines, the command line wins
    cfg = os.path.join(d, "sample.cfg")
    open(cfg, "w").write(f"# a sampling preset\nsample = 0\nlength = 30\nstart_text_file = {short}\ngpu = -1\n")
    want = must([prog("crnn-sample"), ck, "-gpu", -1, "-sample", 0, "-length", 30, "-start_text", "The quick "])
    assert must([prog("crnn-sample"), ck, "-config", cfg]) == want
    want10 = must([prog("crnn-sample"), ck, "-gpu", -1, "-sample", 0, "-length", 10, "-start_text", "The quick "])
    assert must([prog("crnn-sample"), "-config", cfg, ck, "-length", 10]) == want10 != want
    expect_status([prog("crnn-sample"), ck, "-config", missing], 2, missing, "-config")


CASES = {k[5:]: v for k, v in globals().items() if k.startswith("case_")}

if __name__ == "__main__":
    run_case(CASES)
