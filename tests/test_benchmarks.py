#!/usr/bin/env python3
"""The scaling benchmark's tools: benchmarks/scaling.sh on this machine (tiny model, 1 and 2
ranks), its report from metrics files, and benchmarks/project_scaling.py's fit, validation and
projection on made-up measurements whose answers are known; the scripts' corpus setting; and
cpu_train.sh's oneDNN peer (benchmarks/onednn_peer.c) against PyTorch.

Run as `test_benchmarks.py <case>`; CRNN_BIN names the build folder."""
import json
import math
import os
import re
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BENCH = os.path.join(ROOT, "benchmarks")
PY = sys.executable


def run(args, env=None, expect=0, timeout=300):
    """stdout and stderr of a benchmark script run with env added to the environment; its exit
    status must be expect"""
    rc, out, err = harness.run(args, timeout=timeout, env=dict(os.environ, **(env or {})))
    assert rc == expect, f"{args} exited {rc}, expected {expect}:\n{out}\n{err}"
    return out + err


def ring(P, n, alpha, beta):
    return 2 * (P - 1) * alpha + 2 * (P - 1) / P * n / beta


def write_links(d, rate, P, model, sizes, alpha, beta, link_mbit, noise=None):
    buckets = [{"bucket": k, "bytes": n, "best_s": ring(P, n, alpha, beta) * (noise(k) if noise else 1),
                "median_s": 0} for k, n in enumerate(sizes)]
    buckets.append({"bucket": -1, "bytes": sum(sizes), "best_s": ring(P, sum(sizes), alpha, beta), "median_s": 0})
    links = [{"from": "h%d" % (r + 1), "to": "h%d" % ((r + 1) % P + 1), "mbit_s": link_mbit} for r in range(P)]
    path = os.path.join(d, "links-%s-%d-%s.json" % (rate, P, model.split()[-1]))
    with open(path, "w") as f:
        json.dump({"rate": rate, "model": model, "ranks": P, "repeat": 3, "links": links, "buckets": buckets}, f)
    return path


def case_fit(d):
    """the fit recovers a known α and β; a CPU-bound (slow-link) measurement and small buffers
    are left out, and a point far off shows its error"""
    alpha, beta = 200e-6, 100e6 / 8 * 0.93  # 200 us, 93 Mbit/s
    files = [write_links(d, "100mbit", P, "lstm 2x512", [133380, 8404992, 4734976, 16640], alpha, beta, 94.0)
             for P in (2, 4)]
    # 8 hosts: a link at 80 of 100 Mbit/s, and times twice the model's: must not pull the fit
    files.append(write_links(d, "100mbit", 8, "lstm 2x512", [133380, 8404992, 4734976, 16640], alpha, beta / 2, 80.0))
    out = run([PY, os.path.join(BENCH, "project_scaling.py"), "fit", *files, "--json", os.path.join(d, "fit.json")])
    with open(os.path.join(d, "fit.json")) as f:
        fit = json.load(f)["rates"]["100mbit"]
    assert abs(fit["alpha_s"] - alpha) < 1e-6 * alpha + 1e-9, (fit["alpha_s"], out)
    assert abs(fit["beta_bytes_per_s"] - beta) < 1e-6 * beta, (fit["beta_bytes_per_s"], out)
    assert fit["max_abs_error"] < 1e-6, out
    assert re.search(r"8 hosts, lstm 2x512 .*below 90% of 100mbit: CPU-bound, left out", out), out
    # every point is printed with its error, the left-out ones marked
    assert len(re.findall(r"^\s+8 lstm 2x512 .*\(left out: CPU-bound\)$", out, re.M)) == 5, out
    assert len(re.findall(r"\(left out: small\)$", out, re.M)) == 4, out  # 133 kB and 17 kB at 2 and 4 hosts
    assert re.search(r"alpha = 200\.0 us per ring step, beta = 93\.0 Mbit/s", out), out
    # the bad point's error is what the model says it is: measured twice the model's bandwidth term
    m = re.search(r"^\s+8 lstm 2x512\s+all\s+\d+\s+([\d.]+) ms\s+([\d.]+) ms\s+([+-][\d.]+)%", out, re.M)
    meas, model, err = map(float, m.groups())
    assert abs(err - 100 * (model - meas) / meas) < 0.1 and err < -40, m.group(0)


