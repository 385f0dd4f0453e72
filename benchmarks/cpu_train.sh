#!/usr/bin/env bash
# CPU training speed and memory: crnn-train vs the PyTorch char-rnn of the same model
# (benchmarks/torch_charrnn.py), side by side on tiny-shakespeare, B=50, S=50, wordvec 64.
#
#   CRNN_CORPUS=data/tinyshakespeare/input.txt benchmarks/cpu_train.sh [BUILD_DIR]
#
# BUILD_DIR (or $CRNN_BIN; default ./build) holds crnn-preprocess and crnn-train; CRNN_CORPUS
# is the text (benchmarks/lib.sh).
# Environment: ITERS_128 (default 60), ITERS_512 (20): timed iterations per model;
# WARMUP (5): untimed PyTorch iterations first; PYTHON (/usr/bin/python3).
# crnn-train runs as a user runs it by default (its own thread choice: OPENBLAS_NUM_THREADS and
# OMP_NUM_THREADS are unset); PyTorch runs at 1 and 2 threads. crnn's ms/iter and chars/s are
# its own `done:` line (training steps only); PyTorch's exclude its warm-up. Peak RSS comes
# from /usr/bin/time -v for every run (apt-get install -y time).
# Prints a markdown table and, per model, crnn's time over the best PyTorch time.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/lib.sh"
bench_bin "${1:-}" crnn-preprocess crnn-train
BIN=$bin
bench_corpus
PYTHON="${PYTHON:-/usr/bin/python3}"
ITERS_128="${ITERS_128:-60}"
ITERS_512="${ITERS_512:-20}"
WARMUP="${WARMUP:-5}"

[ -x /usr/bin/time ] || { echo "cpu_train.sh: needs /usr/bin/time (apt-get install -y time)" >&2; exit 1; }

# the kernel crnn-train picks when OpenBLAS does not know the processor (src/run/runtime.c)
if grep -qw avx512f /proc/cpuinfo; then KERNEL=SkylakeX; elif grep -qw avx2 /proc/cpuinfo; then KERNEL=Haswell; else KERNEL=""; fi

TMP="$(mktemp -d /tmp/crnn-bench.XXXXXX)"
trap 'rm -rf "$TMP"' EXIT
bench_preprocess "$corpus" "$TMP/ts"

rss_mb() {  # peak RSS in MB from a /usr/bin/time -v log
  awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2 / 1024}' "$1"
}

ROWS=()
RATIOS=()
echo "machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p'); $(date -u +%Y-%m-%dT%H:%MZ)"
for H in 128 512; do
  if [ "$H" = 128 ]; then N="$ITERS_128"; else N="$ITERS_512"; fi
  cmd=("$BIN/crnn-train" -input_h5 "$TMP/ts.h5" -input_json "$TMP/ts.json" -rnn_size "$H"
       -num_layers 2 -max_iters "$N" -checkpoint_every 0 -checkpoint_name "$TMP/cv/ck" -gpu -1)
  echo "\$ ${cmd[*]}"
  env -u OPENBLAS_NUM_THREADS -u OMP_NUM_THREADS /usr/bin/time -v -o "$TMP/time.log" \
      "${cmd[@]}" > "$TMP/crnn.log" 2>&1 || { tail -20 "$TMP/crnn.log"; exit 1; }
  done_line="$(grep -E '^done: ' "$TMP/crnn.log" | tail -1)"
  [ -n "$done_line" ] || { echo "no 'done:' line from crnn-train:"; tail -20 "$TMP/crnn.log"; exit 1; }
  echo "  $done_line"
  c_ms="$(sed -E 's/.* ([0-9.]+) ms\/iter.*/\1/' <<<"$done_line")"
  c_cps="$(sed -E 's/.* ([0-9.]+) chars\/s.*/\1/' <<<"$done_line")"
  ROWS+=("| 2x$H | crnn | default | $c_ms | $c_cps | $(rss_mb "$TMP/time.log") |")
  # and data-parallel: mpirun -np 2, 25 streams per rank (the same global batch of 50)
  mcmd=(mpirun --oversubscribe -np 2 "${cmd[@]}" -batch_size 25)
  echo "\$ ${mcmd[*]}"
  env -u OPENBLAS_NUM_THREADS -u OMP_NUM_THREADS OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
      /usr/bin/time -v -o "$TMP/time.log" "${mcmd[@]}" > "$TMP/crnn.log" 2>&1 || { tail -20 "$TMP/crnn.log"; exit 1; }
  mdone="$(grep -E '^done: ' "$TMP/crnn.log" | tail -1)"
  echo "  $mdone"
  ROWS+=("| 2x$H | crnn, mpirun -np 2 x B=25 | 1 per rank | $(sed -E 's/.* ([0-9.]+) ms\/iter.*/\1/' <<<"$mdone") | $(sed -E 's/.* ([0-9.]+) chars\/s.*/\1/' <<<"$mdone") | n/a (ranks) |")
  best=""
  # PyTorch links the same OpenBLAS; it runs as a user runs it (default) and, to be fair, also
  # with the OpenBLAS kernel that crnn picks for itself on this processor (README, NOTES.md)
  for CT in default $KERNEL; do
  for T in 1 2; do
    pcmd=("$PYTHON" "$HERE/torch_charrnn.py" --input_h5 "$TMP/ts.h5" --input_json "$TMP/ts.json"
          --rnn_size "$H" --num_layers 2 --iters "$N" --warmup "$WARMUP" --threads "$T")
    echo "\$ ${pcmd[*]}"
    if [ "$CT" = default ]; then envset=(env -u OPENBLAS_CORETYPE); else envset=(env OPENBLAS_CORETYPE="$CT"); fi
    echo "  (OpenBLAS kernel: $CT)"
    "${envset[@]}" /usr/bin/time -v -o "$TMP/time.log" "${pcmd[@]}" > "$TMP/torch.log" 2>&1 \
      || { tail -20 "$TMP/torch.log"; exit 1; }
    line="$(grep '^RESULT' "$TMP/torch.log")"
    echo "  $line"
    p_ms="$(sed -E 's/.*ms_per_iter=([0-9.]+).*/\1/' <<<"$line")"
    p_cps="$(sed -E 's/.*chars_per_s=([0-9.]+).*/\1/' <<<"$line")"
    ROWS+=("| 2x$H | PyTorch $("$PYTHON" -c 'import torch;print(torch.__version__)'), OpenBLAS $CT | $T | $p_ms | $p_cps | $(rss_mb "$TMP/time.log") |")
    if [ -z "$best" ] || awk -v a="$p_ms" -v b="$best" 'BEGIN{exit !(a < b)}'; then best="$p_ms"; fi
  done
  done
  RATIOS+=("2x$H: crnn ms/iter / best PyTorch ms/iter = $(awk -v a="$c_ms" -v b="$best" 'BEGIN{printf "%.2f (crnn %.2fx the speed of PyTorch)", a/b, b/a}')")
done

echo
echo "tiny-shakespeare, LSTM, wordvec 64, batch 50, seq 50, CPU float32"
echo
echo "| model | implementation | threads | ms/iter | chars/s | peak RSS (MB) |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
echo
printf '%s\n' "${RATIOS[@]}"
