#!/usr/bin/env python3
"""PyTorch's nn.LSTM (cuDNN) on the GPU with crnn's model and training step, for
benchmarks/gpu_bench.sh: embedding (D) -> L LSTM layers of H -> linear decoder, softmax cross
entropy, gradients clamped elementwise at 5, Adam at 2e-3; the batches are B streams of S
characters of crnn-preprocess's train split, carried over hidden state as crnn does.

Prints one line: `torch ms/iter=<ms> chars/s=<n> peak_mib=<allocator peak> reserved_mib=<n>`,
timed over --iters steps after --warmup steps, with the GPU synchronised around the timing."""
import argparse
import time

import h5py
import numpy as np
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, V, D, H, L):
        super().__init__()
        self.embed = nn.Embedding(V, D)
        self.rnn = nn.LSTM(D, H, L)  # time-major, as crnn
        self.decode = nn.Linear(H, V)

    def forward(self, x, state):
        out, state = self.rnn(self.embed(x), state)
        return self.decode(out), state


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--input_h5", required=True)
    ap.add_argument("--vocab", type=int, required=True)
    ap.add_argument("--wordvec_size", type=int, default=64)
    ap.add_argument("--rnn_size", type=int, default=128)
    ap.add_argument("--num_layers", type=int, default=2)
    ap.add_argument("--batch_size", type=int, default=50)
    ap.add_argument("--seq_length", type=int, default=50)
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    a = ap.parse_args()
    dev = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = False  # crnn multiplies in FP32
    torch.backends.cudnn.allow_tf32 = False
    with h5py.File(a.input_h5, "r") as f:
        data = np.asarray(f["train"][:], dtype=np.int64)
    B, S = a.batch_size, a.seq_length
    per_stream = (len(data) - 1) // B
    steps = per_stream // S
    if steps < 1:
        raise SystemExit(f"the train split is too short for {B} x {S}")
    streams = torch.from_numpy(data[: B * per_stream + 1])
    x_all = streams[:-1][: B * per_stream].view(B, per_stream)
    y_all = streams[1:][: B * per_stream].view(B, per_stream)
    model = Model(a.vocab, a.wordvec_size, a.rnn_size, a.num_layers).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    loss_fn = nn.CrossEntropyLoss()
    state = None

    def step(i):
        nonlocal state
        k = i % steps
        x = x_all[:, k * S:(k + 1) * S].t().contiguous().to(dev, non_blocking=True)
        y = y_all[:, k * S:(k + 1) * S].t().contiguous().to(dev, non_blocking=True)
        if k == 0:
            state = None
        logits, state = model(x, state)
        state = tuple(s.detach() for s in state)
        loss = loss_fn(logits.view(-1, a.vocab), y.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        for p in model.parameters():
            p.grad.clamp_(-5, 5)
        opt.step()
        return loss

    for i in range(a.warmup):
        step(i)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for i in range(a.warmup, a.warmup + a.iters):
        loss = step(i)
    loss.item()
    torch.cuda.synchronize()
    dt = (time.perf_counter() - t0) / a.iters
    print(f"torch ms/iter={dt * 1e3:.3f} chars/s={B * S / dt:.0f} "
          f"peak_mib={torch.cuda.max_memory_allocated() / 2**20:.0f} "
          f"reserved_mib={torch.cuda.max_memory_reserved() / 2**20:.0f} loss={loss.item():.4f}")


if __name__ == "__main__":
    main()
