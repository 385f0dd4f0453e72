#!/usr/bin/env python3
"""The communication model of crnn's data parallelism: fitted to measurements, checked against
measured training, then used to project step time and efficiency to many ranks.

    project_scaling.py fit LINKS.json... [--json FIT.json]
        benchmarks/comm_links.sh's measurements (one file per link rate, host count and model).
        Fits the ring allreduce model
            T(P, n) = 2(P-1)·α + 2(P-1)/P · n/β        (α latency per step, β bytes/s)
        per link rate, by least squares on the relative error (α >= 0), and prints the fit's error
        at every point. Left out of the fit, and printed with their error: a (rate, hosts) whose
        slowest link ran below 90% of the set rate with every link loaded at once (limited by this
        machine's cores, which the emulated hosts share, not by the network); and buffers under
        --min_bytes (1 MB), which tc's token bucket (2 ms of the rate) lets through partly at the
        machine's speed. The gradient of every model measured is over 97% in buckets above that.

    project_scaling.py validate FIT.json SCALING.json... [--tolerance 0.15]
        benchmarks/scaling.sh results on emulated hosts (HOSTS=emulated RATE=r). Predicts each
        run's step time as compute (the slowest rank's, measured in that run) + I/O + exposed,
            flat:     exposed = T(P, n)
            overlap:  exposed = T(P, n) - min(s·T(P, n), φ·compute)
        -allreduce overlap hides communication behind the backward of the layers below each
        bucket: at most the share s of the gradient outside the first layer's and the embedding's
        buckets (the last to be ready; s from the bucket sizes), and at most as long as that
        backward lasts, a share φ of the step's compute. φ is measured on 2 hosts at the same
        rate: φ = (exposed(flat) - exposed(overlap)) / compute(overlap), exposed = step - compute
        - I/O. (The loss's and the stop flag's 8-byte allreduces are left out: the fit's α is no
        latency, below, and they take under 1% of these steps.) Prints measured against
        predicted; exit status 1 when a run is off by more than the tolerance.

    project_scaling.py project FIT.json [--compute MODEL=MS ...] [--phi F] [--ranks 8 64 512]
        Step time and weak-scaling efficiency (compute / step) of each model on named fabrics,
        from the compute time per step (measured here, or a GPU's) and the fabrics' α and β
        (stated below: assumed from their specifications, not measured here), for both
        allreduces: exposed = T(P, n) (flat) or T(P, n) - min(s·T, φ·compute) (overlap, φ as
        measured by validate), plus 2·2·log2(P)·α for the loss's and the stop flag's 8-byte
        allreduces, which crnn sends through a binomial tree. Marks a point compute-bound when the
        exposed communication is under 10% of the step, and says for each model and fabric the
        first rank count below 90% efficiency, and the compute time per step a rank needs to
        stay at 90% at 512 ranks. With --val_tokens, also what a full validation pass every
        --val_every iterations costs as a share of training time at each rank count, with the
        ranks sharing it and with rank 0 alone (as before they shared it).
"""
import argparse
import json
import math
import re
import sys

# Fabrics for the projection: β is the allreduce bus bandwidth a ring reaches (about 90% of the
# line rate of one link per rank), α the latency of one ring step. Specifications, not
# measurements: crnn could only measure emulated links here.
FABRICS = [
    # name, β (bytes/s), α (s), the most ranks it joins (None: any)
    ("NVLink 4 (8 GPUs in a node)", 360e9, 2e-6, 8),
    ("InfiniBand NDR 400 Gbit/s", 45e9, 3e-6, None),
    ("100 GbE", 11e9, 15e-6, None),
    ("10 GbE", 1.1e9, 30e-6, None),
]
SMALL = 8  # bytes of the loss and stop-flag allreduces


def fail(msg):
    print("project_scaling.py: " + msg, file=sys.stderr)
    sys.exit(2)


def rate_mbit(text):
    m = re.fullmatch(r"([0-9.]+)([kmg]?)bit", text or "")
    if not m:
        return None
    return float(m.group(1)) * {"": 1e-6, "k": 1e-3, "m": 1.0, "g": 1e3}[m.group(2)]


