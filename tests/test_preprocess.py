#!/usr/bin/python3
"""crnn-preprocess against torch-rnn's scripts/preprocess.py rules, and its handling of bad input.

    test_preprocess.py parity      same splits, dtypes, arrays, JSON and summary as the reference
    test_preprocess.py bad_input   errors: non-zero exit, a message naming the file and what to do,
                                   no output or .tmp file left, an existing output untouched
    test_preprocess.py stdin       --input_txt -: a pipe or a redirected file gives what the file
                                   gives; the pipe's temporary copy is gone afterwards; errors
    test_preprocess.py input_json  --input_json: a new text encoded with an existing vocabulary
                                   gets that vocabulary's ids; a character outside it is an error
                                   naming it and its byte offset, with nothing written

The reference below follows torch-rnn's preprocess.py (commit 6e72b866): tokens are the code
points read through codecs.open(..., 'utf-8') or, for --encoding bytes, the bytes of the file
(Python 2's str, which is what the script was written for); vocabulary in order of first
appearance, 1-based; val = int(val_frac * N), test = int(test_frac * N), train the rest, in that
order in the file; uint8 when V <= 255 else uint32; bytes > 127 become "[%d]" in the JSON, which
is json.dump'ed (Python 3 keeps the dicts' insertion order).

Needs Debian's python3 (h5py, numpy). CRNN_BIN is the build folder holding crnn-preprocess.
"""
import json
import os
import random
import subprocess
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import check, check_exit, prog, tempdir  # noqa: E402
from preprocess_reference import preprocess_file  # noqa: E402

BIN = prog("crnn-preprocess")


# The reference: torch-rnn's preprocess.py, restated with numpy (tests/preprocess_reference.py,
# which test_parity.py uses too)
reference = preprocess_file


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


def writer(folder):
    """w(name, data): writes the bytes data to folder/name and returns the path."""
    def w(name, data):
        path = os.path.join(folder, name)
        with open(path, "wb") as f:
            f.write(data)
        return path
    return w


def test_bad_input(tmp):
    w = writer(tmp)
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


# ------------------------------------------------------------------------------------------
# Standard input

def read_outputs(h5, js):
    with h5py.File(h5, "r") as f:
        arrays = {k: f[k][...] for k in ("train", "val", "test")}
        enc = f.attrs.get("encoding")
    with open(js, "rb") as f:
        return arrays, (enc.decode() if isinstance(enc, bytes) else enc), f.read()


def same_outputs(name, a, b):
    (arr_a, enc_a, js_a), (arr_b, enc_b, js_b) = a, b
    for k in arr_a:
        check(arr_a[k].dtype == arr_b[k].dtype and np.array_equal(arr_a[k], arr_b[k]),
              "%s: /%s differs from the file's" % (name, k))
    check(enc_a == enc_b, "%s: encoding %r != %r" % (name, enc_a, enc_b))
    check(js_a == js_b, "%s: the JSON differs from the file's" % name)


