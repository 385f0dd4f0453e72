#!/usr/bin/env python3
"""The tutorials' commands, as their users type them (program names aside), on a small text.

  test_tutorial.py torchrnn   torch-rnn's README: preprocess, train with its defaults (50 epochs)
                              and -rnn_size 200 -num_layers 2 on the CPU, sample 2000 characters
  test_tutorial.py charrnn    char-rnn's: train -data_dir DIR (input.txt inside) with -dropout
                              and -gpuid -1, sample a checkpoint named positionally

The programs are found on the PATH (CRNN_BIN is put first) and run in a fresh folder, so the
relative paths data/... and cv/... are the tutorial's."""
import glob
import os
import re
import subprocess
import sys

import h5py

sys.path.insert(0, os.path.dirname(__file__))
from harness import BIN, make_text, tempdir  # noqa: E402

TIMEOUT = 900
N, T = 50, 50  # torch-rnn's and char-rnn's default -batch_size and -seq_length


def sh(cwd, *args):
    """Runs a command line as typed (args are words) in cwd; returns stdout, fails loudly."""
    env = dict(os.environ, PATH=os.path.abspath(BIN) + os.pathsep + os.environ.get("PATH", ""))
    p = subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=TIMEOUT)
    if p.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr}")
    return p.stdout


def losses(out):
    return [float(v) for v in re.findall(r"i = \d+ / \d+, loss = ([^,\s]+)", out)]


def batches_per_epoch(h5, split="train"):
    """torch-rnn's DataLoader: (n - 1) // (N * T) batches of N streams x T steps."""
    with h5py.File(h5) as f:
        return (len(f[split]) - 1) // (N * T)


def case_torchrnn(d):
    os.mkdir(os.path.join(d, "data"))
    # 7000 characters: 80% train = 2 batches an epoch, so the default 50 epochs are 100 steps
    make_text(os.path.join(d, "data", "F.txt"), 7000, seed=11)
    sh(d, "crnn-preprocess", "--input_txt", "data/F.txt", "--output_h5", "data/F.h5",
       "--output_json", "data/F.json")
    per_epoch = batches_per_epoch(os.path.join(d, "data", "F.h5"))
    assert per_epoch == 2, per_epoch
    out = sh(d, "crnn-train", "-input_h5", "data/F.h5", "-input_json", "data/F.json", "-gpu", "-1",
             "-rnn_size", "200", "-num_layers", "2")
    last = 50 * per_epoch
    ck = f"cv/checkpoint_{last}.h5"
    assert f"wrote {ck}" in out, out[-2000:]
    ls = losses(out)
    assert len(ls) == last, (len(ls), out[-2000:])  # -print_every 1
    assert ls[-1] < ls[0] - 0.5, f"the loss did not fall: {ls[0]} -> {ls[-1]}"
    assert re.search(rf"i = {last}, val loss = [0-9.]+", out), out[-2000:]
    with h5py.File(os.path.join(d, ck)) as f:
        assert (f.attrs["model_type"], f.attrs["rnn_size"], f.attrs["num_layers"], f.attrs["iteration"]) \
            == ("lstm", 200, 2, last), dict(f.attrs)
    # torch-rnn names its checkpoint by the iteration: this text's last is `last`, the README's 10000
    text = sh(d, "crnn-sample", "-checkpoint", ck, "-length", "2000", "-gpu", "-1")
    with open(os.path.join(d, "data", "F.txt")) as f:
        alphabet = set(f.read())
    body = text.rstrip("\n")
    assert len(body) >= 2000, len(body)
    assert set(body) <= alphabet, set(body) - alphabet


def case_charrnn(d):
    data = os.path.join(d, "data", "tinytext")
    os.makedirs(data)
    # 5600 characters: 95% train = 2 batches an epoch, 100 steps in 50 epochs
    make_text(os.path.join(data, "input.txt"), 5600, seed=12)
    out = sh(d, "crnn-train", "-data_dir", "data/tinytext", "-dropout", "0.5", "-eval_val_every", "50",
             "-gpuid", "-1", "-checkpoint_dir", "cv", "-savefile", "lstm")
    assert os.path.exists(os.path.join(data, "input.h5")) and os.path.exists(os.path.join(data, "input.json"))
    per_epoch = batches_per_epoch(os.path.join(data, "input.h5"))
    assert per_epoch == 2, per_epoch
    names = sorted(os.path.basename(p) for p in glob.glob(os.path.join(d, "cv", "lm_lstm_epoch*.h5")))
    # a checkpoint after iteration 50 (epoch 25) and after the last (epoch 50)
    assert [n[:19] for n in names] == ["lm_lstm_epoch25.00_", "lm_lstm_epoch50.00_"], names
    ls = losses(out)
    assert len(ls) == 100 and ls[-1] < ls[0] - 0.3, (len(ls), ls[:1], ls[-1:])
    with h5py.File(os.path.join(d, "cv", names[-1])) as f:
        assert abs(f.attrs["dropout"] - 0.5) < 1e-12, dict(f.attrs)
    # char-rnn's sample.lua: the checkpoint is positional
    text = sh(d, "crnn-sample", "cv/" + names[-1], "-gpuid", "-1", "-primetext", "The ", "-length", "300",
              "-temperature", "0.8")
    assert text.startswith("The ") and len(text.rstrip("\n")) >= 304, text
    best = sh(d, "crnn-sample", "cv/lm_lstm_best.h5", "-gpuid", "-1", "-length", "50", "-sample", "0")
    assert len(best.rstrip("\n")) >= 50, best


CASES = {"torchrnn": case_torchrnn, "charrnn": case_charrnn}

if __name__ == "__main__":
    with tempdir(prefix="crnn-tutorial-") as d:
        CASES[sys.argv[1]](d)
    print(f"{sys.argv[1]}: ok")
