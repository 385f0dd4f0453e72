"""torch-rnn's scripts/preprocess.py, restated with numpy: the one reference of the
preprocessing that the Python tests compare crnn-preprocess with (test_preprocess.py on files,
test_parity.py through torch_reference.preprocess_text). Needs numpy only."""
import codecs
import json

import numpy as np


def preprocess_text(chars, val_frac=0.1, test_frac=0.1):
    """The vocabulary and the splits of a sequence of characters (a str, or a list of
    one-character strs): (token_to_idx 1-based in order of first appearance,
    {split: 1-based array}, dtype). Splits: val and test take int(frac * n) characters each,
    train the rest, in the order train, val, test; uint8 up to 255 tokens, else uint32."""
    token_to_idx = {}
    for ch in chars:
        if ch not in token_to_idx:
            token_to_idx[ch] = len(token_to_idx) + 1
    n = len(chars)
    val_size = int(val_frac * n)
    test_size = int(test_frac * n)
    train_size = n - val_size - test_size
    dtype = np.uint8 if len(token_to_idx) <= 255 else np.uint32
    arr = np.array([token_to_idx[c] for c in chars], dtype=dtype)
    splits = {"train": arr[:train_size], "val": arr[train_size:train_size + val_size],
              "test": arr[train_size + val_size:]}
    return token_to_idx, splits, dtype


def preprocess_file(path, encoding="utf-8", val_frac=0.1, test_frac=0.1):
    """What torch-rnn's preprocess.py makes of a file: ({split: array}, dtype, the JSON text as
    json.dump writes it, the summary it prints). encoding "bytes": one token per byte (Python 2's
    str), bytes above 127 named "[n]" in the JSON."""
    if encoding == "bytes":
        with open(path, "rb") as f:
            chars = [chr(b) for b in f.read()]  # Python 2: one str character per byte
    else:
        chars = []
        with codecs.open(path, "r", encoding) as f:
            for line in f:
                chars.extend(line)
    token_to_idx, splits, dtype = preprocess_text(chars, val_frac, test_frac)
    total_size = len(chars)
    summary = ("Total vocabulary size: %d\n" % len(token_to_idx) +
               "Total tokens in file: %d\n" % total_size +
               "  Training size: %d\n" % len(splits["train"]) +
               "  Val size: %d\n" % len(splits["val"]) +
               "  Test size: %d\n" % len(splits["test"]) +
               "Using dtype  %s\n" % dtype)
    if encoding == "bytes":
        token_to_idx = {("[%d]" % ord(t)) if ord(t) > 127 else t: i for t, i in token_to_idx.items()}
    json_data = {
        "token_to_idx": token_to_idx,
        "idx_to_token": {v: k for k, v in token_to_idx.items()},
    }
    return splits, dtype, json.dumps(json_data), summary
