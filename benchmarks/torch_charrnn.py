#!/usr/bin/env python3
"""A PyTorch char-rnn of crnn's model, for side-by-side speed and quality runs.

nn.Embedding(V, 64) -> nn.LSTM(L x H) -> nn.Linear(H, V), float32 on the CPU, torch-rnn's
initialisation, Adam (lr 2e-3, betas 0.9/0.999, eps 1e-8), elementwise gradient clamp at 5,
trained on torch-rnn's batching of a crnn-preprocess/torch-rnn .h5 file (B streams, S steps,
hidden state carried across batches and reset at each epoch's start, lr x0.5 at the end of
every 5th epoch).

Speed:   torch_charrnn.py --input_h5 F.h5 --input_json F.json --rnn_size 128 --num_layers 2
                          --iters 100 --warmup 10 --threads 2
  prints: RESULT impl=pytorch threads=2 rnn_size=128 num_layers=2 iters=100 ms_per_iter=...
          chars_per_s=... peak_rss_mb=... final_loss=...
Quality: torch_charrnn.py ... --epochs 3 --val_every_epoch 1
  prints one line per epoch: EPOCH e train_loss=... val_loss=...
"""
import argparse
import math
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import torch_reference as ref  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input_h5", required=True)
    ap.add_argument("--input_json", required=True)
    ap.add_argument("--rnn_size", type=int, default=128)
    ap.add_argument("--num_layers", type=int, default=2)
    ap.add_argument("--wordvec_size", type=int, default=64)
    ap.add_argument("--batch_size", type=int, default=50)
    ap.add_argument("--seq_length", type=int, default=50)
    ap.add_argument("--learning_rate", type=float, default=2e-3)
    ap.add_argument("--grad_clip", type=float, default=5.0)
    ap.add_argument("--iters", type=int, default=100, help="timed iterations")
    ap.add_argument("--warmup", type=int, default=10, help="untimed iterations first")
    ap.add_argument("--epochs", type=float, default=0,
                    help="train this many epochs instead of --warmup + --iters")
    ap.add_argument("--val_every_epoch", type=int, default=0,
                    help="1: print the validation loss after every whole epoch")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's default)")
    ap.add_argument("--seed", type=int, default=123)
    a = ap.parse_args()

    if a.threads > 0:
        torch.set_num_threads(a.threads)
        torch.set_num_interop_threads(1)
    torch.manual_seed(a.seed)
    splits, idx_to_token, _ = ref.load_data(a.input_h5, a.input_json)
    V, D, H, L = len(idx_to_token), a.wordvec_size, a.rnn_size, a.num_layers
    B, S = a.batch_size, a.seq_length

    model = ref.RefLM.from_params(ref.init_params(V, D, H, L, seed=a.seed), torch.float32)
    opt = torch.optim.Adam(model.parameters(), lr=a.learning_rate, betas=(0.9, 0.999), eps=1e-8)
    xb, yb = ref.batches(splits["train"], B, S)
    xb = torch.as_tensor(xb, dtype=torch.long)
    yb = torch.as_tensor(yb, dtype=torch.long)
    count = xb.shape[0]

    if a.epochs > 0:
        total, warmup = int(round(a.epochs * count)), 0
    else:
        total, warmup = a.warmup + a.iters, a.warmup
    state = None
    lr = a.learning_rate
    t0 = None
    loss_sum, loss_n = 0.0, 0
    loss = torch.zeros(())
    for it in range(total):
        if it == warmup:
            t0 = time.perf_counter()
        k = it % count
        if k == 0:
            state = None
        opt.zero_grad(set_to_none=True)
        logits, state = model(xb[k], state)
        loss = F.cross_entropy(logits.reshape(-1, V), yb[k].reshape(-1))
        loss.backward()
        state = tuple(s.detach() for s in state)
        if a.grad_clip > 0:
            for p in model.parameters():
                p.grad.clamp_(-a.grad_clip, a.grad_clip)
        opt.step()
        loss_sum += float(loss)
        loss_n += 1
        t = it + 1
        if t % count == 0:
            epoch = t // count
            if a.val_every_epoch:
                val = ref.evaluate(model, splits["val"], B, S)
                print("EPOCH %d train_loss=%.6f val_loss=%.6f" % (epoch, loss_sum / loss_n, val),
                      flush=True)
                loss_sum, loss_n = 0.0, 0
            if epoch % 5 == 0:
                lr *= 0.5
                for g in opt.param_groups:
                    g["lr"] = lr
    elapsed = time.perf_counter() - t0 if t0 is not None else float("nan")
    timed = total - warmup
    ms = 1000.0 * elapsed / timed if timed > 0 else float("nan")
    cps = B * S * timed / elapsed if timed > 0 and elapsed > 0 else float("nan")
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print("RESULT impl=pytorch threads=%d rnn_size=%d num_layers=%d iters=%d ms_per_iter=%.3f "
          "chars_per_s=%.0f peak_rss_mb=%.1f final_loss=%.6f"
          % (torch.get_num_threads(), H, L, timed, ms, cps, rss_mb,
             float(loss) if not math.isnan(float(loss)) else float("nan")), flush=True)


if __name__ == "__main__":
    main()