def ring(P, n, alpha, beta):
    if P <= 1:
        return 0.0
    return 2 * (P - 1) * alpha + 2 * (P - 1) / P * n / beta


def tree(P, n, alpha, beta):
    """the binomial tree crnn uses below 64 KB: a reduce and a broadcast of log2(P) steps each"""
    if P <= 1:
        return 0.0
    return 2 * math.ceil(math.log2(P)) * (alpha + n / beta)


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        fail("cannot read %s: %s" % (path, e))


def lstsq2(rows):
    """least squares for y = a·x1 + b·x2 over rows (x1, x2, y, weight)"""
    s11 = sum(w * w * x1 * x1 for x1, x2, y, w in rows)
    s12 = sum(w * w * x1 * x2 for x1, x2, y, w in rows)
    s22 = sum(w * w * x2 * x2 for x1, x2, y, w in rows)
    t1 = sum(w * w * x1 * y for x1, x2, y, w in rows)
    t2 = sum(w * w * x2 * y for x1, x2, y, w in rows)
    det = s11 * s22 - s12 * s12
    if det == 0:
        fail("the fit is singular: measure at least two host counts or sizes")
    return (t1 * s22 - t2 * s12) / det, (s11 * t2 - s12 * t1) / det


def cmd_fit(a):
    by_rate = {}
    for path in a.links:
        d = load(path)
        if "rate" not in d or "buckets" not in d:
            fail("%s is not a comm_links.sh measurement (no rate or buckets)" % path)
        by_rate.setdefault(d["rate"], []).append(d)
    out = {"model": "T(P, n) = 2(P-1)*alpha + 2(P-1)/P * n/beta", "rates": {}, "gradient_bytes": {}, "buckets": {}}
    for rate, files in sorted(by_rate.items(), key=lambda kv: rate_mbit(kv[0]) or 0):
        mbit = rate_mbit(rate)
        print("links at %s" % rate)
        points, excluded = [], []
        for d in sorted(files, key=lambda d: (d["ranks"], d["model"])):
            P = d["ranks"]
            links = [l["mbit_s"] for l in d.get("links", [])]
            slow = min(links) if links else None
            cpu_bound = slow is not None and mbit and slow < 0.9 * mbit
            print("  %d hosts, %-12s links %s Mbit/s%s" % (
                P, d["model"], " ".join("%.1f" % x for x in links),
                "  <- below 90%% of %s: CPU-bound, left out" % rate if cpu_bound else ""))
            out["buckets"][d["model"]] = [b["bytes"] for b in sorted(d["buckets"], key=lambda b: b["bucket"])
                                          if b["bucket"] >= 0]
            for b in d["buckets"]:
                if b["bucket"] < 0:
                    out["gradient_bytes"][d["model"]] = b["bytes"]
                p = {"hosts": P, "model": d["model"], "bucket": b["bucket"], "bytes": b["bytes"],
                     "seconds": b["best_s"], "slowest_link_mbit": slow,
                     "left_out": "CPU-bound" if cpu_bound else "small" if b["bytes"] < a.min_bytes else None}
                (excluded if p["left_out"] else points).append(p)
        if len({p["hosts"] for p in points}) < 1 or len(points) < 2:
            print("  too few points left to fit at %s" % rate)
            continue
        rows = [(2 * (p["hosts"] - 1), 2 * (p["hosts"] - 1) / p["hosts"] * p["bytes"], p["seconds"],
                 1.0 / p["seconds"]) for p in points]
        alpha, inv_beta = lstsq2(rows)
        if alpha < 0:  # no negative latency: the bandwidth term alone
            alpha = 0.0
            inv_beta = sum(w * w * x2 * y for x1, x2, y, w in rows) / sum(w * w * x2 * x2 for x1, x2, y, w in rows)
        beta = 1.0 / inv_beta
        print("  fit: alpha = %.1f us per ring step, beta = %.1f Mbit/s (%.1f%% of the set %s), %d points"
              % (alpha * 1e6, beta * 8e-6, 100 * beta * 8e-6 / mbit if mbit else float("nan"), rate, len(points)))
        print("  %5s %-12s %6s %12s %11s %11s %8s" % ("hosts", "model", "bucket", "bytes", "measured", "fit", "error"))
        worst = 0.0
        for p in points + excluded:
            t = ring(p["hosts"], p["bytes"], alpha, beta)
            p["fit_seconds"] = t
            p["error"] = (t - p["seconds"]) / p["seconds"]
            if not p["left_out"]:
                worst = max(worst, abs(p["error"]))
            print("  %5d %-12s %6s %12d %8.2f ms %8.2f ms %+7.1f%%%s" % (
                p["hosts"], p["model"], "all" if p["bucket"] < 0 else p["bucket"], p["bytes"], 1e3 * p["seconds"],
                1e3 * t, 100 * p["error"], "  (left out: %s)" % p["left_out"] if p["left_out"] else ""))
        print("  largest error over the %d fitted points: %.1f%%" % (len(points), 100 * worst))
        out["rates"][rate] = {"alpha_s": alpha, "beta_bytes_per_s": beta, "set_mbit": mbit, "points": points,
                              "excluded": excluded, "max_abs_error": worst}
        print()
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)
            f.write("\n")
        print("wrote %s" % a.json)


