#!/usr/bin/env bash
# -allreduce overlap against flat across two emulated hosts (tests/cluster/cluster.sh, as root):
# one rank on each host, each on a core of its own with one thread, the 2x512 LSTM, B=25 per
# rank, 25 iterations, the `done:` line's ms/iter. Links unshaped and at RATE; "exposed
# communication" is a mode's ms/iter at RATE minus its ms/iter unshaped (the step without the
# slow link's cost). Three modes: flat (one allreduce after backward), overlap (the buckets
# reduced by crnn's communication thread while backward runs) and overlap with
# CRNN_COMM_THREAD=0 (the buckets only nudged by the main thread, as before the thread).
# Best of ROUNDS rounds; each round runs every mode unshaped and at RATE (the links reshaped in
# place), so that both states see the same machine.
#
#   CRNN_CORPUS=data/tinyshakespeare/input.txt benchmarks/overlap.sh     # RATE=1gbit ROUNDS=3
#   RATE=500mbit ROUNDS=5 CRNN_CORPUS=... benchmarks/overlap.sh
# The text: CRNN_CORPUS (or TEXT; benchmarks/lib.sh), tiny-shakespeare for RESULTS.md.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
root=$bench_root
bench_bin "" crnn-preprocess crnn-train
rate=${RATE:-1gbit}
rounds=${ROUNDS:-3}
iters=${ITERS:-25}
bench_corpus "${TEXT:-}"
work=$(mktemp -d)
cl=$work/cluster
trap '"$root/tests/cluster/cluster.sh" stop "$cl" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
# a small validation split: the run's final validation is not what is measured
bench_preprocess "$corpus" "$work/d" --val_frac 0.01 --test_frac 0.01
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

declare -A best
run() { # run LINK MODE: one measurement, the best kept
  local link=$1 mode=$2 allreduce=$2 thread=1 out ms
  case $mode in overlap-nothread) allreduce=overlap thread=0 ;; esac
  out=$(CRNN_COMM_THREAD=$thread OPENBLAS_NUM_THREADS=1 mpirun --host h1:1,h2:1 -np 2 --bind-to none \
          -x CRNN_COMM_THREAD -x OPENBLAS_NUM_THREADS \
          "$bin/crnn-train" -input_h5 "$work/d.h5" -input_json "$work/d.json" -gpu -1 -rnn_size 512 -num_layers 2 \
          -batch_size 25 -seq_length 50 -max_iters "$iters" -checkpoint_every 0 -print_every "$iters" \
          -allreduce "$allreduce" -checkpoint_name "$work/ck-$mode" 2>&1) ||
    { echo "$out" >&2; echo "overlap.sh: the $mode run failed" >&2; exit 1; }
  ms=$(echo "$out" | sed -n 's/^done: .*, \([0-9.]*\) ms\/iter.*/\1/p')
  [ -n "$ms" ] || { echo "$out" >&2; exit 1; }
  printf '  %-9s %-17s %8.1f ms/iter\n' "$link" "$mode" "$ms"
  local key="$link $mode"
  if [ -z "${best[$key]:-}" ] || awk -v a="$ms" -v b="${best[$key]}" 'BEGIN { exit !(a < b) }'; then best[$key]=$ms; fi
}

modes=(flat overlap overlap-nothread)
"$root/tests/cluster/cluster.sh" start 2 "$cl" >/dev/null
# shellcheck disable=SC1091
. "$cl/env"
for r in $(seq "$rounds"); do
  for link in unshaped "$rate"; do # the links reshaped in place: both states in every round
    if [ "$link" = unshaped ]; then "$root/tests/cluster/cluster.sh" shape "$cl" none
    else "$root/tests/cluster/cluster.sh" shape "$cl" "$rate"; fi
    echo "round $r, $link links:"
    for mode in "${modes[@]}"; do run "$link" "$mode"; done
  done
done

echo
echo "2 emulated hosts x 1 rank, 2x512 LSTM, B=25 per rank, S=50, $iters iterations, 1 thread; best of $rounds"
printf '%-17s %12s %12s %12s\n' mode "unshaped" "$rate" "exposed"
for mode in "${modes[@]}"; do
  u=${best[unshaped $mode]} s=${best[$rate $mode]}
  printf '%-17s %9.1f ms %9.1f ms %9.1f ms\n' "$mode" "$u" "$s" "$(awk -v a="$s" -v b="$u" 'BEGIN { print a - b }')"
done
awk -v f="${best[$rate flat]}" -v fu="${best[unshaped flat]}" -v o="${best[$rate overlap]}" -v ou="${best[unshaped overlap]}" \
  'BEGIN { printf "overlap exposes %.0f%% of flat'"'"'s communication\n", 100 * (o - ou) / (f - fu) }'
