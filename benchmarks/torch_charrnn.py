#!/usr/bin/env python3
"""A PyTorch char-rnn of crnn's model, for side-by-side speed and quality runs.

nn.Embedding(V, 64) -> nn.LSTM (--model_type gru: nn.GRU; rnn: nn.RNN, tanh) of L x H ->
nn.Linear(H, V), float32 on the CPU, torch-rnn's initialisation, Adam (lr 2e-3, betas
0.9/0.999, eps 1e-8), elementwise gradient clamp at 5, trained on torch-rnn's batching of a
crnn-preprocess/torch-rnn .h5 file (B streams, S steps, hidden state carried across batches and
reset at each epoch's start, lr x0.5 at the end of every 5th epoch).

Speed:   torch_charrnn.py --input_h5 F.h5 --input_json F.json --rnn_size 128 --num_layers 2
                          --iters 100 --warmup 10 --threads 2
  prints: RESULT impl=pytorch threads=2 rnn_size=128 num_layers=2 iters=100 ms_per_iter=...
          chars_per_s=... peak_rss_mb=... final_loss=...
Quality: torch_charrnn.py ... --epochs 3 --val_every_epoch 1
  prints one line per epoch: EPOCH e train_loss=... val_loss=...
Curves:  torch_charrnn.py ... --epochs 10 --val_every 100 --metrics ref_metrics.jsonl
                          [--target_loss 1.50] [--max_seconds 1200]
  validates every N iterations (and at the end) and prints one line each:
          VAL iteration=... epoch=... time_s=... val_loss=... val_seconds=...
  with crnn's metrics records (docs/FORMATS.md section 4: "start", "train" and "val", each with
  time_s, seconds since the script began training) in --metrics; stops after the first
  validation at or below --target_loss, or once --max_seconds have passed.

The training recipe's other settings, to compare with crnn-train one at a time: --dropout P
(zeroes units of the LSTM layers' outputs in training), --dropout_layers all (after every layer,
the last one too: torch-rnn's and crnn's) or between (only between layers: nn.LSTM's own
dropout), --init torch-rnn or pytorch (PyTorch's default initialisation of nn.Embedding,
nn.LSTM and nn.Linear), --grad_clip_mode clamp or norm, --lr_decay_every and
--lr_decay_factor (torch-rnn's schedule, at epoch ends).
"""
import argparse
import json
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
    ap.add_argument("--model_type", choices=("lstm", "gru", "rnn"), default="lstm")
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
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--dropout_layers", choices=("all", "between"), default="all",
                    help="all: after every LSTM layer (torch-rnn, crnn); between: nn.LSTM's")
    ap.add_argument("--init", choices=("torch-rnn", "pytorch"), default="torch-rnn")
    ap.add_argument("--grad_clip_mode", choices=("clamp", "norm"), default="clamp")
    ap.add_argument("--lr_decay_every", type=int, default=5, help="epochs (0: never)")
    ap.add_argument("--lr_decay_factor", type=float, default=0.5)
    ap.add_argument("--val_every", type=int, default=0,
                    help="validate every this many iterations and at the end (0: never)")
    ap.add_argument("--metrics", help="write crnn's metrics records (JSON lines) to this file")
    ap.add_argument("--target_loss", type=float, default=0,
                    help="stop after the first validation at or below this loss (0: never)")
    ap.add_argument("--max_seconds", type=float, default=0,
                    help="stop at the first iteration past this many seconds (0: never)")
    a = ap.parse_args()
    if not 0 <= a.dropout < 1:
        ap.error("--dropout must be in [0, 1)")

    if a.threads > 0:
        torch.set_num_threads(a.threads)
        torch.set_num_interop_threads(1)
    torch.manual_seed(a.seed)
    clock0 = time.perf_counter()
    splits, idx_to_token, _ = ref.load_data(a.input_h5, a.input_json)
    V, D, H, L = len(idx_to_token), a.wordvec_size, a.rnn_size, a.num_layers
    B, S = a.batch_size, a.seq_length

    if a.init == "torch-rnn":
        model = ref.RefLM.from_params(ref.init_params(V, D, H, L, seed=a.seed, cell=a.model_type),
                                      torch.float32)
    else:
        model = ref.RefLM(V, D, H, L, torch.float32, a.model_type)  # PyTorch's own initialisation
    if a.dropout > 0 and L > 1:
        model.rnn.dropout = a.dropout  # nn.LSTM's: between layers, in training only
    last_dropout = a.dropout if a.dropout_layers == "all" else 0.0
    opt = torch.optim.Adam(model.parameters(), lr=a.learning_rate, betas=(0.9, 0.999), eps=1e-8)
    xb, yb = ref.batches(splits["train"], B, S)
    xb = torch.as_tensor(xb, dtype=torch.long)
    yb = torch.as_tensor(yb, dtype=torch.long)
    count = xb.shape[0]
    metrics = open(a.metrics, "w") if a.metrics else None

    def record(**r):
        if metrics:
            r["time_s"] = round(time.perf_counter() - clock0, 6)
            r["wall"] = time.time()
            metrics.write(json.dumps(r) + "\n")
            metrics.flush()

    def validate(t):
        v0 = time.perf_counter()
        model.eval()
        val = ref.evaluate(model, splits["val"], B, S)
        model.train()
        secs = time.perf_counter() - v0
        record(type="val", iteration=t, epoch=t / count, val_loss=val, val_seconds=secs)
        print("VAL iteration=%d epoch=%.3f time_s=%.2f val_loss=%.6f val_seconds=%.2f"
              % (t, t / count, time.perf_counter() - clock0, val, secs), flush=True)
        return val

    record(type="start", iteration=0, seconds=time.perf_counter() - clock0)

    if a.epochs > 0:
        total, warmup = int(round(a.epochs * count)), 0
    else:
        total, warmup = a.warmup + a.iters, a.warmup
    state = None
    lr = a.learning_rate
    t0 = None
    loss_sum, loss_n = 0.0, 0
    loss = torch.zeros(())
    window_loss, window_n, window_t = 0.0, 0, time.perf_counter()
    done = 0
    for it in range(total):
        if it == warmup:
            t0 = time.perf_counter()
        k = it % count
        if k == 0:
            state = None
        opt.zero_grad(set_to_none=True)
        inp = model.emb(xb[k]) if model.emb is not None else F.one_hot(xb[k], V).float()
        out, state = model.rnn(inp, state)
        if last_dropout > 0:
            out = F.dropout(out, last_dropout, training=True)  # the last layer's output
        logits = model.dec(out)
        loss = F.cross_entropy(logits.reshape(-1, V), yb[k].reshape(-1))
        loss.backward()
        state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        if a.grad_clip > 0 and a.grad_clip_mode == "clamp":
            for p in model.parameters():
                p.grad.clamp_(-a.grad_clip, a.grad_clip)
        elif a.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), a.grad_clip)
        opt.step()
        loss_sum += float(loss)
        loss_n += 1
        window_loss += float(loss)
        window_n += 1
        t = it + 1
        done = t
        stop = False
        if a.val_every and (t % a.val_every == 0 or t == total):
            now = time.perf_counter()
            record(type="train", iteration=t, epoch=t / count, loss=window_loss / window_n,
                   learning_rate=lr, chars_per_s=B * S * window_n / (now - window_t))
            val = validate(t)
            stop = a.target_loss > 0 and val <= a.target_loss
            window_loss, window_n, window_t = 0.0, 0, time.perf_counter()
        if a.max_seconds > 0 and time.perf_counter() - clock0 > a.max_seconds:
            stop = True
        if t % count == 0:
            epoch = t // count
            if a.val_every_epoch:
                model.eval()
                val = ref.evaluate(model, splits["val"], B, S)
                model.train()
                print("EPOCH %d train_loss=%.6f val_loss=%.6f" % (epoch, loss_sum / loss_n, val),
                      flush=True)
                loss_sum, loss_n = 0.0, 0
            if a.lr_decay_every > 0 and epoch % a.lr_decay_every == 0:
                lr *= a.lr_decay_factor
                for g in opt.param_groups:
                    g["lr"] = lr
        if stop:
            break
    elapsed = time.perf_counter() - t0 if t0 is not None else float("nan")
    timed = done - warmup
    ms = 1000.0 * elapsed / timed if timed > 0 else float("nan")
    cps = B * S * timed / elapsed if timed > 0 and elapsed > 0 else float("nan")
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print("RESULT impl=pytorch threads=%d rnn_size=%d num_layers=%d iters=%d ms_per_iter=%.3f "
          "chars_per_s=%.0f peak_rss_mb=%.1f final_loss=%.6f"
          % (torch.get_num_threads(), H, L, timed, ms, cps, rss_mb,
             float(loss) if not math.isnan(float(loss)) else float("nan")), flush=True)


if __name__ == "__main__":
    main()
