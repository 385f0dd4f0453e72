#!/usr/bin/env bash
# Sampling speed on one core: crnn-sample against a PyTorch sampling loop of the same model
# (benchmarks/torch_sample.py), one sample of a 2x512 LSTM (tiny-shakespeare's vocabulary).
#   CRNN_CORPUS=data/tinyshakespeare/input.txt benchmarks/sample_speed.sh [BUILD_DIR]
# (CRNN_CORPUS: the text whose vocabulary the model has; benchmarks/lib.sh)
# chars/s = (2000 - 200) / (time for -length 2000 - time for -length 200), so start-up and
# loading cancel out; best of 3 each. Both are pinned to one core (taskset) with one thread.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/lib.sh"
bench_bin "${1:-}" crnn-preprocess crnn-train crnn-sample
BIN=$bin
bench_corpus
PYTHON="${PYTHON:-/usr/bin/python3}"
TMP="$(mktemp -d /tmp/crnn-sample.XXXXXX)"
trap 'rm -rf "$TMP"' EXIT
bench_preprocess "$corpus" "$TMP/ts"
"$BIN/crnn-train" -input_h5 "$TMP/ts.h5" -input_json "$TMP/ts.json" -rnn_size 512 -num_layers 2 \
  -max_iters 2 -checkpoint_every 0 -checkpoint_name "$TMP/ck" -gpu -1 -quiet 1
CK="$TMP/ck_2.h5"
best() {  # best wall time of 3 runs of the command, in seconds
  local b=""
  for _ in 1 2 3; do
    local s e
    s=$(date +%s.%N); "$@" > /dev/null; e=$(date +%s.%N)
    b=$(awk -v b="$b" -v t="$(awk -v s="$s" -v e="$e" 'BEGIN{print e-s}')" 'BEGIN{print (b=="" || t<b) ? t : b}')
  done
  echo "$b"
}
CPUS=$(nproc)
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
c_long=$(best taskset -c 0 "$BIN/crnn-sample" -checkpoint "$CK" -length 2000 -gpu -1)
c_short=$(best taskset -c 0 "$BIN/crnn-sample" -checkpoint "$CK" -length 200 -gpu -1)
p_long=$(best taskset -c 0 "$PYTHON" "$HERE/torch_sample.py" "$CK" 2000)
p_short=$(best taskset -c 0 "$PYTHON" "$HERE/torch_sample.py" "$CK" 200)
# PyTorch links the same OpenBLAS: also with the kernel crnn picks for itself (README)
if grep -qw avx512f /proc/cpuinfo; then K=SkylakeX; else K=Haswell; fi
t_long=$(OPENBLAS_CORETYPE=$K best taskset -c 0 "$PYTHON" "$HERE/torch_sample.py" "$CK" 2000)
t_short=$(OPENBLAS_CORETYPE=$K best taskset -c 0 "$PYTHON" "$HERE/torch_sample.py" "$CK" 200)
echo "machine: $CPUS CPUs, $(lscpu | sed -n 's/^Model name: *//p'); $(date -u +%Y-%m-%dT%H:%MZ); one core, one thread"
awk -v cl="$c_long" -v cs="$c_short" -v pl="$p_long" -v ps="$p_short" -v tl="$t_long" -v ts="$t_short" -v k="$K" 'BEGIN{
  c = 1800 / (cl - cs); p = 1800 / (pl - ps); t = 1800 / (tl - ts);
  printf "| implementation | chars/s (2x512 LSTM, one sample) |\n|---|---|\n";
  printf "| crnn-sample | %.0f |\n| PyTorch loop (torch_sample.py), OpenBLAS default | %.0f |\n", c, p;
  printf "| PyTorch loop, OPENBLAS_CORETYPE=%s | %.0f |\n", k, t;
  printf "\ncrnn / PyTorch = %.2fx (default), %.2fx (%s)\n", c / p, c / t, k }'