def case_validate(d):
    """validate predicts compute + T (flat) or compute + T - min(s·T, φ·compute) (overlap), with
    φ from the 2-host runs, and fails beyond the tolerance"""
    alpha, beta = 1e-3, 12e6
    buckets = [133380, 8404992, 4734976, 16640]
    n = sum(buckets)
    share = (133380 + 8404992) / n
    fit = {"rates": {"100mbit": {"alpha_s": alpha, "beta_bytes_per_s": beta}}, "gradient_bytes": {"lstm 2x512": n},
           "buckets": {"lstm 2x512": buckets}}
    fpath = os.path.join(d, "fit.json")
    with open(fpath, "w") as f:
        json.dump(fit, f)

    def doc(skew):
        runs = []
        for P in (2, 4, 8):
            T = 1e3 * ring(P, n, alpha, beta)
            compute = 100.0 * P * P  # at 8 ranks 0.2·compute exceeds s·T: the share bounds the hiding
            for mode in ("flat", "overlap"):
                # phi 0.2: the hiding is bounded by compute at 2 hosts, by the share s at 8
                step = compute + T - (min(share * T, 0.2 * compute) if mode == "overlap" else 0)
                if P == 8 and mode == "flat":
                    step *= skew
                runs.append({"scaling": "weak", "allreduce": mode, "ranks": P, "step_ms": step,
                             "compute_ms_max": compute, "io_ms": 0.0})
        return {"benchmark": "scaling", "model": "lstm 2x512", "launcher": "emulated hosts, one rank each, links 100mbit",
                "runs": runs}

    good, bad = os.path.join(d, "good.json"), os.path.join(d, "bad.json")
    with open(good, "w") as f:
        json.dump(doc(1.0), f)
    with open(bad, "w") as f:
        json.dump(doc(1.3), f)
    out = run([PY, os.path.join(BENCH, "project_scaling.py"), "validate", fpath, good])
    assert re.search(r"on 2 hosts at 100mbit overlap hid 7% .*phi = 0\.200 .*at most 64% of the gradient", out), out
    assert re.search(r"largest error 0\.0% .*the model holds", out), out
    out = run([PY, os.path.join(BENCH, "project_scaling.py"), "validate", fpath, bad], expect=1)
    assert re.search(r"^100mbit\s+8 weak\s+flat .* -23\.1%$", out, re.M), out
    assert "NOT within" in out, out


def case_project(d):
    """the projection's step and efficiency follow the ring and tree formulas, and the 90% line"""
    fpath = os.path.join(d, "fit.json")
    with open(fpath, "w") as f:
        json.dump({"rates": {}, "gradient_bytes": {"lstm 3x1024": 85316100},
                   "buckets": {"lstm 3x1024": [266500, 33587200, 33587200, 17858560, 16640]}}, f)
    out = run([PY, os.path.join(BENCH, "project_scaling.py"), "project", fpath, "--compute", "lstm 3x1024=100",
               "--phi", "0.5", "--json", os.path.join(d, "proj.json")])
    share = (266500 + 2 * 33587200) / 85316100
    with open(os.path.join(d, "proj.json")) as f:
        pts = json.load(f)["points"]
    ten = [p for p in pts if p["fabric"] == "10 GbE"]
    assert [p["ranks"] for p in ten] == [8, 64, 512], ten
    for p in ten:
        P = p["ranks"]
        t = ring(P, 85316100, 30e-6, 1.1e9)
        small = 2 * 2 * math.log2(P) * (30e-6 + 8 / 1.1e9)
        assert abs(p["allreduce_ms"] - 1e3 * t) < 1e-6, p
        assert abs(p["exposed_ms_overlap"] - 1e3 * (t - min(share * t, 0.05) + small)) < 1e-6, p
        assert abs(p["efficiency_flat"] - 0.1 / (0.1 + t + small)) < 1e-9, p
    # 100 ms of compute against 85 MB on 10 GbE: communication-bound, under 90% from 2 ranks
    assert re.search(r"10 GbE\s+under 90%: flat from 2, overlap from 2", out), out
    assert not [p for p in pts if p["fabric"].startswith("NVLink") and p["ranks"] > 8], "NVLink past a node"
    # validation's share of training time: 100 M tokens at 64 ranks of B=50, S=50 is 625 batches,
    # a third of a step each, every 1000 iterations: 20.8% shared, 64 times that on rank 0 alone
    out = run([PY, os.path.join(BENCH, "project_scaling.py"), "project", fpath, "--compute", "lstm 3x1024=100",
               "--val_tokens", "1e8", "--val_every", "1000"])
    assert re.search(r"^\s+64\s+625\s+20\.8%\s+1333\.3%$", out, re.M), out


