#!/usr/bin/env bash
# Validation spread over the ranks: the validation's wall time (the metrics' val_seconds) of one
# rank evaluating all 50 streams of the validation view (what rank 0 did alone before the ranks
# shared it) against 2 ranks evaluating 25 each, 1 thread per rank, torch-rnn's default 2x128
# model, tiny-shakespeare with a 10% validation split; 3 validations a run, best of ROUNDS runs
# of each, interleaved.
#
#   CRNN_CORPUS=data/tinyshakespeare/input.txt benchmarks/validation_ranks.sh     # ROUNDS=3
# The text: CRNN_CORPUS (or TEXT; benchmarks/lib.sh).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_bin "" crnn-preprocess crnn-train
rounds=${ROUNDS:-3}
bench_corpus "${TEXT:-}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
bench_preprocess "$corpus" "$work/d" --val_frac 0.1 --test_frac 0
args=(-input_h5 "$work/d.h5" -input_json "$work/d.json" -gpu -1 -max_iters 3 -checkpoint_every 1 -print_every 0 -quiet 1)
for r in $(seq "$rounds"); do
  "$bin/crnn-train" "${args[@]}" -batch_size 50 -checkpoint_name "$work/one$r"
  mpirun -np 2 --bind-to core -x OPENBLAS_NUM_THREADS "$bin/crnn-train" "${args[@]}" -batch_size 25 -checkpoint_name "$work/two$r"
done
python3 - "$work" "$rounds" <<'PY'
import json, sys
work, rounds = sys.argv[1], int(sys.argv[2])
def times(name):
    out = []
    for r in range(1, rounds + 1):
        with open(f"{work}/{name}{r}_metrics.jsonl") as f:
            out += [x["val_seconds"] for x in map(json.loads, f) if x["type"] == "val"]
    return out
one, two = times("one"), times("two")
print("1 rank x 50 streams: best %.3f s of %d validations" % (min(one), len(one)))
print("2 ranks x 25 streams: best %.3f s of %d validations" % (min(two), len(two)))
print("2 ranks take %.2f of 1 rank's time" % (min(two) / min(one)))
PY
