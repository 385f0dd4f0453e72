#!/usr/bin/env python3
"""Parity of crnn with the PyTorch reference (tests/torch_reference.py).

  test_parity.py preprocess   crnn-preprocess = torch-rnn's preprocess.py (splits, dtype, JSON)
  test_parity.py grads        crnn-test-grads (float32): loss and every gradient, 1e-5 rel. norm
  test_parity.py grads64      crnn-test-grads64 (double): the same at 1e-10
  test_parity.py train        crnn-train -init_from: 10 Adam steps, per-iteration loss within 1e-4
  test_parity.py sample       crnn-sample -sample 0: greedy text identical for 200 characters
  test_parity.py eval         crnn-eval: split loss (N shrinking included) within 2e-6
  test_parity.py gru          grads, grads64, train and sample with -model_type gru (nn.GRU);
                              each alone as grads_gru, grads64_gru, train_gru, sample_gru
  test_parity.py rnn          the same with -model_type rnn (nn.RNN, tanh): grads_rnn, ...
  test_parity.py onehot       grads, grads64, train, sample and eval with -wordvec_size 0
                              (char-rnn's one-hot input; F.one_hot into input_size V): grads_onehot,
                              ...; onehot_gru and onehot_rnn: grads, grads64, train and sample
                              for those cells (grads_onehot_gru, ...)
  test_parity.py dropout      train with -dropout for every cell, embedded and one-hot input, against
                              masks from the reference's own Philox (train_dropout_lstm, ...)
  test_parity.py bf16         crnn-test-grads with -precision bf16's products, every cell, against
                              the equations with each product's operands rounded to bf16
                              (ref.bf16_matmul): grads_bf16_lstm, grads_bf16_gru, grads_bf16_rnn
  test_parity.py all          every one of the above

Binaries come from $CRNN_BIN (the build folder). Each check makes its own small text in a
temporary folder, preprocesses it with crnn-preprocess and writes random weights with h5py.
A failure names the tensor, iteration or character that differs and by how much.
Set CRNN_PARITY_KEEP=1 to keep the temporary folder.
"""
import json
import os
import re
import subprocess
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_reference as ref  # noqa: E402
from harness import Workspace, binary  # noqa: E402

torch.set_num_threads(1)


class Failure(AssertionError):
    """A check's differences, all of them (harness.binary and Workspace raise AssertionError)."""


def run(args, timeout=300):
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    if p.returncode != 0:
        raise Failure("command failed (exit %d): %s\nstdout:\n%s\nstderr:\n%s"
                      % (p.returncode, " ".join(args), p.stdout.decode("utf-8", "replace")[-3000:],
                         p.stderr.decode("utf-8", "replace")[-3000:]))
    return p.stdout, p.stderr


# --------------------------------------------------------------------------------------------
# (0) preprocess


def check_preprocess():
    ws = Workspace()
    errors = []
    try:
        for vf, tf in ((None, None), (0.05, 0.0)):
            h5, js = ws.h5, ws.json
            if vf is not None:
                h5, js = ws.path("frac.h5"), ws.path("frac.json")
                run([binary("crnn-preprocess"), "--input_txt", ws.txt, "--output_h5", h5,
                     "--output_json", js, "--val_frac", str(vf), "--test_frac", str(tf)])
            want_tti, want_splits, want_dtype = ref.preprocess_text(
                ws.text, 0.1 if vf is None else vf, 0.1 if tf is None else tf)
            tag = "val_frac=%s test_frac=%s" % (vf or 0.1, 0.1 if tf is None else tf)
            with open(js, encoding="utf-8") as f:
                got = json.load(f)
            want_itt = {str(i): t for t, i in want_tti.items()}
            if got.get("token_to_idx") != want_tti:
                errors.append("%s: JSON token_to_idx differs: got %s, want %s"
                              % (tag, got.get("token_to_idx"), want_tti))
            if got.get("idx_to_token") != want_itt:
                errors.append("%s: JSON idx_to_token differs: got %s, want %s"
                              % (tag, got.get("idx_to_token"), want_itt))
            with h5py.File(h5, "r") as f:
                for s in ("train", "val", "test"):
                    if s not in f:
                        errors.append("%s: /%s missing" % (tag, s))
                        continue
                    d = f[s]
                    if d.dtype != want_dtype or d.ndim != 1:
                        errors.append("%s: /%s is %s %s, want 1-D %s"
                                      % (tag, s, d.dtype, d.shape, np.dtype(want_dtype)))
                    a = d[()]
                    w = want_splits[s]
                    if len(a) != len(w):
                        errors.append("%s: /%s has %d tokens, want %d" % (tag, s, len(a), len(w)))
                    elif not np.array_equal(a, w):
                        k = int(np.argmax(a != w))
                        errors.append("%s: /%s differs first at token %d: %d, want %d"
                                      % (tag, s, k, a[k], w[k]))
            print("preprocess %s: V=%d, %s tokens" % (
                tag, len(want_tti), "/".join(str(len(want_splits[s])) for s in
                                             ("train", "val", "test"))))
    finally:
        ws.close()
    if errors:
        raise Failure("\n".join(errors))


