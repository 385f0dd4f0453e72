#!/usr/bin/env python3
"""benchmarks/big_corpus.sh's table: reads its work folder (GNU time's files, the runs' metrics
and logs, the data file's splits) and prints every step's wall time and peak memory, and each
training rank's peak memory beside its shard.

    big_corpus_report.py WORK KIND ITERS VAL_BATCHES MODEL"""
import json
import os
import re
import sys


def main():
    work, kind, iters, model = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[5]

    def tm(name):
        with open(os.path.join(work, name + ".time")) as f:
            wall, kb = f.read().split()[-2:]
        return float(wall), int(kb) / 1024.0

    def metrics(run):
        with open(os.path.join(work, run, "ck_metrics.jsonl")) as f:
            return [json.loads(line) for line in f]

    with open(os.path.join(work, "d.json")) as f:
        vocab = len(json.load(f)["idx_to_token"])
    elem = 1 if vocab <= 255 else 4
    sizes = {}
    try:
        import h5py
        with h5py.File(os.path.join(work, "d.h5")) as f:
            sizes = {k: int(f[k].shape[0]) for k in ("train", "val", "test")}
    except ImportError:  # the training log's count of training tokens, and no split sizes
        pass
    log1 = open(os.path.join(work, "train1.log")).read()
    m = re.search(r"(\d+) parameters; (\d+) training tokens", log1)
    params, train_tokens = int(m.group(1)), int(m.group(2))
    total = sum(sizes.values()) if sizes else train_tokens
    print("corpus: %s, %d tokens (%s, vocabulary %d), %.1f MB as tokens; train %d, val %s, test %s" % (
        kind, total, "uint8" if elem == 1 else "uint32", vocab, total * elem / 1e6, train_tokens,
        sizes.get("val", "?"), sizes.get("test", "?")))
    print("model: %s, %d parameters (%.1f MB of parameters; with gradients and Adam's two"
          " moments %.1f MB)" % (model, params, params * 4 / 1e6, params * 16 / 1e6))
    print("a crnn-train process with no data (crnn-train --help: its libraries) peaks at %.0f MB" % tm("baseline")[1])
    print()
    print("| step | ranks | wall | peak memory per rank | rank's shard | detail |")
    print("|---|---|---|---|---|---|")
    w, mb = tm("preprocess")
    print("| crnn-preprocess | 1 | %.1f s | %.0f MB | | %.0f MB/s of tokens |" % (w, mb, total * elem / 1e6 / w))

    def shard(P):
        val = sizes.get("val", 0)
        return (train_tokens + val) / P * elem / 1e6

    for name, run, P, what in (("train1", "one", 1, "%d iterations" % iters), ("train2", "two", 2, "%d iterations" % iters),
                               ("resume2", "two", 2, "-resume auto, %d more" % (iters // 2))):
        recs = metrics(run)
        if name == "resume2":
            start = [r for r in recs if r["type"] == "start"][-1]
        else:
            start = [r for r in recs if r["type"] == "start"][0]
        lo = start["iteration"]
        hi = lo + (iters if name != "resume2" else iters // 2)
        train = [r for r in recs if r["type"] == "train" and lo < r["iteration"] <= hi]
        val = [r for r in recs if r["type"] == "val" and lo < r["iteration"] <= hi]
        ck = [r for r in recs if r["type"] == "checkpoint" and lo < r["iteration"] <= hi]
        step = [50 * 50 / r["chars_per_s"] for r in train]  # P·B = 50 streams of S = 50
        ranks = [tm("%s.rank%d" % (name, k)) for k in range(P)]
        detail = ("start-up %.1f s; %.0f ms a step (the last window); validation %s s (%d of %d batches); checkpoint %s s"
                  % (start["seconds"], 1e3 * step[-1], "/".join("%.1f" % r["val_seconds"] for r in val),
                     val[0]["val_batches"], val[0]["val_batches_total"], "/".join("%.2f" % r["seconds"] for r in ck)))
        print("| crnn-train (%s) | %d | %.1f s | %s | %.0f MB | %s |" % (
            what, P, max(r[0] for r in ranks), " / ".join("%.0f MB" % r[1] for r in ranks), shard(P), detail))
    w, mb = tm("sample")
    print("| crnn-sample (2,000 characters) | 1 | %.1f s | %.0f MB | | |" % (w, mb))
    ev = [tm("eval2.rank%d" % k) for k in range(2)]
    out = open(os.path.join(work, "eval2.log")).read()
    loss = re.search(r"test loss = (\S+)", out)
    print("| crnn-eval (test split) | 2 | %.1f s | %s | | test loss %s |" % (
        max(r[0] for r in ev), " / ".join("%.0f MB" % r[1] for r in ev), loss.group(1) if loss else "?"))


if __name__ == "__main__":
    main()
