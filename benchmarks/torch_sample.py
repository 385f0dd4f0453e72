#!/usr/bin/env python3
"""A PyTorch sampling loop of a crnn checkpoint's model, as a user would write it: one character
at a time through nn.LSTM with the carried state, softmax, torch.multinomial. Usage:
torch_sample.py CHECKPOINT LENGTH"""
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import torch_reference as ref  # noqa: E402

torch.set_num_threads(1)
path, length = sys.argv[1], int(sys.argv[2])
_, params, idx_to_token = ref.read_checkpoint(path)
model = ref.RefLM.from_params(params).float()
torch.manual_seed(123)
with torch.no_grad():
    x = torch.randint(0, model.V, (1, 1))
    state, out = None, []
    for _ in range(length):
        logits, state = model(x, state)
        x = torch.multinomial(torch.softmax(logits[:, -1], dim=-1), 1)
        out.append(int(x))
sys.stdout.write("".join(idx_to_token[i] if isinstance(idx_to_token, list) else "" for i in out))