# --------------------------------------------------------------------------------------------
# (a) gradients

GRAD_CASES = [  # (D, H, L, B, S, seed)
    (16, 32, 2, 4, 10, 11),
    (8, 20, 1, 3, 7, 12),
    (12, 24, 3, 5, 6, 13),
    # more rows than the vocabulary (56): the embedding folded into layer 0 (model.c)
    (16, 32, 2, 8, 10, 14),
]


def check_grads(prog, tol, loss_tol, cell="lstm", one_hot=False):
    ws = Workspace()
    errors = []
    try:
        for D, H, L, B, S, seed in GRAD_CASES:
            D = 0 if one_hot else D
            tag = "%s V=%d D=%d H=%d L=%d B=%d S=%d" % (cell, ws.V, D, H, L, B, S)
            ck = ws.checkpoint("grads_%d.h5" % seed, D, H, L, seed, bias_scale=0.5, cell=cell)
            out = ws.path("grads_%d_out.h5" % seed)
            run([binary(prog), ck, ws.h5, ws.json, str(B), str(S), out])
            _, params, _ = ref.read_checkpoint(ck)
            xb, yb = ref.batches(ws.splits["train"], B, S)
            want_loss, want = ref.loss_and_grads(params, xb[0], yb[0])
            try:
                got_loss, got = ref.read_grads(out, L)
            except KeyError as e:
                errors.append("%s: %s output lacks %s" % (tag, prog, e))
                continue
            lines = []
            e = abs(got_loss - want_loss) / abs(want_loss)
            lines.append("  loss %.10f (reference %.10f), rel err %.2e" % (got_loss, want_loss, e))
            if not e <= loss_tol:
                errors.append("%s: loss %.10g, reference %.10g, rel err %.2e > %.0e"
                              % (tag, got_loss, want_loss, e, loss_tol))
            for name in ref.param_names(L, D == 0):
                g, w = got[name], want[name]
                if g.shape != w.shape:
                    errors.append("%s: /%s has shape %s, want %s" % (tag, name, g.shape, w.shape))
                    continue
                e = ref.rel_err(g, w)
                idx, gv, wv = ref.worst_element(g, w)
                lines.append("  %-22s rel err %.2e (|ref| %.3e)" % (name, e, np.linalg.norm(w)))
                if not e <= tol:
                    errors.append("%s: d loss/d /%s rel err %.3e > %.0e (norm %.6e vs ref %.6e;"
                                  " worst element %s: %.8e vs ref %.8e)"
                                  % (tag, name, e, tol, np.linalg.norm(g), np.linalg.norm(w),
                                     idx, gv, wv))
            print("%s %s\n%s" % (prog, tag, "\n".join(lines)))
    finally:
        ws.close()
    if errors:
        raise Failure("\n".join(errors))


