"""Reads a checkpoint written by crnn (test_checkpoint --write) with h5py and checks the layout
and dtypes of docs/FORMATS.md section 4; then writes a params-only file with h5py, as another tool
would (float64 arrays, no /config, no training state), and checks that crnn reads it.

usage: python3 test_checkpoint_h5py.py PATH/TO/test_checkpoint
"""
import os
import subprocess
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import check, check_exit, tempdir  # noqa: E402


def attr_is(obj, name, kind, value=None):
    """kind: 'int64', 'float64' or 'str' (variable-length UTF-8)."""
    if name not in obj.attrs:
        check(False, f"{obj.name} has no attribute {name}")
        return
    dt = obj.attrs.get_id(name).dtype
    shape = obj.attrs.get_id(name).shape
    check(shape == (), f"{obj.name} attr {name} is not scalar: {shape}")
    if kind == "str":
        info = h5py.check_string_dtype(dt)
        check(info is not None and info.encoding == "utf-8" and info.length is None,
              f"{obj.name} attr {name}: {dt} is not a variable-length UTF-8 string")
    else:
        check(dt == np.dtype(kind), f"{obj.name} attr {name}: {dt}, expected {kind}")
    if value is not None:
        got = obj.attrs[name]
        if isinstance(got, bytes):
            got = got.decode()
        check(got == value, f"{obj.name} attr {name} = {got!r}, expected {value!r}")


def dataset_is(f, path, dtype, shape):
    if path not in f:
        check(False, f"missing {path}")
        return None
    d = f[path]
    check(isinstance(d, h5py.Dataset), f"{path} is not a dataset")
    check(d.dtype == np.dtype(dtype), f"{path}: dtype {d.dtype}, expected {dtype}")
    check(d.shape == shape, f"{path}: shape {d.shape}, expected {shape}")
    return d[()]


def check_written(path):
    # the sample: lstm, V 14, D 8, H 16, L 3, 6 streams, iteration 1234, adam, utf-8
    V, D, H, L, G, streams = 14, 8, 16, 3, 4, 6
    with h5py.File(path, "r") as f:
        attr_is(f, "format", "str", "crnn-checkpoint")
        attr_is(f, "format_version", "int64", 1)
        attr_is(f, "model_type", "str", "lstm")
        attr_is(f, "vocab_size", "int64", V)
        attr_is(f, "wordvec_size", "int64", D)
        attr_is(f, "rnn_size", "int64", H)
        attr_is(f, "num_layers", "int64", L)
        attr_is(f, "dropout", "float64", 0.25)
        attr_is(f, "iteration", "int64", 1234)
        attr_is(f, "epoch", "float64")
        check(abs(f.attrs["epoch"] - 10 / 3) < 1e-12, "epoch value")

        cfg = f["config"]
        attr_is(cfg, "batch_size", "int64", 50)
        attr_is(cfg, "learning_rate", "float64", 2e-3)
        attr_is(cfg, "input_h5", "str", "data/tiny shakespeare.h5")
        attr_is(cfg, "checkpoint_name", "str", "cv/caf\u00e9 \u6f22")
        attr_is(cfg, "start_text", "str", "")
        check(list(cfg.attrs)[:3] == ["input_h5", "batch_size", "learning_rate"]
              or sorted(cfg.attrs) == list(cfg.attrs), "config attribute order")

        attr_is(f["vocab"], "encoding", "str", "utf-8")
        d = f["vocab/idx_to_token"]
        info = h5py.check_string_dtype(d.dtype)
        check(info is not None and info.encoding == "utf-8" and info.length is None,
              f"/vocab/idx_to_token dtype {d.dtype}")
        check(d.shape == (V,), f"/vocab/idx_to_token shape {d.shape}")
        tokens = [t for t in d.asstr()[()]]
        want = ["a", "b", "\n", " ", "[0]", "\u00e9", "\u6f22", "\U0001F600", "[", "]", "0",
                '"', "\\", "\x7f"]
        check(tokens == want, f"tokens {tokens!r}")

        order = [("params/embedding", (V, D))]
        for l in range(L):
            din = D if l == 0 else H
            order += [(f"params/rnn/{l}/W_x", (din, G * H)), (f"params/rnn/{l}/W_h", (H, G * H)),
                      (f"params/rnn/{l}/b_x", (G * H,)), (f"params/rnn/{l}/b_h", (G * H,))]
        order += [("params/decoder/W", (H, V)), ("params/decoder/b", (V,))]
        flat = []
        for p, shape in order:
            a = dataset_is(f, p, "float32", shape)
            if a is not None:
                flat.append(a.ravel())
        n = sum(a.size for a in flat)
        groups = set()
        f["params"].visit(lambda name: groups.add(name))
        check(len([g for g in groups if isinstance(f["params"][g], h5py.Dataset)]) == len(order),
              "unexpected datasets under /params")

        optim = f["optim"]
        attr_is(optim, "name", "str", "adam")
        attr_is(optim, "step", "int64", 1234)
        attr_is(optim, "learning_rate", "float64", 5e-4)
        dataset_is(f, "optim/m", "float32", (n,))
        v = dataset_is(f, "optim/v", "float32", (n,))
        check(v is not None and (v >= 0).all(), "optim/v non-negative")
        rng = dataset_is(f, "state/rng", "uint64", (5,))
        check(rng is not None and int(rng[0]) == 2**64 - 1, "state/rng values")
        for l in range(L):
            dataset_is(f, f"state/hidden/{l}/h", "float32", (streams, H))
            dataset_is(f, f"state/hidden/{l}/c", "float32", (streams, H))
        sd = f["state/data"]
        attr_is(sd, "streams", "int64", streams)
        attr_is(sd, "batch_index", "int64", 17)
        attr_is(sd, "epoch_index", "int64", 3)
        tl = dataset_is(f, "history/train_loss", "float32", (1234,))
        check(tl is not None and abs(tl[0] - 4.0) < 1e-6, "train_loss[0]")
        dataset_is(f, "history/val_loss", "float32", (3,))
        vi = dataset_is(f, "history/val_iteration", "int64", (3,))
        check(vi is not None and list(vi) == [1000, 2000, 3000], "val_iteration values")
        return float(np.concatenate(flat).astype(np.float64).sum())