def case_report(d):
    """scaling_report.py: chars/s is the harmonic mean over the measured windows, the time split
    is averaged over ranks, and efficiency is against the fewest ranks of the same kind"""
    def metrics(prefix, cps_windows, compute):
        with open(prefix + "_metrics.jsonl", "w") as f:
            for k, cps in enumerate(cps_windows):
                f.write(json.dumps({"type": "train", "iteration": 10 * (k + 1), "chars_per_s": cps,
                                    "time": {"compute": compute, "comm": [0.01] * len(compute),
                                             "io": [0.0] * len(compute)}}) + "\n")
            f.write(json.dumps({"type": "val", "iteration": 30, "val_loss": 2.0}) + "\n")

    metrics(os.path.join(d, "a"), [1.0, 1000.0, 1000.0], [0.5])          # warm-up window ignored
    metrics(os.path.join(d, "b"), [1.0, 1500.0, 3000.0], [0.4, 0.6])     # harmonic mean 2000
    out_json = os.path.join(d, "s.json")
    out = run([PY, os.path.join(BENCH, "scaling_report.py"), "--out", out_json, "--model", "lstm 2x512",
               "--seq_length", "50", "--iterations", "30", "--warmup", "10", "--launcher", "test",
               "weak:flat:1:24:1:" + os.path.join(d, "a"), "weak:flat:2:24:1:" + os.path.join(d, "b")])
    with open(out_json) as f:
        runs = {r["ranks"]: r for r in json.load(f)["runs"]}
    assert runs[1]["chars_per_s"] == 1000.0 and runs[2]["chars_per_s"] == 2000.0, runs
    assert runs[2]["efficiency"] == 1.0 and runs[1]["efficiency"] == 1.0, runs
    assert runs[2]["compute_ms"] == 500.0 and runs[2]["compute_ms_max"] == 600.0, runs
    assert runs[2]["step_ms"] == 1e3 * 48 * 50 / 2000.0, runs
    assert re.search(r"^\s+2\s+1\s+24 flat\s+2000\s+1200\.0\s+500\.0\s+10\.0\s+0\.00\s+100%$", out, re.M), out
    # a run whose metrics stop before the warm-up ends is an error naming the file
    metrics(os.path.join(d, "c"), [5.0], [0.1])
    out = run([PY, os.path.join(BENCH, "scaling_report.py"), "--out", out_json, "--model", "m", "--seq_length", "50",
               "--iterations", "30", "--warmup", "10", "--launcher", "t", "weak:flat:1:24:1:" + os.path.join(d, "c")],
              expect=1)
    assert "c_metrics.jsonl has no train record after the warm-up" in out, out