def check_grads_bf16(cell):
    """crnn-test-grads with -precision bf16's products (CRNN_TEST_PRECISION=bf16) against the
    equations in float64 with every product's operands rounded to bf16 (ref.bf16_matmul, its
    backward too): the loss within 1e-6 and every gradient within 5e-5 (relative norm; an
    operand that crnn's float32 and the reference's float64 round to neighbouring bf16 moves a
    sum by 2^-8 of one term), while the float32 equations' gradients are more than 1e-3 away, so
    that the check tells bf16 from float32. A batch with more rows than the vocabulary folds the
    embedding into layer 0 (model.c): dP, the sum of the gates' gradients by token, is rounded as
    an operand, and a sum that float32 and float64 round to neighbouring bf16 moves a whole
    token's share; with more rows the recurrent products see more such near ties too (GRU's
    layer 1 goes to 5.3e-5): 5e-4 there, still below float32's distance"""
    ws = Workspace()
    errors = []
    env = dict(os.environ, CRNN_TEST_PRECISION="bf16")
    try:
        for D, H, L, B, S, seed in GRAD_CASES:
            tag = "%s bf16 V=%d D=%d H=%d L=%d B=%d S=%d" % (cell, ws.V, D, H, L, B, S)
            tol = 5e-4 if B * S > ws.V else 5e-5
            ck = ws.checkpoint("grads_%d.h5" % seed, D, H, L, seed, bias_scale=0.5, cell=cell)
            out = ws.path("grads_%d_out.h5" % seed)
            subprocess.run([binary("crnn-test-grads"), ck, ws.h5, ws.json, str(B), str(S), out], check=True, env=env)
            _, params, _ = ref.read_checkpoint(ck)
            xb, yb = ref.batches(ws.splits["train"], B, S)
            want_loss, want = ref.equations_loss_and_grads(params, xb[0], yb[0], ref.bf16_matmul)
            f32_loss, f32 = ref.equations_loss_and_grads(params, xb[0], yb[0])
            got_loss, got = ref.read_grads(out, L)
            e = abs(got_loss - want_loss) / abs(want_loss)
            lines = ["  loss %.10f (bf16 reference %.10f, float32 %.10f), rel err %.2e"
                     % (got_loss, want_loss, f32_loss, e)]
            if not e <= 1e-6:
                errors.append("%s: loss %.10g, reference %.10g, rel err %.2e > 1e-6" % (tag, got_loss, want_loss, e))
            far = 0.0  # how far the float32 equations' gradients are from the bf16 ones
            for name in ref.param_names(L):
                g, w = got[name], want[name]
                e, e32 = ref.rel_err(g, w), ref.rel_err(f32[name], w)
                far = max(far, e32)
                lines.append("  %-22s rel err %.2e (float32's %.2e)" % (name, e, e32))
                if not e <= tol:
                    idx, gv, wv = ref.worst_element(g, w)
                    errors.append("%s: d loss/d /%s rel err %.3e > %g (worst element %s: %.8e vs ref %.8e)"
                                  % (tag, name, e, tol, idx, gv, wv))
            if not far > 1e-3:
                errors.append("%s: the float32 gradients are within %.2e of the bf16 reference: the check cannot "
                              "tell them apart" % (tag, far))
            print("crnn-test-grads %s\n%s" % (tag, "\n".join(lines)))
    finally:
        ws.close()
    if errors:
        raise Failure("\n".join(errors))


# --------------------------------------------------------------------------------------------
# (b) training

TRAIN_CASES = [  # (D, H, L, B, S, seed, extra flags {flag: value})
    (16, 32, 2, 4, 10, 21, {}),
    (12, 24, 3, 5, 8, 22, {}),
    # 4 batches per epoch: crosses two epoch ends (state reset) and an lr decay after
    # iteration 8; clip 0.005 makes the clamp bite (vs no clamp: 5e-4 by iteration 10).
    (8, 20, 1, 16, 64, 23, {"lr_decay_every": 2, "lr_decay_factor": 0.5, "grad_clip": 0.005}),
]
ITERS = 10
LOSS_RE = re.compile(r"i = (\d+) / \d+, loss = ([-0-9.eE+naif]+)")


# dropout: each layer's masks from the counter-based generator (ref.dropout_masks); 2 and 3
# layers, H 20 (a partial last quad of units) and 24
DROPOUT_CASES = [
    (16, 20, 2, 4, 10, 24, {"dropout": 0.3}),
    (8, 24, 3, 5, 8, 25, {"dropout": 0.5, "seed": 9}),
]


