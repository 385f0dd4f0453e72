#!/usr/bin/env python3
"""benchmarks/scaling.sh's report: reads each run's crnn-train metrics file, prints a table per
scaling kind and writes the results as one JSON document (what crnn-plot draws).

    scaling_report.py --out FILE.json --model "lstm 2x512" --seq_length 50 --iterations 30 \\
        --warmup 10 --launcher TEXT  KIND:ALLREDUCE:RANKS:BATCH:NODES:PREFIX ...

PREFIX is the run's -checkpoint_name: its metrics are PREFIX_metrics.jsonl, one "train" record
every WARMUP iterations with chars_per_s over that window and each rank's seconds per step split
into compute, comm and io. The first window is warm-up; the rest are measured.

The JSON document:
    {"benchmark": "scaling", "model", "seq_length", "iterations", "warmup", "launcher", "machine",
     "command", "runs": [{"scaling": "weak"|"strong", "allreduce": "flat"|"overlap", "ranks", "nodes",
       "batch_per_rank", "global_batch", "chars_per_s", "step_ms", "compute_ms", "comm_ms", "io_ms",
       "compute_ms_max", "comm_ms_min", "efficiency"}]}
step_ms is the global batch's characters over chars/s; compute_ms, comm_ms and io_ms are each the
mean over ranks and measured windows of a rank's time per step in that part; compute_ms_max is the
slowest rank's compute (the others wait for it in comm), comm_ms_min the least any rank waited.
efficiency = chars_per_s / (ranks / ranks0 * chars_per_s0) against the run of the same scaling
and allreduce with the fewest ranks (ranks0): 1 is perfect scaling.
"""
import argparse
import json
import os
import platform
import socket
import sys


def fail(msg):
    print("scaling_report.py: " + msg, file=sys.stderr)
    sys.exit(1)


def machine():
    model = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%s, %s, %d CPUs visible" % (socket.gethostname(), model, os.cpu_count() or 0)


def read_run(spec, seq_length, warmup):
    try:
        kind, mode, ranks, batch, nodes, prefix = spec.split(":", 5)
        ranks, batch, nodes = int(ranks), int(batch), int(nodes)
    except ValueError:
        fail("a run reads KIND:ALLREDUCE:RANKS:BATCH:NODES:PREFIX, got %r" % spec)
    path = prefix + "_metrics.jsonl"
    records = []
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    r = json.loads(line)
                    if r.get("type") == "train" and r.get("iteration", 0) > warmup:
                        records.append(r)
    except (OSError, ValueError) as e:
        fail("cannot read the metrics of the %s, %s, %d-rank run, %s: %s" % (kind, mode, ranks, path, e))
    if not records:
        fail("%s has no train record after the warm-up (iteration > %d): did the run end early?" % (path, warmup))
    global_batch = ranks * batch
    chars = global_batch * seq_length
    # the windows are of equal length: chars/s over all of them is the harmonic mean
    cps = len(records) / sum(1.0 / r["chars_per_s"] for r in records)

    def mean(part, reduce=None):
        vals = []
        for r in records:
            per_rank = [v for v in r["time"][part] if v is not None]
            if reduce:
                vals.append(reduce(per_rank))
            else:
                vals.extend(per_rank)
        return 1e3 * sum(vals) / len(vals)

    return {"scaling": kind, "allreduce": mode, "ranks": ranks, "nodes": nodes, "batch_per_rank": batch,
            "global_batch": global_batch, "chars_per_s": round(cps, 1), "step_ms": round(1e3 * chars / cps, 2),
            "compute_ms": round(mean("compute"), 2), "comm_ms": round(mean("comm"), 2), "io_ms": round(mean("io"), 3),
            "compute_ms_max": round(mean("compute", max), 2), "comm_ms_min": round(mean("comm", min), 2)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--seq_length", type=int, required=True)
    ap.add_argument("--iterations", type=int, required=True)
    ap.add_argument("--warmup", type=int, required=True)
    ap.add_argument("--launcher", required=True)
    ap.add_argument("runs", nargs="+")
    a = ap.parse_args()
    runs = [read_run(spec, a.seq_length, a.warmup) for spec in a.runs]
    for r in runs:
        base = min((q for q in runs if q["scaling"] == r["scaling"] and q["allreduce"] == r["allreduce"]),
                   key=lambda q: q["ranks"])
        r["efficiency"] = round(r["chars_per_s"] / (r["ranks"] / base["ranks"] * base["chars_per_s"]), 4)
    doc = {"benchmark": "scaling", "model": a.model, "seq_length": a.seq_length, "iterations": a.iterations,
           "warmup": a.warmup, "launcher": a.launcher, "machine": machine(),
           "command": os.environ.get("SCALING_COMMAND", "benchmarks/scaling.sh"), "runs": runs}
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    os.replace(tmp, a.out)

    print("%s, S=%d, %d iterations (the first %d left out); %s" % (a.model, a.seq_length, a.iterations, a.warmup,
                                                                  a.launcher))
    print("machine: %s" % doc["machine"])
    for kind in ("weak", "strong"):
        rows = [r for r in runs if r["scaling"] == kind]
        if not rows:
            continue
        print()
        print("%s scaling (%s)" % (kind, "B per rank fixed" if kind == "weak" else "P*B fixed"))
        print("%5s %5s %5s %-8s %10s %9s %9s %9s %8s %6s" % ("ranks", "nodes", "B", "allred.", "chars/s", "step ms",
                                                           "compute", "comm", "io", "eff."))
        for r in sorted(rows, key=lambda q: (q["allreduce"], q["ranks"])):
            print("%5d %5d %5d %-8s %10.0f %9.1f %9.1f %9.1f %8.2f %5.0f%%" % (
                r["ranks"], r["nodes"], r["batch_per_rank"], r["allreduce"], r["chars_per_s"], r["step_ms"],
                r["compute_ms"], r["comm_ms"], r["io_ms"], 100 * r["efficiency"]))


if __name__ == "__main__":
    main()
