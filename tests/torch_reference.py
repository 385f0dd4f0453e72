#!/usr/bin/env python3
"""An independent PyTorch reference for crnn's language model, written from the contract
(docs/FORMATS.md sections 2-4), not from crnn's C sources.

  embedding [V, D] (or one-hot, F.one_hot, when D = 0) -> L x nn.LSTM (gates i, f, g, o), nn.GRU (r, z, n) or
  nn.RNN(nonlinearity='tanh'); bias_ih = b_x, bias_hh = b_h
  -> decoder logits = h W + b, W [H, V];  loss = mean cross-entropy (nats) over B*S positions.

crnn stores W_x [Din, G*H] = weight_ih.T (Din = D, or V for layer 0 with one-hot input, which has
no params/embedding) and W_h [H, G*H] = weight_hh.T (G = 4, 3, 1). The cell
is the checkpoint's model_type; in memory it follows from W_h's shape.

Helpers: read/write crnn checkpoints with h5py, read torch-rnn's .h5/.json data, torch-rnn's
DataLoader batching, stateful training with elementwise clamping and torch/optim's Adam,
greedy sampling, torch-rnn's initialisation. Needs torch, h5py and numpy (Debian:
/usr/bin/python3 with python3-torch, python3-h5py, python3-numpy).

Run `python3 tests/torch_reference.py selftest` to check this file on its own.
"""
import json
import math
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch import _VF

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from preprocess_reference import preprocess_text  # noqa: E402,F401  (torch-rnn's preprocess.py, shared with test_preprocess.py)

# --------------------------------------------------------------------------------------------
# Parameters in crnn's layout and order (docs/FORMATS.md section 4's table order)


def param_names(L, one_hot=False):
    """The checkpoint paths of every parameter tensor, without the leading '/', in order
    (no params/embedding with one-hot input, D = 0)."""
    names = [] if one_hot else ["params/embedding"]
    for l in range(L):
        names += ["params/rnn/%d/%s" % (l, t) for t in ("W_x", "W_h", "b_x", "b_h")]
    names += ["params/decoder/W", "params/decoder/b"]
    return names


GATES = {"lstm": 4, "gru": 3, "rnn": 1}


def vocab_and_wordvec(params):
    """(V, D) of a parameter dict; D = 0 (one-hot input) when it has no embedding."""
    if "params/embedding" in params:
        V, D = np.shape(params["params/embedding"])
        return V, D
    return np.shape(params["params/decoder/b"])[0], 0