def check_train(cell="lstm", one_hot=False, cases=TRAIN_CASES):
    ws = Workspace()
    errors = []
    try:
        for D, H, L, B, S, seed, extra in cases:
            D = 0 if one_hot else D
            tag = "%s V=%d D=%d H=%d L=%d B=%d S=%d%s" % (
                cell, ws.V, D, H, L, B, S, "".join(" -%s %s" % kv for kv in extra.items()))
            ck = ws.checkpoint("train_%d.h5" % seed, D, H, L, seed, bias_scale=0.1, cell=cell)
            cvdir = ws.path("cv_%d" % seed)
            os.makedirs(cvdir, exist_ok=True)
            args = [binary("crnn-train"), "-input_h5", ws.h5, "-input_json", ws.json,
                    "-init_from", ck, "-batch_size", str(B), "-seq_length", str(S),
                    "-model_type", cell,
                    "-rnn_size", str(H), "-num_layers", str(L), "-wordvec_size", str(D),
                    "-max_iters", str(ITERS), "-print_every", "1", "-checkpoint_every", "0",
                    "-checkpoint_name", os.path.join(cvdir, "ck"), "-gpu", "-1"]
            for k, v in extra.items():
                args += ["-" + k, str(v)]
            stdout, stderr = run(args)
            text = stdout.decode("utf-8", "replace")
            got = {}
            for m in LOSS_RE.finditer(text):
                got[int(m.group(1))] = float(m.group(2))
            _, params, _ = ref.read_checkpoint(ck)
            model = ref.RefLM.from_params(params)
            want = ref.train(model, ws.splits["train"], B, S, ITERS,
                             grad_clip=extra.get("grad_clip", 5.0),
                             lr_decay_every=extra.get("lr_decay_every", 5),
                             lr_decay_factor=extra.get("lr_decay_factor", 0.5),
                             dropout=extra.get("dropout", 0.0), seed=extra.get("seed", 123))
            count = ref.batches(ws.splits["train"], B, S)[0].shape[0]
            lines = []
            for i in range(1, ITERS + 1):
                w = want[i - 1]
                if i not in got:
                    errors.append("%s: no loss line for iteration %d in crnn-train's output:\n%s"
                                  % (tag, i, text[-2000:]))
                    break
                d = abs(got[i] - w)
                lines.append("  i=%2d loss %.6f ref %.6f diff %.1e" % (i, got[i], w, d))
                if not d <= 1e-4:
                    errors.append("%s: iteration %d (batch %d of %d per epoch) loss %.6f, "
                                  "reference %.6f, diff %.2e > 1e-4"
                                  % (tag, i, (i - 1) % count, count, got[i], w, d))
            # parameters after the 10 steps, from the checkpoint written after the last one
            final = os.path.join(cvdir, "ck_%d.h5" % ITERS)
            if os.path.exists(final):
                try:
                    _, cparams, _ = ref.read_checkpoint(final)
                    rp = model.crnn_params()
                    worst = max((ref.rel_err(cparams[n], rp[n]), n) for n in rp)
                    moved = max(ref.rel_err(rp[n], params[n]) for n in rp)
                    lines.append("  parameters after %d steps: worst rel err %.2e (%s); steps "
                                 "moved them by up to %.2e" % (ITERS, worst[0], worst[1], moved))
                    if not worst[0] <= 1e-3:
                        errors.append("%s: /%s after %d steps rel err %.3e > 1e-3"
                                      % (tag, worst[1], ITERS, worst[0]))
                except (KeyError, OSError) as e:
                    errors.append("%s: cannot read %s: %s" % (tag, final, e))
            else:
                lines.append("  (no %s to compare parameters)" % final)
            print("crnn-train %s (%d batches/epoch)\n%s" % (tag, count, "\n".join(lines)))
    finally:
        ws.close()
    if errors:
        raise Failure("\n".join(errors))


# --------------------------------------------------------------------------------------------
# (c) greedy sampling

SAMPLE_CASES = [  # (D, H, L, start text, seed)
    (16, 32, 2, "The ", 31),
    (12, 40, 3, "Zoë and", 32),
    (8, 24, 1, "T", 33),
]
LENGTH = 200
TIE = 1e-4  # a reference top-2 margin below this would make float32 rounding decide


