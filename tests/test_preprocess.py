#!/usr/bin/python3
"""crnn-preprocess against torch-rnn's scripts/preprocess.py rules, and its handling of bad input.

    test_preprocess.py parity      same splits, dtypes, arrays, JSON and summary as the reference
    test_preprocess.py bad_input   errors: non-zero exit, a message naming the file and what to do,
                                   no output or .tmp file left, an existing output untouched

The reference below follows torch-rnn's preprocess.py (commit 6e72b866): tokens are the code
points read through codecs.open(..., 'utf-8') or, for --encoding bytes, the bytes of the file
(Python 2's str, which is what the script was written for); vocabulary in order of first
appearance, 1-based; val = int(val_frac * N), test = int(test_frac * N), train the rest, in that
order in the file; uint8 when V <= 255 else uint32; bytes > 127 become "[%d]" in the JSON, which
is json.dump'ed (Python 3 keeps the dicts' insertion order).

Needs Debian's python3 (h5py, numpy). CRNN_BIN is the build folder holding crnn-preprocess.
"""
import codecs
import json
import os
import random
import subprocess
import sys
import tempfile

import h5py
import numpy as np

BIN = os.path.join(os.environ.get("CRNN_BIN", "build"), "crnn-preprocess")
FAILURES = []


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print("FAIL:", what, flush=True)


# ------------------------------------------------------------------------------------------
# The reference: torch-rnn's preprocess.py, restated with numpy.

def reference(path, encoding="utf-8", val_frac=0.1, test_frac=0.1):
    if encoding == "bytes":
        with open(path, "rb") as f:
            chars = [chr(b) for b in f.read()]  # Python 2: one str character per byte
    else:
        chars = []
        with codecs.open(path, "r", encoding) as f:
            for line in f:
                chars.extend(line)
    token_to_idx = {}
    for char in chars:
        if char not in token_to_idx:
            token_to_idx[char] = len(token_to_idx) + 1
    total_size = len(chars)
    val_size = int(val_frac * total_size)
    test_size = int(test_frac * total_size)
    train_size = total_size - val_size - test_size
    dtype = np.uint8 if len(token_to_idx) <= 255 else np.uint32
    data = np.array([token_to_idx[c] for c in chars], dtype=dtype)
    splits = {
        "train": data[:train_size],
        "val": data[train_size:train_size + val_size],
        "test": data[train_size + val_size:],
    }
    summary = ("Total vocabulary size: %d\n" % len(token_to_idx) +
               "Total tokens in file: %d\n" % total_size +
               "  Training size: %d\n" % train_size +
               "  Val size: %d\n" % val_size +
               "  Test size: %d\n" % test_size +
               "Using dtype  %s\n" % dtype)
    if encoding == "bytes":
        token_to_idx = {("[%d]" % ord(t)) if ord(t) > 127 else t: i for t, i in token_to_idx.items()}
    json_data = {
        "token_to_idx": token_to_idx,
        "idx_to_token": {v: k for k, v in token_to_idx.items()},
    }
    return splits, dtype, json.dumps(json_data), summary


def run(args, **kw):
    return subprocess.run([BIN] + args, capture_output=True, text=True, **kw)


def compare(name, tmp, text, encoding="utf-8", val_frac=None, test_frac=None, flag_style="--"):
    """Writes text (bytes), runs crnn-preprocess and the reference, compares everything."""
    src = os.path.join(tmp, name + ".txt")
    h5, js = os.path.join(tmp, name + ".h5"), os.path.join(tmp, name + ".json")
    with open(src, "wb") as f:
        f.write(text)
    d = flag_style
    args = [d + "input_txt", src, d + "output_h5", h5, d + "output_json", js]
    if encoding != "utf-8":
        args += [d + "encoding", encoding]
    if val_frac is not None:
        args += [d + "val_frac", repr(val_frac)]
    if test_frac is not None:
        args += [d + "test_frac", repr(test_frac)]
    if flag_style == "--=":  # --name=value
        args = ["--%s=%s" % (args[k][3:], args[k + 1]) for k in range(0, len(args), 2)]
    p = run(args)
    check(p.returncode == 0, "%s: exit %d, stderr %r" % (name, p.returncode, p.stderr))
    if p.returncode != 0:
        return
    splits, dtype, ref_json, ref_summary = reference(
        src, encoding, 0.1 if val_frac is None else val_frac, 0.1 if test_frac is None else test_frac)
    check(p.stdout == ref_summary, "%s: summary %r != %r" % (name, p.stdout, ref_summary))
    with h5py.File(h5, "r") as f:
        check(sorted(f.keys()) == ["test", "train", "val"], "%s: datasets %s" % (name, list(f.keys())))
        for split, want in splits.items():
            got = f[split]
            check(got.ndim == 1, "%s: /%s is %d-D" % (name, split, got.ndim))
            check(got.dtype == dtype, "%s: /%s dtype %s, want %s" % (name, split, got.dtype, dtype))
            check(got.shape == want.shape, "%s: /%s shape %s, want %s" % (name, split, got.shape, want.shape))
            if got.shape == want.shape:
                arr = got[...]
                bad = np.nonzero(arr != want)[0]
                check(bad.size == 0, "%s: /%s differs first at %s" % (name, split, bad[:1]))
        enc = f.attrs.get("encoding")
        enc = enc.decode() if isinstance(enc, bytes) else enc
        check(enc == encoding, "%s: encoding attribute %r" % (name, enc))
    with open(js, "rb") as f:
        raw = f.read()
    check(json.loads(raw) == json.loads(ref_json), "%s: JSON differs semantically" % name)
    check(raw == ref_json.encode("ascii"), "%s: JSON is not byte-identical to json.dump's" % name)
    left = [x for x in os.listdir(tmp) if x.endswith(".tmp")]
    check(not left, "%s: temporary files left: %s" % (name, left))