def test_stdin(tmp):
    rng = random.Random(3)
    pool = ["a", "b", " ", "\n", "\u00e9", "\u20ac", "\u4e2d", "\U0001F600"]
    # more than one read block (4 MiB), characters cut by the block boundaries
    text = "".join(rng.choice(pool) for _ in range(2_000_000)).encode("utf-8")
    src = os.path.join(tmp, "in.txt")
    with open(src, "wb") as f:
        f.write(text)
    spool = os.path.join(tmp, "spool")
    os.mkdir(spool)
    env = dict(os.environ, TMPDIR=spool)

    def outs(name):
        return [os.path.join(tmp, name + ".h5"), os.path.join(tmp, name + ".json")]

    ref_h5, ref_js = outs("file")
    p = run(["--input_txt", src, "--output_h5", ref_h5, "--output_json", ref_js, "--val_frac", "0.07"])
    check(p.returncode == 0, "from the file: %r" % p.stderr)
    ref = read_outputs(ref_h5, ref_js)

    # a pipe: copied to an unnamed file in $TMPDIR, gone afterwards
    h5, js = outs("pipe")
    p = run(["--input_txt", "-", "--output_h5", h5, "--output_json", js, "--val_frac", "0.07"], input=text.decode("utf-8"),
            env=env)
    check(p.returncode == 0, "from a pipe: exit %d, %r" % (p.returncode, p.stderr))
    if p.returncode == 0:
        same_outputs("pipe", read_outputs(h5, js), ref)
    check(os.listdir(spool) == [], "the pipe's copy was left in TMPDIR: %s" % os.listdir(spool))
    # the same summary as from the file
    p2 = run(["--input_txt", src, "--output_h5", h5, "--output_json", js, "--val_frac", "0.07"])
    check(p.stdout == p2.stdout and p.stdout.startswith("Total vocabulary size: 8"), "summary %r" % p.stdout)

    # without TMPDIR the copy is made next to the output .h5, and removed
    env_no = {k: v for k, v in os.environ.items() if k != "TMPDIR"}
    h5, js = outs("pipe_no_tmpdir")
    p = run(["--input_txt", "-", "--output_h5", h5, "--output_json", js, "--val_frac", "0.07", "--quiet"],
            input=text.decode("utf-8"), env=env_no)
    check(p.returncode == 0 and p.stdout == "", "pipe without TMPDIR: %r" % p.stderr)
    if p.returncode == 0:
        same_outputs("pipe without TMPDIR", read_outputs(h5, js), ref)
    left = [x for x in os.listdir(tmp) if x.startswith(".crnn") or x.endswith(".tmp")]
    check(not left, "files left next to the output: %s" % left)

    # a redirected file (< FILE) is read in place, from where standard input stands
    h5, js = outs("redirect")
    with open(src, "rb") as f:
        p = subprocess.run([BIN, "--input_txt", "-", "--output_h5", h5, "--output_json", js, "--val_frac", "0.07",
                            "--quiet"], stdin=f, capture_output=True, text=True, env=env)
    check(p.returncode == 0, "from < FILE: %r" % p.stderr)
    if p.returncode == 0:
        same_outputs("redirect", read_outputs(h5, js), ref)
    part = os.path.join(tmp, "part.txt")
    lead = len("".join(text.decode("utf-8")[:1000]).encode("utf-8"))  # 1000 characters in
    with open(part, "wb") as f:
        f.write(text[lead:])
    h5p, jsp = outs("part_file")
    p = run(["--input_txt", part, "--output_h5", h5p, "--output_json", jsp, "--quiet"])
    check(p.returncode == 0, "part: %r" % p.stderr)
    h5, js = outs("redirect_offset")
    with open(src, "rb") as f:
        f.seek(lead)
        p = subprocess.run([BIN, "--input_txt", "-", "--output_h5", h5, "--output_json", js, "--quiet"], stdin=f,
                           capture_output=True, text=True)
    check(p.returncode == 0, "from < FILE at an offset: %r" % p.stderr)
    if p.returncode == 0:
        same_outputs("redirect at an offset", read_outputs(h5, js), read_outputs(h5p, jsp))

    # bytes mode through a pipe
    raw = bytes(range(256)) * 3 + b"tail"
    with open(os.path.join(tmp, "raw.bin"), "wb") as f:
        f.write(raw)
    ref_b = outs("raw_file")
    run(["--input_txt", os.path.join(tmp, "raw.bin"), "--output_h5", ref_b[0], "--output_json", ref_b[1],
         "--encoding", "bytes", "--quiet"])
    h5, js = outs("raw_pipe")
    p = subprocess.run([BIN, "--input_txt", "-", "--output_h5", h5, "--output_json", js, "--encoding", "bytes",
                        "--quiet"], input=raw, capture_output=True, env=env)
    check(p.returncode == 0, "bytes from a pipe: %r" % p.stderr)
    if p.returncode == 0:
        same_outputs("bytes pipe", read_outputs(h5, js), read_outputs(*ref_b))

    # errors: the input named as standard input, exit 1, nothing written, no copy left
    h5, js = outs("bad")
    for name, data, needles in [("invalid UTF-8", b"abc\xffdef", ["standard input", "invalid UTF-8", "at byte 3",
                                                                   "--encoding bytes"]),
                                ("empty", b"", ["standard input", "empty"]),
                                ("one character", b"x", ["standard input", "single character"])]:
        p = subprocess.run([BIN, "--input_txt", "-", "--output_h5", h5, "--output_json", js], input=data,
                           capture_output=True, env=env)
        err = p.stderr.decode()
        check(p.returncode == 1, "stdin %s: exit %d" % (name, p.returncode))
        for n in needles:
            check(n in err, "stdin %s: %r not in %r" % (name, n, err))
        check(not os.path.exists(h5) and not os.path.exists(js) and not os.path.exists(h5 + ".tmp"),
              "stdin %s: an output was written" % name)
        check(os.listdir(spool) == [], "stdin %s: the copy was left: %s" % (name, os.listdir(spool)))
    # a TMPDIR that cannot hold the copy: the error says so and what to do
    p = subprocess.run([BIN, "--input_txt", "-", "--output_h5", h5, "--output_json", js], input=b"hello world",
                       capture_output=True, env=dict(os.environ, TMPDIR=os.path.join(tmp, "no_such_dir")))
    err = p.stderr.decode()
    check(p.returncode == 1 and "no_such_dir" in err and "TMPDIR" in err, "bad TMPDIR: %d %r" % (p.returncode, err))
    check(not os.path.exists(h5) and not os.path.exists(js), "bad TMPDIR: an output was written")