def trained_params(ws, D, H, L, seed, steps=150, cell="lstm"):
    """Weights trained briefly on the text (lr 1e-2), so greedy output is varied text rather
    than one repeated character; rounded to float32 as a checkpoint stores them."""
    torch.manual_seed(seed)
    p = ref.init_params(ws.V, D, H, L, seed=seed, bias_scale=0.1, cell=cell)
    model = ref.RefLM.from_params(p, torch.float32)
    ref.train(model, ws.splits["train"], 8, 32, steps, lr=1e-2)
    return {k: v.astype(np.float32) for k, v in model.crnn_params().items()}


def check_sample(cell="lstm", one_hot=False):
    ws = Workspace()
    errors = []
    try:
        for D, H, L, start, seed in SAMPLE_CASES:
            D = 0 if one_hot else D
            # pick weights whose greedy path has no near-tie, so any difference is a bug
            for s in range(seed * 100, seed * 100 + 20):
                params = trained_params(ws, D, H, L, s, cell=cell)
                p64 = {k: v.astype(np.float64) for k, v in params.items()}
                model = ref.RefLM.from_params(p64)
                ids, margins = ref.greedy_sample(model, [ws.token_to_idx[c] for c in start],
                                                 LENGTH)
                if min(margins) >= TIE:
                    break
            tag = "%s V=%d D=%d H=%d L=%d start %r (weights seed %d, min top-2 margin %.1e)" % (
                cell, ws.V, D, H, L, start, s, min(margins))
            ck = ws.path("sample_%d.h5" % seed)
            ref.write_checkpoint(ck, params, ws.idx_to_token, L)
            want = start + "".join(ws.idx_to_token[i] for i in ids)
            stdout, _ = run([binary("crnn-sample"), "-checkpoint", ck, "-sample", "0",
                             "-start_text", start, "-length", str(LENGTH), "-gpu", "-1"])
            got = stdout.decode("utf-8", "replace")
            print("crnn-sample %s\n  reference: %r\n  crnn:      %r"
                  % (tag, want[:80] + "...", got[:80] + "..."))
            if got[:len(want)] == want:
                if got[len(want):].strip():
                    errors.append("%s: %d extra characters after the %d asked for: %r"
                                  % (tag, len(got) - len(want), LENGTH, got[len(want):][:50]))
                continue
            n = min(len(got), len(want))
            k = next((i for i in range(n) if got[i] != want[i]), n)
            if k >= len(got):
                errors.append("%s: crnn printed %d characters, want %d (start text + %d): %r"
                              % (tag, len(got), len(want), LENGTH, got))
            elif k < len(start):
                errors.append("%s: start text printed as %r" % (tag, got[:len(start)]))
            else:
                j = k - len(start)
                errors.append("%s: character %d (after the start text) is %r, reference %r "
                              "(reference top-2 margin there %.3e); common prefix %r"
                              % (tag, j, got[k], want[k], margins[j], want[max(0, k - 30):k]))
    finally:
        ws.close()
    if errors:
        raise Failure("\n".join(errors))


# --------------------------------------------------------------------------------------------
# (d) evaluation: crnn-eval's loss = the reference's (docs/FORMATS.md section 2)

EVAL_CASES = [  # (D, H, L, split, B, S, seed); the second shrinks N (50*20 > 603 val tokens)
    (16, 32, 2, "val", 4, 10, 41),
    (12, 24, 3, "val", 50, 20, 42),
    (8, 20, 1, "test", 3, 16, 43),
]
EVAL_RE = re.compile(r"(\w+) loss = ([-0-9.eE+naif]+)")