def case_scaling_local(d):
    """benchmarks/scaling.sh on this machine: 1 and 2 ranks, a tiny model, both kinds and modes"""
    text = os.path.join(d, "corpus.txt")
    with open(text, "w") as f:
        f.write("a small corpus for the scaling script, said over and over.\n" * 300)
    out_json = os.path.join(d, "res", "scaling.json")
    out = run([os.path.join(BENCH, "scaling.sh")],
              env={"TEXT": text, "OUT": out_json, "RANKS": "1 2", "RNN_SIZE": "32", "NUM_LAYERS": "1",
                   "WORDVEC_SIZE": "16", "SEQ_LENGTH": "16", "BATCH": "4", "GLOBAL_BATCH": "8", "ITERS": "6",
                   "WARMUP": "2"})
    with open(out_json) as f:
        doc = json.load(f)
    assert doc["model"] == "lstm 1x32" and doc["launcher"].startswith("mpirun on "), doc
    got = sorted((r["scaling"], r["allreduce"], r["ranks"], r["batch_per_rank"]) for r in doc["runs"])
    want = sorted((k, m, P, 4 if k == "weak" else 8 // P) for k in ("weak", "strong") for m in ("flat", "overlap")
                  for P in (1, 2))
    assert got == want, got
    assert all(r["efficiency"] == 1.0 for r in doc["runs"] if r["ranks"] == 1), doc["runs"]
    assert re.search(r"^weak scaling", out, re.M) and re.search(r"^strong scaling", out, re.M), out
    assert os.path.exists(os.path.join(d, "res", "scaling.svg")), out
    # bad settings: refused before anything runs
    out = run([os.path.join(BENCH, "scaling.sh")], env={"RANKS": "1 3", "GLOBAL_BATCH": "8", "OUT": out_json}, expect=2)
    assert "GLOBAL_BATCH 8 is not divisible by 3 ranks" in out, out
    out = run([os.path.join(BENCH, "scaling.sh")], env={"ITERS": "7", "WARMUP": "2", "OUT": out_json}, expect=2)
    assert "ITERS (7) must be a multiple of WARMUP (2)" in out, out


def case_big_corpus_small(d):
    """benchmarks/big_corpus.sh at 4 MB with a small model, both text kinds: every step's row, with
    wall time and peak memory, each rank's beside its shard, a test loss, and the token width"""
    for kind, width in (("ascii", "uint8"), ("wide", "uint32")):
        out = run([os.path.join(BENCH, "big_corpus.sh")],
                  env={"SIZE": "4M", "KIND": kind, "ITERS": "2", "VAL_BATCHES": "2", "NUM_LAYERS": "1",
                       "RNN_SIZE": "32", "TMPDIR": d}, timeout=600)
        assert re.search(rf"^corpus: {kind}, \d+ tokens \({width}, vocabulary \d+\)", out, re.M), out
        for step in (r"crnn-preprocess \| 1", r"crnn-train \(2 iterations\) \| 1", r"crnn-train \(2 iterations\) \| 2",
                     r"crnn-train \(-resume auto, 1 more\) \| 2", r"crnn-sample \(2,000 characters\) \| 1",
                     r"crnn-eval \(test split\) \| 2"):
            assert re.search(rf"^\| {step} \| [\d.]+ s \| \d+ MB", out, re.M), (step, out)
        # two ranks: two peak memories beside the shard; validations over 2 batches of the split
        assert re.search(r"^\| crnn-train \(2 iterations\) \| 2 \| [\d.]+ s \| \d+ MB / \d+ MB \| \d+ MB \| start-up", out, re.M), out
        assert re.search(r"validation [\d.]+/[\d.]+ s \(2 of \d+ batches\)", out), out
        assert re.search(r"test loss \d+\.\d+ \|$", out, re.M), out
    assert not [f for f in os.listdir(d) if f.startswith("crnn-big")], "the work folder was left behind"


def build_onednn_peer(d):
    """benchmarks/onednn_peer.c built as cpu_train.sh builds it (warnings are errors here); skips
    the case where oneDNN (Debian's libdnnl-dev) is not installed"""
    exe = os.path.join(d, "onednn_peer")
    rc, out, err = harness.run([os.environ.get("CC", "cc"), "-O2", "-Wall", "-Wextra", "-Werror", "-fopenmp",
                                os.path.join(BENCH, "onednn_peer.c"), "-o", exe, "-ldnnl", "-lm"])
    if rc != 0 and re.search(r"oneapi/dnnl/dnnl\.h: No such file|cannot find -ldnnl", err):
        harness.skip("oneDNN is not installed (apt-get install libdnnl-dev; launch/deps.sh installs it)")
    assert rc == 0, f"building onednn_peer.c failed:\n{out}\n{err}"
    return exe


RESULT_RE = re.compile(r"^RESULT (.*)$", re.M)


def result_fields(out):
    """the key=value pairs of the one RESULT line in out"""
    lines = RESULT_RE.findall(out)
    assert len(lines) == 1, out
    return dict(kv.split("=", 1) for kv in lines[0].split())


def read_dump(path):
    """onednn_peer's --dump file (its write_dump()): the header and the arrays, float64"""
    import numpy as np
    raw = open(path, "rb").read()
    head = np.frombuffer(raw[:40], dtype="<i4")
    assert head[0] == 0x504E444F and head[1] == 1, head
    cell, L, H, I, T, N, G, GB = (int(v) for v in head[2:])
    vals = np.frombuffer(raw[40:], dtype="<f4").astype(np.float64)
    pos = 0

    def take(*shape):
        nonlocal pos
        n = int(np.prod(shape))
        a = vals[pos:pos + n].reshape(shape)
        pos += n
        return a

    stacks = [(1, I)] + ([(L - 1, H)] if L > 1 else [])
    dump = {"cell": ["lstm", "gru", "rnn"][cell], "L": L, "H": H, "I": I, "T": T, "N": N, "G": G, "GB": GB,
            "x": take(T, N, I), "w": [], "dw": []}
    for Lk, Ik in stacks:
        dump["w"].append((take(Lk, 1, Ik, G, H), take(Lk, 1, H, G, H), take(Lk, 1, GB, H)))
    dump["y"], dump["dy"], dump["dx"] = take(T, N, H), take(T, N, H), take(T, N, I)
    for Lk, Ik in stacks:
        dump["dw"].append((take(Lk, 1, Ik, G, H), take(Lk, 1, H, G, H), take(Lk, 1, GB, H)))
    assert pos == vals.size, (pos, vals.size)
    return dump


def torch_of_onednn(dump):
    """PyTorch's nn.LSTM / nn.GRU / nn.RNN (float64) with the dump's weights, one module per
    oneDNN primitive, and the maps from their gradients back to oneDNN's layouts.

    oneDNN keeps weights as ldigo [layer, dir, in, gate, out] with the gate blocks LSTM i, f, c~,
    o (PyTorch's i, f, g, o: the same order), GRU u, r, o (PyTorch's z, r, n: the first two
    swapped), and one bias per gate (PyTorch's b_ih + b_hh) but for the GRU's fourth block, the
    b_hn that r multiplies. PyTorch's weight_ih_l is [G*H, in]."""
    import torch
    H, G = dump["H"], dump["G"]
    order = [1, 0, 2] if dump["cell"] == "gru" else list(range(G))  # PyTorch block -> oneDNN block
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[dump["cell"]]
    mods = []
    for wl, wi, b in dump["w"]:
        Lk, Ik = wl.shape[0], wl.shape[2]
        m = cls(Ik, H, Lk).double()
        with torch.no_grad():
            for l in range(Lk):
                def to_torch(w):  # [in, G, H] (oneDNN) -> [G*H, in] (PyTorch's order)
                    return torch.from_numpy(w[:, order, :].reshape(w.shape[0], G * H).T.copy())
                getattr(m, f"weight_ih_l{l}").copy_(to_torch(wl[l, 0]))
                getattr(m, f"weight_hh_l{l}").copy_(to_torch(wi[l, 0]))
                getattr(m, f"bias_ih_l{l}").copy_(torch.from_numpy(b[l, 0][order].reshape(-1).copy()))
                bhh = torch.zeros(G * H, dtype=torch.float64)
                if dump["cell"] == "gru":
                    bhh[2 * H:] = torch.from_numpy(b[l, 0][3].copy())
                getattr(m, f"bias_hh_l{l}").copy_(bhh)
        mods.append(m)

    def grads_of(m, Lk, Ik):
        """the module's gradients in oneDNN's layouts: dW_layer, dW_iter, dbias"""
        import numpy as np
        dwl, dwi, db = np.zeros((Lk, 1, Ik, G, H)), np.zeros((Lk, 1, H, G, H)), np.zeros((Lk, 1, dump["GB"], H))
        for l in range(Lk):
            gi = getattr(m, f"weight_ih_l{l}").grad.numpy().T.reshape(Ik, G, H)
            gh = getattr(m, f"weight_hh_l{l}").grad.numpy().T.reshape(H, G, H)
            bi = getattr(m, f"bias_ih_l{l}").grad.numpy().reshape(G, H)
            bh = getattr(m, f"bias_hh_l{l}").grad.numpy().reshape(G, H)
            for tb, ob in enumerate(order):
                dwl[l, 0, :, ob] = gi[:, tb]
                dwi[l, 0, :, ob] = gh[:, tb]
                db[l, 0, ob] = bi[tb]
            if dump["cell"] == "gru":
                db[l, 0, 3] = bh[2]
        return dwl, dwi, db

    return mods, grads_of


def case_onednn_peer(d):
    """benchmarks/onednn_peer.c: built as cpu_train.sh builds it, its RESULT lines for each cell
    (positive times, status ok), bf16 either timed or refused with a status (not a crash), and
    proof that it times real work: its forward output and its gradients, for the weights and
    input it dumps, match PyTorch's nn.LSTM / nn.GRU / nn.RNN within 1e-5 (after three steps:
    the gradients are a step's, not a sum over steps)"""
    import numpy as np
    import torch
    exe = build_onednn_peer(d)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for cell in ("lstm", "gru", "rnn"):
        for layers in (1, 2):
            dump = os.path.join(d, f"{cell}{layers}.bin")
            rc, out, err = harness.run([exe, "--dump", dump, cell, layers, 16, 8, 5, 4, 2, 1], env=env, timeout=120)
            assert rc == 0, (cell, layers, rc, out, err)
            r = result_fields(out)
            assert r["status"] == "ok" and r["cell"] == cell and r["layers"] == str(layers), out
            assert r["threads"] == "1" and r["dt"] == "f32" and r["steps"] == "2", out
            for k in ("ms_per_step", "best_ms", "fwd_ms", "bwd_ms"):
                assert float(r[k]) > 0 and math.isfinite(float(r[k])), (k, out)
            assert float(r["best_ms"]) <= float(r["ms_per_step"]) + 1e-9, out

            dmp = read_dump(dump)
            assert (dmp["cell"], dmp["L"], dmp["H"], dmp["I"], dmp["T"], dmp["N"]) == (cell, layers, 16, 8, 5, 4)
            mods, grads_of = torch_of_onednn(dmp)
            x = torch.from_numpy(dmp["x"].copy()).requires_grad_(True)
            h = x
            for m in mods:
                h, _ = m(h)
            err_y = float(np.abs(h.detach().numpy() - dmp["y"]).max())
            assert err_y < 1e-5, f"{cell} x{layers}: oneDNN's output differs from PyTorch's by {err_y}"
            assert float(np.abs(dmp["y"]).max()) > 1e-2, "the output is (nearly) zero: nothing was computed"
            h.backward(torch.from_numpy(dmp["dy"].copy()))
            scale = lambda a: max(1.0, float(np.abs(a).max()))  # noqa: E731
            err_dx = float(np.abs(x.grad.numpy() - dmp["dx"]).max())
            assert err_dx < 1e-5 * scale(dmp["dx"]), f"{cell} x{layers}: d input differs by {err_dx}"
            for k, (m, (wl, _, _)) in enumerate(zip(mods, dmp["w"])):
                want = grads_of(m, wl.shape[0], wl.shape[2])
                for name, a, b in zip(("dW_layer", "dW_iter", "dbias"), want, dmp["dw"][k]):
                    e = float(np.abs(a - b).max())
                    assert e < 1e-5 * scale(a), f"{cell} x{layers}, primitive {k + 1}: {name} differs by {e}"
    # bf16: timed where oneDNN has it, else refused with its status, never a crash
    rc, out, err = harness.run([exe, "--dt", "bf16", "lstm", 2, 16, 8, 5, 4, 2, 1], env=env, timeout=120)
    assert rc == 0, (rc, out, err)
    r = result_fields(out)
    assert r["dt"] == "bf16", out
    if r["status"] == "ok":
        assert float(r["ms_per_step"]) > 0, out
    else:
        assert r["stage"] in ("forward_pd", "backward_pd") and r["ms_per_step"] == "nan", out
    # a bad command line: the usage, status 2
    rc, out, err = harness.run([exe, "lstm", 2, 16], env=env)
    assert rc == 2 and "usage: onednn_peer" in err, (rc, out, err)


def case_cpu_train_small(d):
    """benchmarks/cpu_train.sh end to end with a tiny model (1x16, two rounds, two timed steps):
    every configuration's row with a time per round (float32 and -precision bf16), and the ratio
    lines; the oneDNN rows where
    libdnnl-dev is installed, and a clear note where it is not"""
    text = os.path.join(d, "corpus.txt")
    with open(text, "w") as f:
        f.write("a small corpus for the cpu_train script, said over and over again.\n" * 400)
    out = run([os.path.join(BENCH, "cpu_train.sh"), harness.BIN],
              env={"CRNN_CORPUS": text, "MODELS": "1x16", "ROUNDS": "2", "CELLS": "0", "ITERS_16": "2",
                   "WARMUP_16": "1", "TORCH_ITERS_16": "1", "TORCH_WARMUP": "0"}, timeout=280)
    onednn = "NO oneDNN ROWS" not in out
    rows = {(m.group(1), m.group(2)): m.group(3) for m in re.finditer(
        r"^\| 1x16 \| (\d) \| ([^|]+?) \| [^|]+ \| [\d.]+ \| \d+ \| [\d.]+ \| ([\d. /]+) \|$", out, re.M)}
    want = [("1", "crnn"), ("2", "crnn, mpirun -np 2, B=25 per rank"), ("2", "crnn")]
    if onednn:
        want += [("1", "oneDNN (recurrent layers)"), ("2", "oneDNN (recurrent layers)"),
                 ("2", "oneDNN (recurrent layers), OMP_WAIT_POLICY=passive")]
    for key in want:
        assert key in rows, (key, out)
        assert len(rows[key].split(" / ")) == 2, (key, rows[key], out)  # one figure per round
    # -precision bf16 (BF16_MODELS defaults to MODELS): crnn's three rows, oneDNN's where it has bf16
    bf = {(m.group(1), m.group(2)): m.group(3) for m in re.finditer(
        r"^\| 1x16 bf16 \| (\d) \| ([^|]+?) \| [^|]+ \| [\d.]+ \| \d+ \| [\d.]+ \| ([\d. /]+) \|$", out, re.M)}
    for key in [("1", "crnn -precision bf16"), ("2", "crnn -precision bf16, mpirun -np 2, B=25 per rank"),
                ("2", "crnn -precision bf16")]:
        assert key in bf and len(bf[key].split(" / ")) == 2, (key, out)
    assert re.search(r"^1x16, -precision bf16 against float32 \(the speed-up; at least 1.3 to be offered\): 1 core "
                     r"\d+\.\d\d, mpirun -np 2 \d+\.\d\d, 2 threads \d+\.\d\d$", out, re.M), out
    torch_rows = [k for k in rows if k[1].startswith("PyTorch")]
    assert len(torch_rows) == 2 and all(len(rows[k].split(" / ")) == 1 for k in torch_rows), out
    if onednn:
        assert re.search(r"^1x16, 1 core: crnn 1 thread / oneDNN 1 thread = \d+\.\d\d$", out, re.M), out
        assert re.search(r"^1x16, 2 cores: crnn mpirun -np 2 / oneDNN 2 threads = \d+\.\d\d; "
                         r"crnn 2 threads / oneDNN 2 threads = \d+\.\d\d$", out, re.M), out
    # a bad count is refused before anything runs
    out = run([os.path.join(BENCH, "cpu_train.sh"), harness.BIN],
              env={"CRNN_CORPUS": text, "ITERS_512": "x"}, expect=2)
    assert "ITERS_512 must be an integer >= 1 (got 'x')" in out, out


CORPUS_SCRIPTS = ["cpu_train.sh", "quality_tinyshakespeare.sh", "sample_speed.sh", "preprocess_speed.sh",
                  "overlap.sh", "validation_ranks.sh", "time_to_quality.sh"]


def case_corpus(d):
    """The scripts that train on a corpus take it from CRNN_CORPUS (benchmarks/lib.sh), with no
    fallback to a path of some machine: without it they stop at once (exit 2) saying how to give
    one, with an unreadable one they name it, and no script names an absolute data path."""
    env = {k: v for k, v in os.environ.items() if k not in ("CRNN_CORPUS", "TEXT")}
    env["CRNN_BIN"] = harness.BIN
    for script in CORPUS_SCRIPTS:
        rc, out, err = harness.run([os.path.join(BENCH, script)], env=env, timeout=60)
        assert rc == 2 and f"{script}: no corpus: set CRNN_CORPUS" in err, (script, rc, out, err)
        missing = os.path.join(d, "no-such-corpus.txt")
        rc, out, err = harness.run([os.path.join(BENCH, script)], env=dict(env, CRNN_CORPUS=missing), timeout=60)
        assert rc == 2 and f"cannot read the corpus '{missing}'" in err, (script, rc, out, err)
    for name in sorted(os.listdir(BENCH)):
        if name.endswith((".sh", ".py")):
            text = open(os.path.join(BENCH, name)).read()
            assert not re.search(r"/work/|\.\./shared|shared/data", text), f"benchmarks/{name} names a machine's data path"


def case_time_to_quality(d):
    """benchmarks/time_to_quality.sh on a small text with tiny models, both implementations: a
    threshold each reaches, reported with its seconds and iteration, and one none reaches, run
    to the time limit and reported as not reached; the JSON, the picture, and bad settings"""
    try:
        import torch  # noqa: F401
    except ImportError:
        harness.skip("no torch for the PyTorch reference")
    text = os.path.join(d, "corpus.txt")
    harness.make_text(text, n_chars=20000)
    script = os.path.join(BENCH, "time_to_quality.sh")
    conf = os.path.join(d, "preset.conf")
    env = {"CRNN_CORPUS": text, "THRESHOLDS": "3.2 0.05", "VAL_EVERY": "5", "CRNN_SECONDS": "4",
           "TORCH_SECONDS": "4", "OUT": os.path.join(d, "res", "ttq.json"),
           "CRNN_FLAGS": f"-config {conf} -num_layers 1 -batch_size 4 -print_every 5"}
    with open(conf, "w") as f:
        f.write("# a preset\nmodel = gru\nrnn_size = 16\nnum_layers = 3\nwordvec_size = 8\nseq_length = 16\n"
                "learning_rate = 0.01\n")
    out = run([script], env=env, timeout=120)
    # the reference trains crnn's recipe: the preset's settings, the command line's over them,
    # and the global batch
    assert re.search(r"^\$ \S+ \S+/torch_charrnn\.py --input_h5 \S+ --input_json \S+ --model_type gru --rnn_size 16 --num_layers 1 "
                     r"--wordvec_size 8 --learning_rate 0\.01 --seq_length 16 --batch_size 8 --threads 1 ", out, re.M), out
    assert re.search(r"^\| validation loss \| crnn-train, mpirun -np 2 \| PyTorch reference, 1 thread \|$", out, re.M), out
    assert re.search(r"^\| 3\.20 \| \d+ s \(iteration \d+; training only \d+ s\) \| \d+ s \(iteration \d+; "
                     r"training only \d+ s\) \|$", out, re.M), out
    assert re.search(r"^\| 0\.05 \| - \(not reached\) \| - \(not reached\) \|$", out, re.M), out
    with open(env["OUT"]) as f:
        doc = json.load(f)
    assert doc["thresholds"] == [3.2, 0.05] and [r["implementation"] for r in doc["runs"]] == ["crnn", "torch"], doc
    for r in doc["runs"]:
        hit = r["reached"]["3.20"]
        assert hit and hit["iteration"] % 5 == 0 and r["reached"]["0.05"] is None, r
        # the crossing is the first validation at or below the threshold, on the run's clock
        first = next(p for p in r["curve"] if p["val_loss"] <= 3.2)
        assert (hit["iteration"], hit["seconds"]) == (first["iteration"], round(first["time_s"], 1)), r
        assert all(p["train_s"] <= p["time_s"] for p in r["curve"]), r
        # each was stopped by its 4 s limit (the script's clock, which starts before mpirun's: a
        # loaded machine leaves crnn's own clock less), long before its 50 epochs (6,200
        # iterations)
        assert r["curve"][-1]["iteration"] < 3000 and r["curve"][-1]["time_s"] < 60, r["curve"][-1]
    if shutil.which("gnuplot"):
        with open(os.path.join(d, "res", "ttq.png"), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    # one implementation alone; and bad settings, refused before anything runs
    out = run([script], env=dict(env, RUN="crnn", THRESHOLDS="3.2"), timeout=120)
    assert re.search(r"^\| 3\.20 \| \d+ s \(iteration \d+; training only \d+ s\) \|$", out, re.M), out
    assert "torch_charrnn.py" not in out, out
    out = run([script], env=dict(env, THRESHOLDS="1.5x"), expect=2)
    assert "THRESHOLDS takes losses such as 1.50, got '1.5x'" in out, out
    out = run([script], env=dict(env, CRNN_FLAGS="-rnn_size 16 -optimizer rmsprop"), expect=2)
    assert "the PyTorch reference has no counterpart of CRNN_FLAGS's optimizer; set TORCH_FLAGS" in out, out
    out = run([script], env=dict(env, RUN="tf"), expect=2)
    assert "RUN takes crnn and torch, got 'tf'" in out, out
    out = run([script], env=dict(env, CRNN_CORPUS=""), expect=2)
    assert "time_to_quality.sh: no corpus: set CRNN_CORPUS" in out, out


def case_gemm_kernel(d):
    """benchmarks/gemm_kernel.c (the kernel alone against OpenBLAS): built with warnings as errors,
    each mode's RESULT line on small shapes with a partial K block, a tile's remainder rows and
    two panels; the kernel's products within float rounding of OpenBLAS's"""
    exe = os.path.join(d, "gemm_kernel")
    rc, out, err = harness.run([os.environ.get("CC", "cc"), "-O3", "-fno-trapping-math", "-march=native", "-Wall",
                                "-Wextra", "-Werror", "-I" + os.path.join(BENCH, "..", "kernels"),
                                "-I" + os.path.join(BENCH, "..", "include"), "-DK_BLOCK=64",
                                os.path.join(BENCH, "gemm_kernel.c"), "-o", exe, "-lopenblas", "-lm"])
    assert rc == 0, f"building gemm_kernel.c failed:\n{out}\n{err}"
    for mode in ("step", "nn", "nt", "tn"):
        rc, out, err = harness.run([exe, mode, "23", "150", "128"])
        assert rc == 0, f"gemm_kernel {mode}: exit {rc}\n{out}\n{err}"
        f = result_fields(out)
        assert f["mode"] == mode and f["M"] == "23" and f["K"] == "150" and f["N"] == "128", out
        if mode == "step":
            assert float(f["gflops"]) > 0, out
        else:
            assert float(f["kernel_gflops"]) > 0 and float(f["openblas_gflops"]) > 0, out
            assert float(f["max_rel_diff"]) <= 1e-5, f"gemm_kernel {mode}: the kernel differs from OpenBLAS: {out}"
    rc, out, err = harness.run([exe, "nn", "10", "10", "10"])
    assert rc == 2 and "multiple of" in err, (rc, out, err)


CASES = {"fit": case_fit, "validate": case_validate, "project": case_project, "report": case_report,
         "scaling_local": case_scaling_local, "big_corpus_small": case_big_corpus_small, "corpus": case_corpus,
         "onednn_peer": case_onednn_peer, "cpu_train_small": case_cpu_train_small,
         "time_to_quality": case_time_to_quality, "gemm_kernel": case_gemm_kernel}


def main():
    with harness.tempdir(prefix="crnn-bench-test-") as d:
        CASES[sys.argv[1]](d)
    print(sys.argv[1] + ": ok")


if __name__ == "__main__":
    main()