def run_rate(doc):
    m = re.search(r"links (\S+)", doc.get("launcher", ""))
    return m.group(1) if m else None


def model_key(model):
    """"lstm 2x512" -> "lstm 2x512" as comm_links.sh names it"""
    return model.strip()


def hideable(fit, model):
    """the share of the gradient overlap can hide: all but the first layer's and the embedding's
    buckets (backward hands the buckets over from the decoder down; those two are ready last)"""
    b = fit.get("buckets", {}).get(model)
    if not b or len(b) < 3:
        fail("no bucket sizes for %s in the fit: run comm_links.sh and fit again" % model)
    return sum(b[:-2]) / sum(b)


def overlap_exposed(t, s, phi, compute):
    return t - min(s * t, phi * compute)


def exposed(r):
    return r["step_ms"] - r["compute_ms_max"] - r["io_ms"]


def cmd_validate(a):
    fit = load(a.fit)
    rows, worst, phis = [], 0.0, {}
    for path in a.scaling:
        doc = load(path)
        rate = run_rate(doc)
        if rate not in fit["rates"]:
            fail("%s: its links (%s) have no fit in %s: measure that rate with comm_links.sh" % (path, rate, a.fit))
        f = fit["rates"][rate]
        alpha, beta = f["alpha_s"], f["beta_bytes_per_s"]
        n = fit["gradient_bytes"].get(model_key(doc["model"]))
        if n is None:
            fail("%s: no gradient size for %s in %s" % (path, doc["model"], a.fit))
        runs = doc["runs"]
        share = hideable(fit, model_key(doc["model"]))
        two = {r["allreduce"]: r for r in runs if r["ranks"] == 2 and r["scaling"] == "weak"}
        if "flat" not in two or "overlap" not in two:
            fail("%s has no 2-rank weak runs with both allreduces: the overlap's share needs them" % path)
        hidden2 = exposed(two["flat"]) - exposed(two["overlap"])
        phi = max(hidden2, 0.0) / two["overlap"]["compute_ms_max"]
        t2 = ring(2, n, alpha, beta)
        phis[rate] = (phi, hidden2 / (1e3 * t2), share)
        for r in runs:
            if r["ranks"] < 2:
                continue
            t = ring(r["ranks"], n, alpha, beta)
            comm = t if r["allreduce"] == "flat" else overlap_exposed(t, share, phi, 1e-3 * r["compute_ms_max"])
            pred = r["compute_ms_max"] + r["io_ms"] + 1e3 * comm
            err = (pred - r["step_ms"]) / r["step_ms"]
            worst = max(worst, abs(err))
            rows.append((rate, r["ranks"], r["scaling"], r["allreduce"], r["compute_ms_max"], 1e3 * comm, r["step_ms"],
                         pred, err))
    print("step time: measured on emulated hosts against the model (compute measured, communication from the fit)")
    print("%-8s %5s %-6s %-8s %10s %10s %10s %10s %8s" % ("links", "ranks", "kind", "allred.", "compute", "comm(mod.)",
                                                         "measured", "predicted", "error"))
    for rate, P, kind, mode, comp, comm, meas, pred, err in sorted(rows, key=lambda t: (rate_mbit(t[0]), t[2], t[3], t[1])):
        print("%-8s %5d %-6s %-8s %7.0f ms %7.0f ms %7.0f ms %7.0f ms %+7.1f%%" % (rate, P, kind, mode, comp, comm,
                                                                                meas, pred, 100 * err))
    for rate in sorted(phis, key=rate_mbit):
        phi, h, share = phis[rate]
        print("on 2 hosts at %s overlap hid %.0f%% of the gradient allreduce: phi = %.3f of the compute"
              " (at most %.0f%% of the gradient can hide)" % (rate, 100 * h, phi, 100 * share))
    print("largest error %.1f%% (tolerance %.0f%%): %s" % (100 * worst, 100 * a.tolerance,
                                                         "the model holds" if worst <= a.tolerance else "NOT within"))
    return 0 if worst <= a.tolerance else 1