def check_eval(one_hot=False):
    ws = Workspace()
    errors = []
    try:
        for D, H, L, split, B, S, seed in EVAL_CASES:
            D = 0 if one_hot else D
            tag = "V=%d D=%d H=%d L=%d %s B=%d S=%d" % (ws.V, D, H, L, split, B, S)
            ck = ws.checkpoint("eval_%d.h5" % seed, D, H, L, seed, bias_scale=0.3)
            stdout, _ = run([binary("crnn-eval"), "-checkpoint", ck, "-input_h5", ws.h5,
                             "-input_json", ws.json, "-split", split, "-batch_size", str(B),
                             "-seq_length", str(S), "-gpu", "-1"])
            lines = [l for l in stdout.decode("utf-8", "replace").splitlines() if l.strip()]
            m = EVAL_RE.search(lines[-1]) if lines else None
            if not m or m.group(1) != split:
                errors.append("%s: last line is %r, want '%s loss = <x>'"
                              % (tag, lines[-1] if lines else "", split))
                continue
            got = float(m.group(2))
            _, params, _ = ref.read_checkpoint(ck)
            want = ref.evaluate(ref.RefLM.from_params(params), ws.splits[split], B, S)
            d = abs(got - want)
            print("crnn-eval %s: %.6f, reference %.6f, diff %.1e" % (tag, got, want, d))
            if not d <= 2e-6:  # crnn prints 6 decimals
                errors.append("%s: %s loss %.6f, reference %.6f, diff %.2e > 2e-6"
                              % (tag, split, got, want, d))
    finally:
        ws.close()
    if errors:
        raise Failure("\n".join(errors))


CHECKS = {
    "preprocess": check_preprocess,
    "grads": lambda: check_grads("crnn-test-grads", 1e-5, 1e-5),
    "grads64": lambda: check_grads("crnn-test-grads64", 1e-10, 1e-12),
    "train": check_train,
    "sample": check_sample,
    "eval": check_eval,
}
GROUPS = {}
for _cell in ("gru", "rnn"):
    CHECKS["grads_" + _cell] = lambda c=_cell: check_grads("crnn-test-grads", 1e-5, 1e-5, c)
    CHECKS["grads64_" + _cell] = lambda c=_cell: check_grads("crnn-test-grads64", 1e-10, 1e-12, c)
    CHECKS["train_" + _cell] = lambda c=_cell: check_train(c)
    CHECKS["sample_" + _cell] = lambda c=_cell: check_sample(c)
    GROUPS[_cell] = [k + "_" + _cell for k in ("grads", "grads64", "train", "sample")]
# one-hot input (-wordvec_size 0)
for _cell, _sfx in (("lstm", "_onehot"), ("gru", "_onehot_gru"), ("rnn", "_onehot_rnn")):
    CHECKS["grads" + _sfx] = lambda c=_cell: check_grads("crnn-test-grads", 1e-5, 1e-5, c, True)
    CHECKS["grads64" + _sfx] = lambda c=_cell: check_grads("crnn-test-grads64", 1e-10, 1e-12, c,
                                                           True)
    CHECKS["train" + _sfx] = lambda c=_cell: check_train(c, True)
    CHECKS["sample" + _sfx] = lambda c=_cell: check_sample(c, True)
    GROUPS[_sfx[1:]] = [k + _sfx for k in ("grads", "grads64", "train", "sample")]
CHECKS["eval_onehot"] = lambda: check_eval(True)
# -dropout, every cell, embedded and one-hot input
GROUPS["dropout"] = []
for _cell in ("lstm", "gru", "rnn"):
    for _oh in (False, True):
        _name = "train_dropout_%s%s" % (_cell, "_onehot" if _oh else "")
        CHECKS[_name] = lambda c=_cell, o=_oh: check_train(c, o, DROPOUT_CASES)
        GROUPS["dropout"].append(_name)
GROUPS["onehot"].append("eval_onehot")
# -precision bf16: the gradients of every cell against the equations with bf16 products
GROUPS["bf16"] = []
for _cell in ("lstm", "gru", "rnn"):
    CHECKS["grads_bf16_" + _cell] = lambda c=_cell: check_grads_bf16(c)
    GROUPS["bf16"].append("grads_bf16_" + _cell)


def main(argv):
    names = argv[1:] or ["all"]
    if names == ["all"]:
        names = list(CHECKS)
    names = [m for n in names for m in GROUPS.get(n, [n])]
    bad = [n for n in names if n not in CHECKS]
    if bad:
        print(__doc__)
        print("unknown check: %s" % ", ".join(bad))
        return 2
    failed = []
    for n in names:
        print("== %s" % n)
        try:
            CHECKS[n]()
            print("PASS %s" % n)
        except AssertionError as e:
            print("FAIL %s\n%s" % (n, e))
            failed.append(n)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