def write_params_only(path, rng):
    """A params-only file as another tool writes it: float64, no /config, no state."""
    V, D, H, L, G = 5, 3, 4, 2, 4
    tokens = ["h", "i", " ", "\u00e9", "\n"]
    total = 0.0
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "crnn-checkpoint"
        f.attrs["format_version"] = 1
        f.attrs["model_type"] = "lstm"
        for k, v in [("vocab_size", V), ("wordvec_size", D), ("rnn_size", H), ("num_layers", L)]:
            f.attrs[k] = v
        g = f.create_group("vocab")
        g.attrs["encoding"] = "utf-8"
        g.create_dataset("idx_to_token", data=tokens, dtype=h5py.string_dtype())
        shapes = {"params/embedding": (V, D), "params/decoder/W": (H, V), "params/decoder/b": (V,)}
        for l in range(L):
            din = D if l == 0 else H
            shapes[f"params/rnn/{l}/W_x"] = (din, G * H)
            shapes[f"params/rnn/{l}/W_h"] = (H, G * H)
            shapes[f"params/rnn/{l}/b_x"] = (G * H,)
            shapes[f"params/rnn/{l}/b_h"] = (G * H,)
        for p, shape in shapes.items():
            a = rng.standard_normal(shape)
            f.create_dataset(p, data=a)  # float64
            total += float(a.astype(np.float32).astype(np.float64).sum())
    return total


def run(binary, *args):
    return subprocess.run([binary, *args], capture_output=True, text=True)


def main():
    binary = sys.argv[1]
    with tempdir(prefix="crnn-checkpoint-h5py-") as d:
        path = os.path.join(d, "written.h5")
        r = run(binary, "--write", path)
        check(r.returncode == 0, f"--write failed: {r.stderr}")
        total = check_written(path)
        r = run(binary, "--read", path, "1")
        check(r.returncode == 0 and "has_state=1" in r.stdout, f"--read: {r.stdout} {r.stderr}")
        if r.returncode == 0:
            s = float(r.stdout.split("sum=")[1].split()[0])
            check(abs(s - total) < 1e-3, f"parameter sum {s} vs h5py's {total}")

        other = os.path.join(d, "from_h5py.h5")
        total = write_params_only(other, np.random.default_rng(1))
        r = run(binary, "--read", other)
        check(r.returncode == 0, f"reading an h5py params-only file: {r.stderr}")
        if r.returncode == 0:
            check("has_state=0" in r.stdout and "config=0" in r.stdout and "V=5" in r.stdout,
                  f"summary: {r.stdout}")
            s = float(r.stdout.split("sum=")[1].split()[0])
            check(abs(s - total) < 1e-3, f"parameter sum {s} vs {total}")
        r = run(binary, "--read", other, "1")
        check(r.returncode != 0 and "no training state" in r.stderr and other in r.stderr,
              f"want_state on a params-only file: {r.stderr}")
        # a float64 parameter with a NaN is refused, naming the tensor
        with h5py.File(other, "r+") as f:
            a = f["params/rnn/1/W_h"][()]
            a[1, 2] = np.nan
            f["params/rnn/1/W_h"][...] = a
        r = run(binary, "--read", other)
        check(r.returncode != 0 and "/params/rnn/1/W_h" in r.stderr, f"NaN: {r.stderr}")
    return check_exit("test_checkpoint_h5py")


if __name__ == "__main__":
    sys.exit(main())