def cmd_project(a):
    fit = load(a.fit)
    compute = {}
    for item in a.compute:
        name, _, ms = item.rpartition("=")
        try:
            compute[name] = float(ms) * 1e-3
        except ValueError:
            fail("--compute takes MODEL=MS, e.g. 'lstm 2x512=520', got %r" % item)
    if not compute:
        fail("give the compute time per step of at least one model: --compute 'lstm 2x512=520'")
    print("weak scaling, projected: step = compute + exposed; flat: exposed = T_ring(P, n); overlap: exposed =")
    print("T_ring(P, n) - min(s·T_ring, %.3f·compute), s = the gradient's share outside the last two buckets;" % a.phi)
    print("both + 2·T_tree(P, 8 B), the loss's and the stop flag's allreduces, T_tree = 2·log2(P)·(alpha + n/beta)")
    print("fabrics (from their specifications, not measured here):")
    for name, beta, alpha, most in FABRICS:
        print("  %-28s beta %6.3g GB/s, alpha %4.1f us%s" % (name, beta * 1e-9, alpha * 1e6,
                                                             ", up to %d ranks" % most if most else ""))
    rows = []
    for model, c in compute.items():
        n = fit["gradient_bytes"].get(model)
        if n is None:
            fail("no gradient size for %s in %s (measured: %s)" % (model, a.fit, ", ".join(fit["gradient_bytes"])))
        print()
        share = hideable(fit, model)
        print("%s: %.1f MB of gradient (%.0f%% can hide), compute %.0f ms per step" % (model, n / 1e6, 100 * share,
                                                                                   1e3 * c))
        print("  %-28s %5s %10s %11s %7s %11s %7s  %s" % ("fabric", "ranks", "allreduce", "flat: exp.", "eff.",
                                                         "overlap: exp.", "eff.", ""))
        for name, beta, alpha, most in FABRICS:
            below90 = {}
            for P in [2 ** k for k in range(1, 10)]:
                if most and P > most:
                    break
                t = ring(P, n, alpha, beta)
                small = 2 * tree(P, SMALL, alpha, beta)
                exp = {"flat": t + small, "overlap": overlap_exposed(t, share, a.phi, c) + small}
                eff = {m: c / (c + e) for m, e in exp.items()}
                for m in eff:
                    if eff[m] < 0.9 and m not in below90:
                        below90[m] = P
                if P in a.ranks:
                    e_o = exp["overlap"]
                    bound = "compute-bound" if e_o < 0.1 * (c + e_o) else "communication-bound" if e_o > c else ""
                    print("  %-28s %5d %7.1f ms %8.1f ms %6.1f%% %8.1f ms %6.1f%%  %s" % (
                        name, P, 1e3 * t, 1e3 * exp["flat"], 100 * eff["flat"], 1e3 * e_o, 100 * eff["overlap"], bound))
                    rows.append({"model": model, "fabric": name, "ranks": P, "allreduce_ms": 1e3 * t,
                                 "exposed_ms_flat": 1e3 * exp["flat"], "efficiency_flat": eff["flat"],
                                 "exposed_ms_overlap": 1e3 * e_o, "efficiency_overlap": eff["overlap"]})
            P = min(512, most or 512)
            t, small = ring(P, n, alpha, beta), 2 * tree(P, SMALL, alpha, beta)
            # the least compute c with c / (c + exposed(c)) >= 0.9: with s·T hidden if that leaves
            # c >= s·T/φ, else with φ·c hidden
            need = 9 * ((1 - share) * t + small)
            if a.phi <= 0 or need < share * t / a.phi:
                need = 9 * (t + small) / (1 + 9 * a.phi)
            print("  %-28s under 90%%: flat from %s, overlap from %s; 90%% with overlap at %d ranks needs >= %.1f ms"
                  " of compute per step" % (name, below90.get("flat", "never (<= %d)" % P),
                                            below90.get("overlap", "never (<= %d)" % P), P, 1e3 * need))
    if a.val_tokens > 0:
        # validation: a full pass over the split every K iterations, in weak scaling (B per rank):
        # N = P·B streams, val_tokens/(N·S) batches, each a forward over B streams per rank
        # (val_ratio of a training step's compute); before the ranks shared it, rank 0 ran every
        # batch over all N streams alone, P times the work, while the others waited
        print()
        print("validation, a full pass over %.0f M tokens every %d iterations, B = %d per rank, S = %d, a forward"
              " batch %.2f of a training step:" % (a.val_tokens / 1e6, a.val_every, a.batch, a.seq, a.val_ratio))
        print("  %5s %10s %22s %22s" % ("ranks", "batches", "shared: of train time", "rank 0 alone: of it"))
        for P in sorted(set([1] + list(a.ranks))):
            batches = a.val_tokens / (P * a.batch * a.seq)
            shared = batches * a.val_ratio / a.val_every
            print("  %5d %10.0f %21.1f%% %21.1f%%" % (P, batches, 100 * shared, 100 * shared * P))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"phi": a.phi, "compute_s": compute, "fabrics": [
                {"name": n, "beta_bytes_per_s": b, "alpha_s": al, "max_ranks": m} for n, b, al, m in FABRICS],
                "points": rows}, f, indent=1)
            f.write("\n")