def test_parity(tmp):
    base = (b"First Citizen:\nBefore we proceed any further, hear me speak.\n\n"
            b"All:\nSpeak, speak.\n\nFirst Citizen:\nYou are all resolved rather to die than to famish?\n")
    compare("ascii", tmp, base * 40)
    compare("ascii_single_dash", tmp, base * 3, flag_style="-")
    compare("ascii_equals", tmp, base * 3, val_frac=0.2, flag_style="--=")
    compare("two_tokens", tmp, b"ab")
    compare("utf8_multibyte", tmp,
            ("caf\u00e9 na\u00efve \u00fcber \u20ac5 \u65e5\u672c\u8a9e \U0001F600\U0001F680 "
             "\u0416\u0437\n").encode("utf-8") * 25 + "\U00010348".encode("utf-8"))
    compare("utf8_bom", tmp, "\ufeffBOM first\n\u00e9".encode("utf-8") * 5)
    # over 255 tokens: uint32
    big = "".join(chr(c) for c in range(0x20, 0x7F)) + "".join(chr(c) for c in range(0x100, 0x260))
    rng = random.Random(1)
    compare("vocab_uint32", tmp, "".join(rng.choice(big) for _ in range(5000)).encode("utf-8"))
    # exactly 255 tokens stays uint8, 256 is uint32
    v255 = "".join(chr(c) for c in range(1, 256))
    compare("vocab_255", tmp, (v255 * 3).encode("utf-8"))
    compare("vocab_256", tmp, ("\0" + v255).encode("utf-8") * 3)
    compare("crlf", tmp, b"line one\r\nline two\r\n\r\nend\r\n" * 10)
    compare("nul_utf8", tmp, b"ab\x00cd\x00\n" * 10 + b"\x00")
    # bytes mode: bytes >= 128 become "[b]"; invalid UTF-8 is fine there
    compare("bytes_high", tmp, b"abc\xc3\xa9\xff\xfe\x80 \x00\r\n" * 20, encoding="bytes")
    compare("bytes_all256", tmp, bytes(range(256)) * 4, encoding="bytes")
    compare("bytes_ascii", tmp, base * 5, encoding="bytes")
    compare("bytes_specials", tmp, b'"\\/\x7f\x01\x1f\t\b\x0c' * 7, encoding="bytes")
    # fractions, including 0
    for k, (vf, tf) in enumerate([(0.0, 0.0), (0.25, 0.0), (0.0, 0.3), (0.05, 0.15),
                                  (0.33, 0.33), (0.5, 0.49), (0.999, 0.0)]):
        compare("frac%d" % k, tmp, base * 7 + "\u00e9\u20ac".encode("utf-8"), val_frac=vf, test_frac=tf)
    compare("frac_bytes", tmp, base * 7, encoding="bytes", val_frac=0.0, test_frac=0.2)
    compare("frac_tiny", tmp, b"abc", val_frac=0.4, test_frac=0.3)  # 1 + 0 + 0 ... int() floors
    # several read blocks (4 MiB) and HDF5 writes (2M tokens): characters of 1 to 4 bytes cut at
    # random places by the block boundaries, split boundaries inside a write
    rng = random.Random(7)
    pool = ["a", "b", " ", "\n", "\u00e9", "\u00df", "\u20ac", "\u4e2d", "\U0001F600", "\U00010348"]
    text = "".join(rng.choice(pool) for _ in range(3_000_000)).encode("utf-8")
    compare("blocks_uint8", tmp, text, val_frac=0.07, test_frac=0.11)
    pool += [chr(c) for c in range(0x400, 0x500)]
    text = "".join(rng.choice(pool) for _ in range(2_500_000)).encode("utf-8")
    compare("blocks_uint32", tmp, text)
    compare("blocks_bytes", tmp, text[:5_000_000], encoding="bytes", val_frac=0.3)
    # --quiet prints nothing
    src = os.path.join(tmp, "ascii.txt")
    p = run(["--input_txt", src, "--output_h5", os.path.join(tmp, "q.h5"),
             "--output_json", os.path.join(tmp, "q.json"), "--quiet"])
    check(p.returncode == 0 and p.stdout == "" and p.stderr == "", "--quiet: %r %r" % (p.stdout, p.stderr))
    # overwriting existing outputs works
    p = run(["--input_txt", src, "--output_h5", os.path.join(tmp, "q.h5"),
             "--output_json", os.path.join(tmp, "q.json"), "--quiet"])
    check(p.returncode == 0, "rerun over existing outputs: %r" % p.stderr)
    p = run(["--help"])
    check(p.returncode == 0 and "--quiet" in p.stdout and "-val_frac" in p.stdout, "--help: %r" % p.stdout)