# ------------------------------------------------------------------------------------------
# An existing vocabulary

def token_ids(path, js, encoding="utf-8"):
    """The ids of the text at path in the vocabulary js, as the reference reads tokens."""
    with open(js) as f:
        t2i = json.load(f)["token_to_idx"]
    with open(path, "rb") as f:
        data = f.read()
    if encoding == "bytes":
        chars = [("[%d]" % b) if b > 127 else chr(b) for b in data]
    else:
        chars = list(data.decode("utf-8"))
    return np.array([t2i[c] for c in chars])


def test_input_json(tmp):
    w = writer(tmp)

    def encode_with(txt, vocab_json, what):
        """crnn-preprocess txt with --input_json vocab_json: (ids of all splits, dtype, encoding
        attribute), or None after a failed check."""
        h5 = txt + ".h5"
        p = run(["--input_txt", txt, "--input_json", vocab_json, "--output_h5", h5, "--quiet"])
        check(p.returncode == 0, "%s: %r" % (what, p.stderr))
        if p.returncode != 0:
            return None
        with h5py.File(h5, "r") as f:
            enc = f.attrs.get("encoding")
            return (np.concatenate([f["train"][...], f["val"][...], f["test"][...]]), f["train"].dtype,
                    enc.decode() if isinstance(enc, bytes) else enc)
    rng = random.Random(11)
    alphabet = "abcdefghij \n\u00e9\u20ac\U0001F600"
    orig = w("orig.txt", "".join(rng.choice(alphabet) for _ in range(20000)).encode("utf-8"))
    o_h5, o_js = os.path.join(tmp, "orig.h5"), os.path.join(tmp, "orig.json")
    p = run(["--input_txt", orig, "--output_h5", o_h5, "--output_json", o_js, "--quiet"])
    check(p.returncode == 0, "original: %r" % p.stderr)
    with open(o_js, "rb") as f:
        o_json_bytes = f.read()
    # a new text from part of the same characters, in another order: its own vocabulary would
    # number them differently
    new = w("new.txt", "".join(rng.choice("j\u20ac \U0001F600a") for _ in range(5000)).encode("utf-8"))
    n_h5, n_js = os.path.join(tmp, "new.h5"), os.path.join(tmp, "new.json")
    p = run(["--input_txt", new, "--input_json", o_js, "--output_h5", n_h5, "--output_json", n_js,
             "--val_frac", "0.2", "--test_frac", "0"])
    check(p.returncode == 0, "--input_json: exit %d %r" % (p.returncode, p.stderr))
    if p.returncode == 0:
        want = token_ids(new, o_js)
        with h5py.File(n_h5, "r") as f:
            got = np.concatenate([f["train"][...], f["val"][...], f["test"][...]])
            check(f["train"].dtype == np.uint8, "dtype %s" % f["train"].dtype)
            check(len(f["val"]) == 1000 and len(f["test"]) == 0, "split sizes")
        check(np.array_equal(got, want), "--input_json: the ids differ from the vocabulary's")
        with open(n_js, "rb") as f:
            check(f.read() == o_json_bytes, "--output_json is not a copy of the vocabulary")
        check(p.stdout.startswith("Total vocabulary size: 15\nTotal tokens in file: 5000\n"), "summary %r" % p.stdout)
        # its own vocabulary would have numbered the text otherwise (the test means something)
        own_h5, own_js = os.path.join(tmp, "own.h5"), os.path.join(tmp, "own.json")
        run(["--input_txt", new, "--output_h5", own_h5, "--output_json", own_js, "--quiet"])
        with h5py.File(own_h5, "r") as f:
            check(not np.array_equal(f["train"][...], want[:len(f["train"])]), "the test cannot tell the two apart")
    # the whole original text through --input_json gives the original file's arrays
    r_h5 = os.path.join(tmp, "again.h5")
    p = run(["--input_txt", orig, "--input_json", o_js, "--output_h5", r_h5, "--quiet"])
    check(p.returncode == 0, "again: %r" % p.stderr)
    if p.returncode == 0:
        with h5py.File(r_h5, "r") as a, h5py.File(o_h5, "r") as b:
            for k in ("train", "val", "test"):
                check(np.array_equal(a[k][...], b[k][...]), "again: /%s differs" % k)
    # --output_json left out, or the vocabulary itself: the vocabulary file stays as it was
    st = os.stat(o_js)
    p = run(["--input_txt", new, "--input_json", o_js, "--output_h5", os.path.join(tmp, "same.h5"),
             "--output_json", o_js, "--quiet"])
    check(p.returncode == 0, "--output_json = --input_json: %r" % p.stderr)
    check(os.stat(o_js).st_mtime_ns == st.st_mtime_ns and open(o_js, "rb").read() == o_json_bytes,
          "the vocabulary file was rewritten")
    check(not [x for x in os.listdir(tmp) if x.endswith(".tmp")], ".tmp left")

    # more than 255 tokens: uint32, as the original
    big = "".join(chr(c) for c in range(0x100, 0x1A0)) + "".join(chr(c) for c in range(0x20, 0x7F)) + "\u4e00" * 3
    b_txt = w("big.txt", "".join(rng.choice(big) for _ in range(4000)).encode("utf-8") + big.encode("utf-8"))
    b_h5, b_js = os.path.join(tmp, "big.h5"), os.path.join(tmp, "big.json")
    run(["--input_txt", b_txt, "--output_h5", b_h5, "--output_json", b_js, "--quiet"])
    small = w("small.txt", b"abc abc " * 10)
    got = encode_with(small, b_js, "big vocabulary")
    if got:
        check(got[1] == np.uint32, "a 256-token vocabulary: dtype %s" % got[1])
        check(np.array_equal(got[0], token_ids(small, b_js)), "big vocabulary: ids differ")

    # a bytes vocabulary (it has "[b]" tokens): the new text is read as bytes
    braw = w("braw.bin", bytes(range(40, 256)) * 5)
    br_h5, br_js = os.path.join(tmp, "braw.h5"), os.path.join(tmp, "braw.json")
    run(["--input_txt", braw, "--output_h5", br_h5, "--output_json", br_js, "--encoding", "bytes", "--quiet"])
    bnew = w("bnew.bin", b"\xff\xfe(\x80abc" * 30)
    bn_h5 = os.path.join(tmp, "bnew.h5")
    got = encode_with(bnew, br_js, "bytes vocabulary")
    if got:
        check(got[2] == "bytes", "encoding %r" % got[2])
        check(np.array_equal(got[0], token_ids(bnew, br_js, "bytes")), "bytes vocabulary: ids differ")
    # ... and --encoding utf-8 against it is a usage error
    p = run(["--input_txt", bnew, "--input_json", br_js, "--output_h5", bn_h5, "--encoding", "utf-8"])
    check(p.returncode == 2 and "--encoding" in p.stderr and br_js in p.stderr, "encoding clash: %d %r"
          % (p.returncode, p.stderr))

    # through standard input too
    s2_h5 = os.path.join(tmp, "stdin.h5")
    with open(new, "rb") as f:
        data = f.read()
    p = subprocess.run([BIN, "--input_txt", "-", "--input_json", o_js, "--output_h5", s2_h5, "--quiet",
                        "--val_frac", "0", "--test_frac", "0"], input=data, capture_output=True,
                       env=dict(os.environ, TMPDIR=tmp))
    check(p.returncode == 0, "stdin with --input_json: %r" % p.stderr)
    if p.returncode == 0:
        with h5py.File(s2_h5, "r") as f:
            check(np.array_equal(f["train"][...], token_ids(new, o_js)), "stdin with --input_json: ids differ")

    # characters outside the vocabulary: each named with the byte offset of its first
    # appearance; exit 2; nothing written, existing outputs untouched
    bad = w("bad.txt", "abc\u00e9X\u00e9 jZ\n".encode("utf-8"))  # X at byte 5, Z at byte 10
    x_h5, x_js = os.path.join(tmp, "x.h5"), os.path.join(tmp, "x.json")
    expect_error(tmp, "unknown characters", ["--input_txt", bad, "--input_json", o_js, "--output_h5", x_h5,
                                             "--output_json", x_js],
                 [bad, o_js, "2 characters are not in the vocabulary", "'X' at byte 5", "'Z' at byte 10",
                  "--input_json"], [x_h5, x_js])
    p = run(["--input_txt", bad, "--input_json", o_js, "--output_h5", x_h5])
    check(p.returncode == 2, "unknown characters: exit %d" % p.returncode)
    far = w("far.txt", b"abc " * 300000 + "\u4e2d".encode("utf-8"))
    expect_error(tmp, "unknown far", ["--input_txt", far, "--input_json", o_js, "--output_h5", x_h5],
                 ["1 character is not in the vocabulary", "(U+4E2D) at byte 1200000"], [x_h5])
    with open(x_h5, "wb") as f:
        f.write(b"old h5")
    expect_error(tmp, "unknown keeps outputs", ["--input_txt", bad, "--input_json", o_js, "--output_h5", x_h5],
                 ["'X' at byte 5"])
    check(open(x_h5, "rb").read() == b"old h5", "an existing output was touched")
    os.remove(x_h5)
    # a missing or broken vocabulary: named, exit 1
    missing = os.path.join(tmp, "missing.json")
    expect_error(tmp, "missing vocabulary", ["--input_txt", new, "--input_json", missing, "--output_h5", x_h5],
                 [missing], [x_h5])
    junk = w("junk.json", b"{not json")
    expect_error(tmp, "junk vocabulary", ["--input_txt", new, "--input_json", junk, "--output_h5", x_h5],
                 [junk], [x_h5])
    p = run(["--input_txt", new, "--input_json", missing, "--output_h5", x_h5])
    check(p.returncode == 1, "missing vocabulary: exit %d" % p.returncode)
    # the output .h5 may not be the vocabulary
    expect_error(tmp, "h5 is the vocabulary", ["--input_txt", new, "--input_json", o_js, "--output_h5", o_js],
                 ["--output_h5", o_js])
    check(open(o_js, "rb").read() == o_json_bytes, "the vocabulary was overwritten")


def main():
    what = sys.argv[1] if len(sys.argv) > 1 else "parity"
    if not os.access(BIN, os.X_OK):
        print("no executable %s; set CRNN_BIN to the build folder" % BIN)
        return 1
    with tempdir(prefix="crnn_pre_") as tmp:
        {"parity": test_parity, "bad_input": test_bad_input, "stdin": test_stdin,
         "input_json": test_input_json}[what](tmp)
    return check_exit(what)


if __name__ == "__main__":
    sys.exit(main())
