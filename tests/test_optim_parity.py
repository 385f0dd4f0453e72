#!/usr/bin/env python3
"""crnn-train's optimizers, clipping and schedules against PyTorch's own: torch.optim.RMSprop
(char-rnn's RMSprop: alpha = -decay_rate, eps 1e-8 after the square root, no momentum) with
char-rnn's learning-rate decay, and torch.optim.Adam with torch.nn.utils.clip_grad_norm_
(-grad_clip_mode norm), written with torch/optim's Adam formula (eps added before the bias
correction, as torch-rnn; torch.optim.Adam adds it after, which matters when clipping makes the
gradients tiny). 10 steps from the same weights, on the same batches, losses within 1e-4."""
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_reference as ref  # noqa: E402
from harness import Workspace, binary, losses_by_iteration, must  # noqa: E402

ITERS = 10

torch.set_num_threads(1)

CASES = [  # name, crnn flags, what PyTorch does
    ("rmsprop, clamp 5, char-rnn's decay", {"optimizer": "rmsprop", "decay_rate": 0.9, "learning_rate": 3e-3,
                                            "learning_rate_decay": 0.8, "learning_rate_decay_after": 1,
                                            "lr_decay_factor": 1}),
    ("adam, norm clipping 0.05", {"grad_clip_mode": "norm", "grad_clip": 0.05}),
    ("rmsprop, norm clipping 0.1", {"optimizer": "rmsprop", "grad_clip_mode": "norm", "grad_clip": 0.1}),
]


def reference(model, tokens, B, S, flags):
    """PyTorch's optimizers and clipping, torch-rnn's batching, crnn's schedules at epoch ends."""
    lr = flags.get("learning_rate", 2e-3)
    params = list(model.parameters())
    rmsprop = flags.get("optimizer") == "rmsprop"
    if rmsprop:
        opt = torch.optim.RMSprop(params, lr=lr, alpha=flags.get("decay_rate", 0.95), eps=1e-8)
    m1 = [torch.zeros_like(p) for p in params]
    m2 = [torch.zeros_like(p) for p in params]
    xb, yb = ref.batches(tokens, B, S)
    count = xb.shape[0]
    state, losses = None, []
    for it in range(ITERS):
        k = it % count
        if k == 0:
            state = None
        logits, state = model(torch.as_tensor(xb[k], dtype=torch.long), state)
        loss = F.cross_entropy(logits.reshape(-1, model.V), torch.as_tensor(yb[k], dtype=torch.long).reshape(-1))
        model.zero_grad(set_to_none=True)
        loss.backward()
        state = ref.detach_state(state)
        losses.append(float(loss))
        clip = flags.get("grad_clip", 5.0)
        if flags.get("grad_clip_mode") == "norm":
            torch.nn.utils.clip_grad_norm_(params, clip)
        else:
            for p in params:
                p.grad.clamp_(-clip, clip)
        if rmsprop:
            opt.step()
        else:  # torch/optim's Adam
            t = it + 1
            step = lr * math.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
            with torch.no_grad():
                for p, a, b in zip(params, m1, m2):
                    a.mul_(0.9).add_(p.grad, alpha=0.1)
                    b.mul_(0.999).addcmul_(p.grad, p.grad, value=0.001)
                    p.addcdiv_(a, b.sqrt().add_(1e-8), value=-step)
        if (it + 1) % count == 0:  # the end of an epoch
            epoch = (it + 1) // count
            factor = flags.get("lr_decay_factor", 0.5)
            if factor != 1 and epoch % flags.get("lr_decay_every", 5) == 0:
                lr *= factor
            decay = flags.get("learning_rate_decay", 1)
            if decay != 1 and epoch >= flags.get("learning_rate_decay_after", 10):
                lr *= decay
            if rmsprop:
                for g in opt.param_groups:
                    g["lr"] = lr
    return losses, count


def main():
    ws = Workspace()
    failures = []
    try:
        D, H, L, B, S = 12, 24, 2, 20, 60  # 4 batches an epoch: the 10 steps cross two epoch ends
        for i, (name, flags) in enumerate(CASES):
            ck = ws.checkpoint("opt_%d.h5" % i, D, H, L, 30 + i, bias_scale=0.1)
            args = [binary("crnn-train"), "-input_h5", ws.h5, "-input_json", ws.json, "-init_from", ck,
                    "-batch_size", B, "-seq_length", S, "-rnn_size", H, "-num_layers", L,
                    "-wordvec_size", D, "-max_iters", ITERS, "-print_every", 1, "-checkpoint_every", 0,
                    "-checkpoint_name", ws.path("cv_%d/ck" % i), "-gpu", -1]
            for k, v in flags.items():
                args += ["-" + k, v]
            got = losses_by_iteration(must(args))
            _, params, _ = ref.read_checkpoint(ck)
            model = ref.RefLM.from_params(params)
            want, count = reference(model, ws.splits["train"], B, S, flags)
            worst = max(abs(got.get(j + 1, math.inf) - w) for j, w in enumerate(want))
            print("%s (%d batches an epoch): worst loss difference over %d steps %.2e" % (name, count, ITERS, worst))
            if not worst <= 1e-4:
                failures.append("%s: losses differ by %.3g\ncrnn %s\nPyTorch %s" % (name, worst, [got.get(j + 1) for j in range(ITERS)], want))
    finally:
        ws.close()
    for f in failures:
        print("FAIL " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