# ------------------------------------------------------------------------------------------
# Bad input

def expect_error(tmp, name, args, needles, outputs=None):
    """Runs, expects exit != 0, each needle in stderr, and no output files or .tmp left."""
    before = set(os.listdir(tmp))
    p = run(args)
    check(p.returncode != 0, "%s: exit %d (expected an error)" % (name, p.returncode))
    check(p.stderr.startswith("crnn-preprocess: error: "), "%s: stderr %r" % (name, p.stderr))
    check(p.stdout == "", "%s: printed %r" % (name, p.stdout))
    for n in needles:
        check(n in p.stderr, "%s: %r not in %r" % (name, n, p.stderr))
    after = set(os.listdir(tmp))
    check(after == before, "%s: files appeared: %s" % (name, sorted(after - before)))
    for o in outputs or []:
        for path in (o, o + ".tmp"):
            check(not os.path.exists(path) or os.path.basename(path) in before,
                  "%s: %s exists" % (name, path))


def test_bad_input(tmp):
    def w(name, data):
        path = os.path.join(tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    good = w("good.txt", b"hello world\n" * 10)
    h5, js = os.path.join(tmp, "out.h5"), os.path.join(tmp, "out.json")
    outs = ["--output_h5", h5, "--output_json", js]

    missing = os.path.join(tmp, "missing.txt")
    expect_error(tmp, "missing input", ["--input_txt", missing] + outs,
                 [missing, "No such file", "--input_txt"], [h5, js])
    expect_error(tmp, "input is a folder", ["--input_txt", tmp] + outs, [tmp, "folder"], [h5, js])
    empty = w("empty.txt", b"")
    expect_error(tmp, "empty input", ["--input_txt", empty] + outs, [empty, "empty"], [h5, js])
    one = w("one.txt", b"x")
    expect_error(tmp, "one character", ["--input_txt", one] + outs,
                 [one, "single character", "nothing to learn", "longer text"], [h5, js])
    one_mb = w("one_mb.txt", "\U0001F600".encode("utf-8"))
    expect_error(tmp, "one 4-byte character", ["--input_txt", one_mb] + outs,
                 [one_mb, "single character"], [h5, js])
    one_b = w("one_b.txt", b"\xff")
    expect_error(tmp, "one byte", ["--input_txt", one_b, "--encoding", "bytes"] + outs,
                 [one_b, "single character"], [h5, js])

    # invalid UTF-8: the byte offset and the --encoding bytes hint
    cases = [("overlong2", b"ab\xc0\x80cd", 2), ("overlong3", b"abc\xe0\x80\x80", 3),
             ("overlong4", b"\xf0\x80\x80\x80xyz", 0), ("surrogate", b"xx\xed\xa0\x80yy", 2),
             ("too_big", b"x\xf4\x90\x80\x80y", 1), ("f5", b"xy\xf5\x80\x80\x80", 2),
             ("lone_cont", b"hello\x80", 5), ("ff", b"\xff\xfe", 0),
             ("truncated_end", "h\u00e9".encode("utf-8") + b"\xe2\x82", 3),
             ("truncated_mid", b"ab\xe2\x82cd", 2), ("latin1", "caf\u00e9 ok".encode("latin-1"), 3)]
    for name, data, off in cases:
        path = w(name + ".txt", data)
        expect_error(tmp, "invalid UTF-8 " + name, ["--input_txt", path] + outs,
                     [path, "invalid UTF-8", "at byte %d" % off, "--encoding bytes"], [h5, js])
    # far into the file, past the first read block
    far = w("far.txt", b"abcdefgh" * 700_000 + b"\xff")
    expect_error(tmp, "invalid UTF-8 far", ["--input_txt", far] + outs,
                 [far, "at byte 5600000", "--encoding bytes"], [h5, js])
    os.remove(far)

    # fractions
    for name, flags, needle in [("val_frac 1", ["--val_frac", "1"], "--val_frac"),
                                ("val_frac < 0", ["--val_frac", "-0.1"], "--val_frac"),
                                ("test_frac > 1", ["--test_frac", "1.5"], "--test_frac"),
                                ("sum 1", ["--val_frac", "0.5", "--test_frac", "0.5"], "below 1"),
                                ("sum > 1", ["--val_frac", "0.6", "--test_frac", "0.7"], "below 1"),
                                ("not a number", ["--val_frac", "abc"], "val_frac"),
                                ("nan", ["--test_frac", "nan"], "test_frac"),
                                ("bad encoding", ["--encoding", "latin1"], "utf-8|bytes"),
                                ("unknown flag", ["--frac", "0.1"], "--frac"),
                                ("no input flag", [], "--input_txt")]:
        args = (["--input_txt", good] if name != "no input flag" else []) + outs + flags
        expect_error(tmp, name, args, [needle], [h5, js])

    # outputs: missing folder, folder given as file, same file twice, the input itself
    nodir_h5 = os.path.join(tmp, "nodir", "x.h5")
    expect_error(tmp, "missing h5 folder", ["--input_txt", good, "--output_h5", nodir_h5,
                                            "--output_json", js], [nodir_h5, "folder"], [js])
    nodir_js = os.path.join(tmp, "nodir", "x.json")
    expect_error(tmp, "missing json folder", ["--input_txt", good, "--output_h5", h5,
                                              "--output_json", nodir_js], [nodir_js, "folder"], [h5])
    under_file = os.path.join(good, "x.h5")
    expect_error(tmp, "folder is a file", ["--input_txt", good, "--output_h5", under_file,
                                           "--output_json", js], [under_file], [js])
    sub = os.path.join(tmp, "sub")
    os.mkdir(sub)
    expect_error(tmp, "h5 is a folder", ["--input_txt", good, "--output_h5", sub, "--output_json", js],
                 [sub, "folder"], [js])
    expect_error(tmp, "same outputs", ["--input_txt", good, "--output_h5", h5, "--output_json", h5],
                 [h5, "different"], [h5])
    expect_error(tmp, "output is input", ["--input_txt", good, "--output_h5", good, "--output_json", js],
                 [good, "input"], [js])
    if os.geteuid() != 0:  # root writes anywhere
        ro = os.path.join(tmp, "ro")
        os.mkdir(ro)
        os.chmod(ro, 0o555)
        ro_h5 = os.path.join(ro, "x.h5")
        expect_error(tmp, "unwritable folder", ["--input_txt", good, "--output_h5", ro_h5,
                                                "--output_json", js], [ro_h5, "writable"], [js])
        os.chmod(ro, 0o755)

    # existing outputs survive a failed run, byte for byte
    with open(h5, "wb") as f:
        f.write(b"old h5")
    with open(js, "wb") as f:
        f.write(b"old json")
    for path, enc in [(one, "utf-8"), (w("bad.txt", b"ok\xffok"), "utf-8"), (empty, "bytes")]:
        expect_error(tmp, "keeps outputs (%s)" % os.path.basename(path),
                     ["--input_txt", path, "--encoding", enc] + outs, [path])
        with open(h5, "rb") as f:
            check(f.read() == b"old h5", "existing %s was touched" % h5)
        with open(js, "rb") as f:
            check(f.read() == b"old json", "existing %s was touched" % js)
    check(not os.path.exists(h5 + ".tmp") and not os.path.exists(js + ".tmp"), ".tmp files left")


def main():
    what = sys.argv[1] if len(sys.argv) > 1 else "parity"
    if not os.access(BIN, os.X_OK):
        print("no executable %s; set CRNN_BIN to the build folder" % BIN)
        return 1
    with tempfile.TemporaryDirectory(prefix="crnn_pre_") as tmp:
        {"parity": test_parity, "bad_input": test_bad_input}[what](tmp)
    if FAILURES:
        print("%d check(s) failed" % len(FAILURES))
        return 1
    print("%s: all checks passed" % what)
    return 0


if __name__ == "__main__":
    sys.exit(main())