def main():
    ap = argparse.ArgumentParser(description="fit, check and project crnn's communication model")
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fit")
    f.add_argument("links", nargs="+")
    f.add_argument("--json")
    f.add_argument("--min_bytes", type=float, default=1e6)
    v = sub.add_parser("validate")
    v.add_argument("fit")
    v.add_argument("scaling", nargs="+")
    v.add_argument("--tolerance", type=float, default=0.15)
    p = sub.add_parser("project")
    p.add_argument("fit")
    p.add_argument("--compute", action="append", default=[])
    p.add_argument("--phi", type=float, default=0.0,
                   help="the share of compute overlap hides communication behind (validate measures it)")
    p.add_argument("--ranks", type=int, nargs="+", default=[8, 64, 512])
    p.add_argument("--val_tokens", type=float, default=0, help="the validation split's tokens (0: no validation table)")
    p.add_argument("--val_every", type=int, default=1000, help="iterations between validations (-checkpoint_every)")
    p.add_argument("--val_ratio", type=float, default=1 / 3,
                   help="a validation batch's time over a training step's (forward only: about 1/3)")
    p.add_argument("--batch", type=int, default=50, help="-batch_size per rank")
    p.add_argument("--seq", type=int, default=50, help="-seq_length")
    p.add_argument("--json")
    a = ap.parse_args()
    if a.cmd == "fit":
        cmd_fit(a)
    elif a.cmd == "validate":
        sys.exit(cmd_validate(a))
    else:
        cmd_project(a)


if __name__ == "__main__":
    main()