def cell_of(params):
    """The cell of a parameter dict, from W_h's shape [H, G*H]."""
    H, GH = np.shape(params["params/rnn/0/W_h"])
    return {G: c for c, G in GATES.items()}[GH // H]


def param_shapes(V, D, H, L, cell="lstm"):
    G = GATES[cell]
    shapes = {"params/embedding": (V, D)} if D > 0 else {}
    for l in range(L):
        din = (D or V) if l == 0 else H
        shapes["params/rnn/%d/W_x" % l] = (din, G * H)
        shapes["params/rnn/%d/W_h" % l] = (H, G * H)
        shapes["params/rnn/%d/b_x" % l] = (G * H,)
        shapes["params/rnn/%d/b_h" % l] = (G * H,)
    shapes["params/decoder/W"] = (H, V)
    shapes["params/decoder/b"] = (V,)
    return shapes


def init_params(V, D, H, L, seed=0, bias_scale=0.0, scale=1.0, cell="lstm"):
    """torch-rnn's initialisation (docs/FORMATS.md section 3): embedding N(0,1); W_x, W_h
    N(0, std 1/sqrt(Din+H)); biases 0 except the LSTM's b_x forget block = 1; decoder
    U(+-1/sqrt(H)). D = 0: one-hot input, no embedding, layer 0's W_x [V, G*H].
    bias_scale > 0 adds N(0, bias_scale) noise to every bias (tests want nonzero biases);
    scale multiplies the recurrent weights. Returns {name: float32 array}."""
    rng = np.random.default_rng(seed)
    G = GATES[cell]
    p = {"params/embedding": rng.standard_normal((V, D))} if D > 0 else {}
    for l in range(L):
        din = (D or V) if l == 0 else H
        std = 1.0 / math.sqrt(din + H)
        p["params/rnn/%d/W_x" % l] = scale * std * rng.standard_normal((din, G * H))
        p["params/rnn/%d/W_h" % l] = scale * std * rng.standard_normal((H, G * H))
        b_x = np.zeros(G * H)
        if cell == "lstm":
            b_x[H:2 * H] = 1.0
        b_h = np.zeros(G * H)
        if bias_scale > 0:
            b_x += bias_scale * rng.standard_normal(G * H)
            b_h += bias_scale * rng.standard_normal(G * H)
        p["params/rnn/%d/b_x" % l] = b_x
        p["params/rnn/%d/b_h" % l] = b_h
    bound = 1.0 / math.sqrt(H)
    p["params/decoder/W"] = rng.uniform(-bound, bound, (H, V))
    p["params/decoder/b"] = rng.uniform(-bound, bound, (V,))
    return {k: v.astype(np.float32) for k, v in p.items()}


# --------------------------------------------------------------------------------------------
# Checkpoints (docs/FORMATS.md section 4)


def write_checkpoint(path, params, idx_to_token, num_layers, dropout=0.0, iteration=0,
                     epoch=0.0, encoding="utf-8"):
    """Writes the minimal crnn checkpoint that -init_from and crnn-sample accept.
    params: {name: array or tensor} in crnn's orientation (any float type; stored float32).
    idx_to_token: list of V token strings, row i = JSON idx_to_token[str(i+1)]. model_type
    (lstm, gru or rnn) follows from W_h's shape."""
    params = {k: (v.detach().cpu().numpy() if torch.is_tensor(v) else np.asarray(v))
              for k, v in params.items()}
    V, D = vocab_and_wordvec(params)
    H = params["params/rnn/0/W_h"].shape[0]
    L = num_layers
    cell = cell_of(params)
    shapes = param_shapes(V, D, H, L, cell)
    if set(params) != set(shapes):
        raise ValueError("parameter names %s do not match the layout %s"
                         % (sorted(params), sorted(shapes)))
    for name, shape in shapes.items():
        if tuple(params[name].shape) != shape:
            raise ValueError("%s has shape %s, want %s" % (name, params[name].shape, shape))
    if len(idx_to_token) != V:
        raise ValueError("vocabulary has %d tokens, embedding %d rows" % (len(idx_to_token), V))
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "crnn-checkpoint"
        f.attrs["format_version"] = np.int64(1)
        f.attrs["model_type"] = cell
        f.attrs["vocab_size"] = np.int64(V)
        f.attrs["wordvec_size"] = np.int64(D)
        f.attrs["rnn_size"] = np.int64(H)
        f.attrs["num_layers"] = np.int64(L)
        f.attrs["dropout"] = np.float64(dropout)
        f.attrs["iteration"] = np.int64(iteration)
        f.attrs["epoch"] = np.float64(epoch)
        g = f.create_group("vocab")
        g.attrs["encoding"] = encoding
        g.create_dataset("idx_to_token", data=np.array(list(idx_to_token), dtype=object),
                         dtype=h5py.string_dtype("utf-8"))
        for name in param_names(L, D == 0):
            f.create_dataset(name, data=np.ascontiguousarray(params[name], dtype=np.float32))


def _attr(v):
    if isinstance(v, bytes):
        return v.decode("utf-8")
    if isinstance(v, np.ndarray) and v.shape == ():
        return v[()]
    return v


def read_checkpoint(path):
    """Returns (cfg dict of root attrs, {name: float64 array}, idx_to_token list)."""
    with h5py.File(path, "r") as f:
        cfg = {k: _attr(v) for k, v in f.attrs.items()}
        L = int(cfg["num_layers"])
        params = {name: np.asarray(f[name][()], dtype=np.float64)
                  for name in param_names(L, "params/embedding" not in f)}
        toks = [t.decode("utf-8") if isinstance(t, bytes) else str(t)
                for t in f["vocab/idx_to_token"][()]]
    return cfg, params, toks


def read_grads(path, L):
    """crnn-test-grads' output: (loss, {name: float64 gradient})."""
    with h5py.File(path, "r") as f:
        loss = float(_attr(f.attrs["loss"]))
        grads = {name: np.asarray(f[name][()], dtype=np.float64)
                 for name in param_names(L, "params/embedding" not in f)}
    return loss, grads


# --------------------------------------------------------------------------------------------
# Data (docs/FORMATS.md sections 1-2)


def load_data(h5_path, json_path):
    """Returns ({split: int64 array of 0-based indices}, idx_to_token list, token_to_idx dict
    with 0-based values)."""
    with open(json_path, encoding="utf-8") as f:
        js = json.load(f)
    V = len(js["idx_to_token"])
    idx_to_token = [js["idx_to_token"][str(i + 1)] for i in range(V)]
    token_to_idx = {t: i for i, t in enumerate(idx_to_token)}
    splits = {}
    with h5py.File(h5_path, "r") as f:
        for s in ("train", "val", "test"):
            if s in f:
                splits[s] = np.asarray(f[s][()], dtype=np.int64) - 1
    return splits, idx_to_token, token_to_idx


def batches(tokens, N, S, allow_shrink=False):
    """torch-rnn's DataLoader for one split: x, y as [count, N, S] (batch k = columns
    k*S..k*S+S-1 of N contiguous streams; y = x shifted by one token)."""
    tokens = np.asarray(tokens)
    num = len(tokens)
    if N * S > num - 1:
        if not allow_shrink:
            raise ValueError("split of %d tokens too short for %d x %d" % (num, N, S))
        N = (num - 1) // S
    extra = num % (N * S)
    if extra == 0:
        extra = N * S
    x = tokens[:num - extra].reshape(N, -1)
    y = tokens[1:num - extra + 1].reshape(N, -1)
    count = x.shape[1] // S
    x = x.reshape(N, count, S).transpose(1, 0, 2).copy()
    y = y.reshape(N, count, S).transpose(1, 0, 2).copy()
    return x, y


# --------------------------------------------------------------------------------------------
# The model


class RefLM(torch.nn.Module):
    """embedding (D > 0) or one-hot input (D = 0: F.one_hot, input_size V) -> nn.LSTM, nn.GRU
    or nn.RNN (tanh) of L layers -> linear decoder, batch-first."""

    def __init__(self, V, D, H, L, dtype=torch.float64, cell="lstm"):
        super().__init__()
        self.V, self.D, self.H, self.L, self.cell, self.dtype = V, D, H, L, cell, dtype
        self.emb = torch.nn.Embedding(V, D, dtype=dtype) if D > 0 else None
        din = D if D > 0 else V
        if cell == "lstm":
            self.rnn = torch.nn.LSTM(din, H, L, batch_first=True, dtype=dtype)
        elif cell == "gru":
            self.rnn = torch.nn.GRU(din, H, L, batch_first=True, dtype=dtype)
        else:
            self.rnn = torch.nn.RNN(din, H, L, nonlinearity="tanh", batch_first=True, dtype=dtype)
        self.dec = torch.nn.Linear(H, V, dtype=dtype)

    @classmethod
    def from_params(cls, params, dtype=torch.float64):
        V, D = vocab_and_wordvec(params)
        H = params["params/rnn/0/W_h"].shape[0]
        L = sum(1 for k in params if k.endswith("/W_x"))
        m = cls(V, D, H, L, dtype, cell_of(params))
        m.load_crnn_params(params)
        return m

    def _slots(self):
        """(crnn name, torch parameter, transposed?) for every tensor."""
        s = [("params/embedding", self.emb.weight, False)] if self.emb is not None else []
        for l in range(self.L):
            s += [("params/rnn/%d/W_x" % l, getattr(self.rnn, "weight_ih_l%d" % l), True),
                  ("params/rnn/%d/W_h" % l, getattr(self.rnn, "weight_hh_l%d" % l), True),
                  ("params/rnn/%d/b_x" % l, getattr(self.rnn, "bias_ih_l%d" % l), False),
                  ("params/rnn/%d/b_h" % l, getattr(self.rnn, "bias_hh_l%d" % l), False)]
        s += [("params/decoder/W", self.dec.weight, True),
              ("params/decoder/b", self.dec.bias, False)]
        return s

    def load_crnn_params(self, params):
        with torch.no_grad():
            for name, p, tr in self._slots():
                a = torch.as_tensor(np.asarray(params[name]), dtype=p.dtype)
                p.copy_(a.t() if tr else a)

    def crnn_params(self):
        """{name: float64 numpy array} in crnn's orientation."""
        return {name: (p.detach().t() if tr else p.detach()).double().numpy().copy()
                for name, p, tr in self._slots()}

    def crnn_grads(self):
        return {name: (p.grad.t() if tr else p.grad).double().numpy().copy()
                for name, p, tr in self._slots()}

    def forward(self, x, state=None, masks=None):
        """x: [B, S] long 0-based. Returns logits [B, S, V] and the final state ((h, c) for
        the LSTM, h otherwise). masks: None, or one [B, S, H] array per layer that multiplies
        the layer's output (dropout, see dropout_masks)."""
        inp = self.emb(x) if self.emb is not None else F.one_hot(x, self.V).to(self.dtype)
        if masks is None:
            out, state = self.rnn(inp, state)
            return self.dec(out), state
        # layer by layer, through the same kernels as nn.LSTM / nn.GRU / nn.RNN, so that the
        # masks can go between the layers
        B = x.shape[0]
        if state is None:
            zero = torch.zeros(self.L, B, self.H, dtype=self.dtype)
            state = (zero, zero.clone()) if self.cell == "lstm" else zero
        run = {"lstm": _VF.lstm, "gru": _VF.gru, "rnn": _VF.rnn_tanh}[self.cell]
        finals = []
        for l in range(self.L):
            w = [getattr(self.rnn, "%s_l%d" % (n, l))
                 for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            if self.cell == "lstm":
                out, h, c = run(inp, (state[0][l:l + 1], state[1][l:l + 1]), w, True, 1, 0.0,
                                self.training, False, True)
                finals.append((h, c))
            else:
                out, h = run(inp, state[l:l + 1], w, True, 1, 0.0, self.training, False, True)
                finals.append(h)
            inp = out * torch.as_tensor(masks[l], dtype=self.dtype)
        if self.cell == "lstm":
            state = (torch.cat([f[0] for f in finals]), torch.cat([f[1] for f in finals]))
        else:
            state = torch.cat(finals)
        return self.dec(inp), state


# --------------------------------------------------------------------------------------------
# Dropout masks: the counter-based generator as include/crnn/philox.h defines it


def philox(seed, purpose, iteration, stream, layer, position):
    """Philox4x32-10 (Salmon et al., SC'11) on crnn's key: counter (position, stream,
    iteration's low word, iteration's high word ^ purpose << 24 ^ layer << 8), key (seed's low
    word, seed's high word ^ layer * 0x9E3779B9). stream and position may be arrays (they
    broadcast). Returns the four words as uint64 arrays of 32-bit values."""
    M = np.uint64(0xFFFFFFFF)
    position, stream = np.broadcast_arrays(np.asarray(position, dtype=np.uint64),
                                           np.asarray(stream, dtype=np.uint64))
    c0, c1 = position & M, stream & M
    c2 = np.full(c0.shape, iteration & 0xFFFFFFFF, dtype=np.uint64)
    c3 = np.full(c0.shape, ((iteration >> 32) ^ (purpose << 24) ^ (layer << 8)) & 0xFFFFFFFF,
                 dtype=np.uint64)
    k0, k1 = seed & 0xFFFFFFFF, ((seed >> 32) ^ (layer * 0x9E3779B9)) & 0xFFFFFFFF
    for _ in range(10):
        p0, p1 = np.uint64(0xD2511F53) * c0, np.uint64(0xCD9E8D57) * c2
        c0, c1, c2, c3 = ((p1 >> np.uint64(32)) ^ c1 ^ np.uint64(k0), p1 & M,
                          (p0 >> np.uint64(32)) ^ c3 ^ np.uint64(k1), p0 & M)
        k0, k1 = (k0 + 0x9E3779B9) & 0xFFFFFFFF, (k1 + 0xBB67AE85) & 0xFFFFFFFF
    return c0, c1, c2, c3


def dropout_masks(p, seed, iteration, first_stream, B, S, H, L):
    """The L dropout masks [B, S, H] (batch-first) of one training iteration, scaled by
    1 / (1 - p): unit j of step t of global stream s in layer l is kept when
    (w >> 8) * 2^-24 >= p (in float32), w word j % 4 of
    philox(seed, 2, iteration, s, l, t * ceil(H / 4) + j // 4)."""
    quads = (H + 3) // 4
    position = (np.arange(S)[:, None] * quads + np.arange(quads)[None, :])[None]  # [1, S, q]
    streams = (first_stream + np.arange(B))[:, None, None]                      # [B, 1, 1]
    masks = []
    for l in range(L):
        w = np.stack(philox(seed, 2, iteration, streams, l, position), -1)  # [B, S, q, 4]
        w = w.reshape(B, S, quads * 4)[:, :, :H]
        u = (w >> np.uint64(8)).astype(np.float32) * np.float32(2.0 ** -24)
        masks.append((u >= np.float32(p)).astype(np.float64) / (1.0 - p))
    return masks


def detach_state(state):
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def bf16_round(t):
    """t rounded to the nearest bf16 (ties to even), through float32 as crnn holds its values;
    in t's dtype."""
    return t.to(torch.float32).to(torch.bfloat16).to(t.dtype)


class _Bf16MatMul(torch.autograd.Function):
    """a @ b with both operands rounded to bf16 and the sum in a's dtype: -precision bf16's
    product (docs/FORMATS.md). Its backward is two such products: round(g) @ round(b)^T and
    round(a)^T @ round(g), as crnn's backward products are."""

    @staticmethod
    def forward(ctx, a, b):
        ra, rb = bf16_round(a), bf16_round(b)
        ctx.save_for_backward(ra, rb)
        return ra @ rb

    @staticmethod
    def backward(ctx, g):
        ra, rb = ctx.saved_tensors
        rg = bf16_round(g)
        return rg @ rb.t(), ra.t() @ rg


def bf16_matmul(a, b):
    return _Bf16MatMul.apply(a, b)


def equations_loss_and_grads(params, x, y, mm=torch.matmul):
    """loss_and_grads through lstm_by_equations, every product done by mm (bf16_matmul for
    -precision bf16), in float64: (loss, {name: gradient})."""
    P = {k: torch.as_tensor(np.asarray(v), dtype=torch.float64).requires_grad_(True)
         for k, v in params.items() if k.startswith("params/")}
    L = sum(1 for k in P if k.endswith("/W_x"))
    logits = lstm_by_equations(P, torch.as_tensor(x, dtype=torch.long), L, mm)
    V = logits.shape[-1]
    loss = F.cross_entropy(logits.reshape(-1, V), torch.as_tensor(y, dtype=torch.long).reshape(-1))
    loss.backward()
    return float(loss), {k: t.grad.numpy().copy() for k, t in P.items()}


def lstm_by_equations(params, x, L, mm=torch.matmul):
    """The docs/FORMATS.md section 3 equations written out (i, f, g, o blocks, two biases; r, z, n
    for the GRU; tanh for the RNN), for checking that RefLM's nn.LSTM / nn.GRU / nn.RNN mapping
    is the contract's; every matrix product through mm. x: [B, S] long. Returns logits."""
    cell = cell_of(params)
    P = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in params.items()}
    if "params/embedding" in P:
        inp = P["params/embedding"][x]  # [B, S, D]
    else:  # one-hot input
        inp = F.one_hot(x, P["params/decoder/b"].shape[0]).to(torch.float64)  # [B, S, V]
    B, S = x.shape
    # crnn folds the embedding into layer 0 when the batch has more rows than the vocabulary
    # (model.c): row x of E W_x instead of (row x of E) W_x. The same in exact arithmetic; with
    # bf16 products it decides which operands are rounded (dP, the scatter-add of the gates'
    # gradients by token, instead of each row of them).
    V = P["params/decoder/b"].shape[0]
    proj = mm(P["params/embedding"], P["params/rnn/0/W_x"]) if "params/embedding" in P and B * S > V else None
    for l in range(L):
        Wx, Wh = P["params/rnn/%d/W_x" % l], P["params/rnn/%d/W_h" % l]
        bx, bh = P["params/rnn/%d/b_x" % l], P["params/rnn/%d/b_h" % l]
        H = Wh.shape[0]
        h = torch.zeros(B, H, dtype=torch.float64)
        c = torch.zeros(B, H, dtype=torch.float64)
        outs = []
        for t in range(S):
            xw = proj[x[:, t]] if l == 0 and proj is not None else mm(inp[:, t], Wx)
            if cell == "gru":
                ax, ah = xw + bx, mm(h, Wh) + bh
                r = torch.sigmoid(ax[:, :H] + ah[:, :H])
                z = torch.sigmoid(ax[:, H:2 * H] + ah[:, H:2 * H])
                n = torch.tanh(ax[:, 2 * H:] + r * ah[:, 2 * H:])
                h = (1 - z) * n + z * h
                outs.append(h)
                continue
            a = xw + bx + mm(h, Wh) + bh
            if cell == "rnn":
                h = torch.tanh(a)
                outs.append(h)
                continue
            i, f, g, o = (torch.sigmoid(a[:, :H]), torch.sigmoid(a[:, H:2 * H]),
                          torch.tanh(a[:, 2 * H:3 * H]), torch.sigmoid(a[:, 3 * H:]))
            c = f * c + i * g
            h = o * torch.tanh(c)
            outs.append(h)
        inp = torch.stack(outs, 1)
    return mm(inp.reshape(B * S, -1), P["params/decoder/W"]).reshape(B, S, -1) + P["params/decoder/b"]


def loss_and_grads(params, x, y, dtype=torch.float64):
    """Mean cross-entropy over the batch from zero state and d(loss)/d(every tensor)."""
    m = RefLM.from_params(params, dtype)
    logits, _ = m(torch.as_tensor(x, dtype=torch.long))
    loss = F.cross_entropy(logits.reshape(-1, m.V), torch.as_tensor(y, dtype=torch.long).reshape(-1))
    loss.backward()
    return float(loss), m.crnn_grads()


# --------------------------------------------------------------------------------------------
# Training as crnn-train does it (Adam, elementwise clamp, stateful, torch-rnn schedule)


def train(model, train_tokens, B, S, iters, lr=2e-3, beta1=0.9, beta2=0.999, eps=1e-8,
          grad_clip=5.0, lr_decay_every=5, lr_decay_factor=0.5, callback=None, dropout=0.0,
          seed=123):
    """Trains `iters` steps on torch-rnn batches of the train split, in order. The hidden
    state is carried (detached) from batch to batch and zero at the start of every epoch; lr
    is multiplied by lr_decay_factor at the end of every lr_decay_every-th epoch (moments
    kept). Adam is torch/optim's: x -= lr*sqrt(1-b2^t)/(1-b1^t) * m/(sqrt(v)+eps).
    Returns the per-iteration losses (each before its own update). callback(i, epoch_end) is
    called after step i (1-based). dropout > 0: each step's masks are dropout_masks(dropout,
    seed, the number of steps before it, 0, ...), stream b of the batch being global stream b."""
    xb, yb = batches(train_tokens, B, S)
    count = xb.shape[0]
    params = list(model.parameters())
    m1 = [torch.zeros_like(p) for p in params]
    m2 = [torch.zeros_like(p) for p in params]
    state = None
    losses = []
    for it in range(iters):
        k = it % count
        if k == 0:
            state = None
        x = torch.as_tensor(xb[k], dtype=torch.long)
        y = torch.as_tensor(yb[k], dtype=torch.long)
        model.zero_grad(set_to_none=True)
        masks = (dropout_masks(dropout, seed, it, 0, B, S, model.H, model.L)
                 if dropout > 0 else None)
        logits, state = model(x, state, masks)
        loss = F.cross_entropy(logits.reshape(-1, model.V), y.reshape(-1))
        loss.backward()
        state = detach_state(state)
        losses.append(float(loss))
        t = it + 1
        step = lr * math.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
        with torch.no_grad():
            for p, a, b in zip(params, m1, m2):
                g = p.grad
                if grad_clip > 0:
                    g = g.clamp(-grad_clip, grad_clip)
                a.mul_(beta1).add_(g, alpha=1 - beta1)
                b.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                p.addcdiv_(a, b.sqrt().add_(eps), value=-step)
        epoch_end = (t % count == 0)
        if epoch_end and lr_decay_every > 0 and (t // count) % lr_decay_every == 0:
            lr *= lr_decay_factor
        if callback is not None:
            callback(t, epoch_end)
    return losses


@torch.no_grad()
def evaluate(model, tokens, N, S):
    """Validation as docs/FORMATS.md section 2: zero state carried across batches; the mean over
    batches of each batch's mean per-token loss (N shrinks when the split is short)."""
    xb, yb = batches(tokens, N, S, allow_shrink=True)
    state = None
    total = 0.0
    for k in range(xb.shape[0]):
        logits, state = model(torch.as_tensor(xb[k], dtype=torch.long), state)
        total += float(F.cross_entropy(logits.reshape(-1, model.V),
                                       torch.as_tensor(yb[k], dtype=torch.long).reshape(-1)))
    return total / xb.shape[0]


@torch.no_grad()
def greedy_sample(model, start_ids, length):
    """Feeds start_ids (0-based) from zero state, then `length` argmax steps. Returns the new
    ids and, per step, the margin between the top two logits (how close to a tie)."""
    logits, state = model(torch.as_tensor([start_ids], dtype=torch.long))
    last = logits[0, -1]
    out, margins = [], []
    for _ in range(length):
        top = torch.topk(last, 2)
        nxt = int(top.indices[0])
        margins.append(float(top.values[0] - top.values[1]))
        out.append(nxt)
        logits, state = model(torch.as_tensor([[nxt]], dtype=torch.long), state)
        last = logits[0, -1]
    return out, margins


# --------------------------------------------------------------------------------------------
# Relative errors


def rel_err(a, b):
    """||a - b|| / ||b|| (||a - b|| when b is 0)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    nb = np.linalg.norm(b)
    d = np.linalg.norm(a - b)
    return d / nb if nb > 0 else d


def worst_element(a, b):
    """(index tuple, a value, b value) of the largest absolute difference."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    idx = np.unravel_index(int(np.argmax(np.abs(a - b))), a.shape)
    return tuple(int(i) for i in idx), float(a[idx]), float(b[idx])


# --------------------------------------------------------------------------------------------
# Self-test of this file alone (no crnn binaries needed)


def selftest():
    import tempfile
    torch.manual_seed(0)
    ok = True

    def check(cond, what):
        nonlocal ok
        print(("ok   " if cond else "FAIL ") + what)
        ok = ok and cond

    V, D, H, L = 23, 16, 32, 2
    toks = [chr(ord("a") + i) for i in range(V - 2)] + ["é", "\n"]
    params = init_params(V, D, H, L, seed=1, bias_scale=0.3)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "ck.h5")
        write_checkpoint(path, params, toks, L)
        cfg, back, toks2 = read_checkpoint(path)
        check(toks2 == toks, "checkpoint vocabulary round trip")
        check(all(np.array_equal(back[k], params[k].astype(np.float64)) for k in params),
              "checkpoint parameters round trip")
        check(cfg["format"] == "crnn-checkpoint" and int(cfg["format_version"]) == 1
              and int(cfg["vocab_size"]) == V and int(cfg["rnn_size"]) == H,
              "checkpoint attributes")
        m = RefLM.from_params(back)
        rt = m.crnn_params()
        check(all(np.array_equal(rt[k], back[k]) for k in back), "RefLM parameter round trip")

    rng = np.random.default_rng(2)
    x = rng.integers(0, V, (3, 7))
    y = rng.integers(0, V, (3, 7))
    P64 = {k: v.astype(np.float64) for k, v in params.items()}
    for cell, module in (("lstm", "nn.LSTM"), ("gru", "nn.GRU"), ("rnn", "nn.RNN")):
        pc = {k: v.astype(np.float64) for k, v in
              init_params(V, D, H, L, seed=1, bias_scale=0.3, cell=cell).items()}
        m = RefLM.from_params(pc)
        check(m.cell == cell, "%s parameters make RefLM use %s" % (cell, module))
        with torch.no_grad():
            a = m(torch.as_tensor(x))[0].numpy()
        b = lstm_by_equations(pc, torch.as_tensor(x), L).numpy()
        check(rel_err(a, b) < 1e-13, "%s mapping = the written-out equations (%.1e)"
              % (module, rel_err(a, b)))

    # one-hot input (D = 0): no embedding; = the equations, and round trip through a checkpoint
    for cell in ("lstm", "gru", "rnn"):
        po = {k: v.astype(np.float64) for k, v in
              init_params(V, 0, H, L, seed=3, bias_scale=0.3, cell=cell).items()}
        m = RefLM.from_params(po)
        check("params/embedding" not in po and po["params/rnn/0/W_x"].shape == (V, GATES[cell] * H)
              and m.D == 0 and sorted(m.crnn_params()) == sorted(po), "%s one-hot layout" % cell)
        with torch.no_grad():
            a = m(torch.as_tensor(x))[0].numpy()
        b = lstm_by_equations(po, torch.as_tensor(x), L).numpy()
        check(rel_err(a, b) < 1e-13, "%s one-hot = the written-out equations (%.1e)"
              % (cell, rel_err(a, b)))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "onehot.h5")
        po = init_params(V, 0, H, L, seed=3, cell="gru")
        write_checkpoint(path, po, toks, L)
        cfg, back, _ = read_checkpoint(path)
        check(int(cfg["wordvec_size"]) == 0 and sorted(back) == sorted(po)
              and all(np.array_equal(back[k], po[k].astype(np.float64)) for k in po),
              "one-hot checkpoint round trip")

    # gradients against finite differences on a few elements of every tensor
    loss, grads = loss_and_grads(P64, x, y)
    worst = 0.0
    for name in param_names(L):
        for _ in range(3):
            idx = tuple(int(rng.integers(0, s)) for s in P64[name].shape)
            h = 1e-6
            pp = {k: v.copy() for k, v in P64.items()}
            pp[name][idx] += h
            lp = loss_and_grads(pp, x, y)[0]
            pp[name][idx] -= 2 * h
            lm = loss_and_grads(pp, x, y)[0]
            fd = (lp - lm) / (2 * h)
            # central differences carry ~1e-9 absolute error here
            worst = max(worst, abs(fd - grads[name][idx]) / max(1e-4, abs(fd)))
    check(worst < 1e-5, "gradients = central differences (worst %.1e)" % worst)

    # batching on a known sequence: 23 tokens, N=2, S=3 -> extra = 23 % 6 = 5, 18 tokens
    t = np.arange(23)
    xb, yb = batches(t, 2, 3)
    check(xb.shape == (3, 2, 3) and xb[0].tolist() == [[0, 1, 2], [9, 10, 11]]
          and xb[2].tolist() == [[6, 7, 8], [15, 16, 17]] and (yb == xb + 1).all(),
          "torch-rnn batching")
    xb, yb = batches(np.arange(24), 2, 3)  # 24 % 6 == 0 -> extra = 6
    check(xb.shape == (3, 2, 3) and xb[1].tolist() == [[3, 4, 5], [12, 13, 14]],
          "torch-rnn batching, exact multiple")
    xb, _ = batches(np.arange(10), 4, 3, allow_shrink=True)
    check(xb.shape[1] == 3, "validation shrinks N")

    # training: the hand-written Adam equals torch.optim.Adam up to eps placement
    text_ids = rng.integers(0, V, 2000)
    m1 = RefLM.from_params(P64)
    l1 = train(m1, text_ids, 4, 10, 12, grad_clip=0)
    m2 = RefLM.from_params(P64)
    opt = torch.optim.Adam(m2.parameters(), lr=2e-3, betas=(0.9, 0.999), eps=1e-8)
    xb, yb = batches(text_ids, 4, 10)
    state, l2 = None, []
    for it in range(12):
        k = it % xb.shape[0]
        if k == 0:
            state = None
        opt.zero_grad()
        lg, state = m2(torch.as_tensor(xb[k]), state)
        loss = F.cross_entropy(lg.reshape(-1, V), torch.as_tensor(yb[k]).reshape(-1))
        loss.backward()
        state = detach_state(state)
        opt.step()
        l2.append(float(loss))
    d = max(abs(p - q) for p, q in zip(l1, l2))
    check(d < 5e-5, "Adam (torch/optim form) vs torch.optim.Adam: max loss diff %.1e" % d)
    check(l1[-1] < l1[0], "loss falls in 12 steps (%.4f -> %.4f)" % (l1[0], l1[-1]))

    # float32 vs float64 training noise: what a float32 implementation can be held to
    P32 = {k: v.astype(np.float64) for k, v in params.items()}
    l64 = train(RefLM.from_params(P32), text_ids, 4, 10, 10)
    l32 = train(RefLM.from_params(P32, torch.float32), text_ids, 4, 10, 10)
    d = max(abs(p - q) for p, q in zip(l32, l64))
    check(d < 1e-4, "float32 vs float64 reference, 10 Adam steps: max loss diff %.1e" % d)

    # epoch boundary: state reset + lr decay on a 3-batch split
    seen = []
    train(RefLM.from_params(P64), rng.integers(0, V, 3 * 4 * 10 + 5), 4, 10, 7,
          lr_decay_every=2, callback=lambda i, e: seen.append((i, e)))
    check([i for i, e in seen if e] == [3, 6], "epoch ends at 3 and 6 with 3 batches")

    ids, margins = greedy_sample(RefLM.from_params(P64), [0, 1, 2], 20)
    check(len(ids) == 20 and min(margins) >= 0, "greedy sampling")
    return ok


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "selftest":
        sys.exit(0 if selftest() else 1)
    print(__doc__)
