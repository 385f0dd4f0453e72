#!/usr/bin/env bash
# CPU training speed and memory: crnn-train against oneDNN's RNN primitives (the recurrent layers
# of the same model, benchmarks/onednn_peer.c) and PyTorch (the whole char-rnn,
# benchmarks/torch_charrnn.py), on 1 and 2 cores, for LSTM 2x128, 2x512 and 3x1024 (B=50, S=50,
# wordvec 64) on tiny-shakespeare (issue 17's targets: crnn's step no slower than oneDNN's at 1
# and 2 cores; crnn as one process with 2 threads within 1.1x of oneDNN's 2 threads).
#
#   CRNN_CORPUS=data/tinyshakespeare/input.txt benchmarks/cpu_train.sh [BUILD_DIR]
#
# BUILD_DIR (or $CRNN_BIN; default ./build) holds crnn-preprocess and crnn-train; CRNN_CORPUS
# is the text (benchmarks/lib.sh). The oneDNN peer is compiled into the temporary folder with
# $CC (default cc) -O2 -fopenmp ... -ldnnl (Debian's libdnnl-dev; without it the oneDNN rows are
# left out, saying so).
#
# What runs, per model, in each round:
#   1 core:  crnn-train with OPENBLAS_NUM_THREADS=1; onednn_peer with OMP_NUM_THREADS=1;
#            PyTorch with 1 thread
#   2 cores: crnn-train under mpirun -np 2 (-batch_size 25 per rank, 1 thread each: the same
#            global batch of 50); crnn-train as one process with OPENBLAS_NUM_THREADS=2;
#            onednn_peer with OMP_NUM_THREADS=2, as it comes and with OMP_WAIT_POLICY=passive
#            (oneDNN meets its OpenMP threads at barriers several times a time step; with
#            libgomp's default spinning, a machine that has other work makes every barrier
#            wait for a time slice: 2x128 took 4.2 s a step instead of 66 ms while others'
#            jobs ran here); PyTorch with 2 threads
# then each model of BF16_MODELS with crnn-train -precision bf16 (1 core, mpirun -np 2, 2 threads)
# and onednn_peer --dt bf16 (1 and 2 threads: bf16 data and weights, float32 gradients, oneDNN
# 2.6's rule), and, with CELLS=1, GRU and tanh RNN 2x512 on 1 core (crnn -model_type gru / rnn
# against oneDNN's linear-before-reset GRU, PyTorch's equations, and vanilla RNN). Round r runs every
# configuration once, then round r+1; the table gives each configuration's best round, with every
# round's figure beside it.
#
# Times: crnn's ms/iter is the mean of its own per-step lines (-print_every 1: chars/s of that
# step) after its warm-up steps, a whole training step (embedding, recurrent layers, decoder,
# softmax, the allreduce under mpirun, Adam); oneDNN's is its RESULT line's ms_per_step, the
# recurrent layers alone (forward and backward with the weight reorders, no decoder, no
# optimizer), so the ratio crnn / oneDNN is conservative for crnn; PyTorch's is its whole
# step after its warm-up. Peak RSS from /usr/bin/time -v (apt-get install -y time); under
# mpirun it is the largest single process (a rank), not the sum.
#
# Environment:
#   ROUNDS (3)                       interleaved rounds; each configuration's best is reported
#   MODELS ("2x128 2x512 3x1024")    LAYERSxHIDDEN, LSTM
#   ITERS_128 (20), ITERS_512 (8), ITERS_1024 (6)
#                                    timed steps of crnn and oneDNN per model (another HIDDEN:
#                                    ITERS_<HIDDEN>, default 10)
#   WARMUP_128 (3), WARMUP_512 (2), WARMUP_1024 (1)
#                                    untimed steps before them
#   TORCH (1)                        0: no PyTorch rows
#   TORCH_ROUNDS (1)                 rounds that run PyTorch (the first ones): it is 2-10x slower
#                                    than both and much slower again with 2 threads, so one round
#                                    places it and more would cost most of the run
#   TORCH_ITERS_128 (5), TORCH_ITERS_512 (2), TORCH_ITERS_1024 (1), TORCH_WARMUP (1)
#   CELLS (1)                        0: no GRU / RNN section
#   BF16_MODELS (MODELS)             the models also run with -precision bf16, against oneDNN's
#                                    bf16 LSTM (oneDNN 2.6 has it only with AVX-512); "": none
#   PYTHON (/usr/bin/python3), CC (cc)
# Duration: 26 minutes (1534 s) with these defaults on a 2-core AMD EPYC while other work kept
# its load at 4-6; 7 of them went to oneDNN's 2-thread runs with libgomp's default waiting, which
# idle cores do not suffer. On an idle machine: 627 s (10.5 minutes, 2026-12-04, Zen 3); with the
# bf16 rows, on a Zen 4: 828 s (14 minutes).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/lib.sh"
bench_bin "${1:-}" crnn-preprocess crnn-train
BIN=$bin
bench_corpus
PYTHON="${PYTHON:-/usr/bin/python3}"
CC="${CC:-cc}"
ROUNDS="${ROUNDS:-3}"
MODELS="${MODELS:-2x128 2x512 3x1024}"
TORCH="${TORCH:-1}"
TORCH_ROUNDS="${TORCH_ROUNDS:-1}"
TORCH_WARMUP="${TORCH_WARMUP:-1}"
CELLS="${CELLS:-1}"
BF16_MODELS="${BF16_MODELS-$MODELS}"

posint() {  # posint NAME VALUE [MIN]: VALUE is an integer >= MIN (default 1)
  [[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -ge "${3:-1}" ] || bench_die "$1 must be an integer >= ${3:-1} (got '$2')"
}
posint ROUNDS "$ROUNDS"
posint TORCH_ROUNDS "$TORCH_ROUNDS" 0
posint TORCH_WARMUP "$TORCH_WARMUP" 0
for m in $MODELS $BF16_MODELS; do [[ "$m" =~ ^[1-9][0-9]*x[1-9][0-9]*$ ]] || bench_die "MODELS: '$m' is not LAYERSxHIDDEN"; done

# iters_of KIND HIDDEN: the step count KIND_<HIDDEN> from the environment, or its default
iters_of() {
  local var="$1_$2" def
  case "$1_$2" in
    ITERS_128) def=20 ;; ITERS_512) def=8 ;; ITERS_1024) def=6 ;; ITERS_*) def=10 ;;
    WARMUP_128) def=3 ;; WARMUP_512) def=2 ;; WARMUP_1024) def=1 ;; WARMUP_*) def=2 ;;
    TORCH_ITERS_128) def=5 ;; TORCH_ITERS_512) def=2 ;; TORCH_ITERS_1024) def=1 ;; *) def=3 ;;
  esac
  local v="${!var:-$def}"
  case "$1" in WARMUP) posint "$var" "$v" 0 ;; *) posint "$var" "$v" ;; esac
  echo "$v"
}

for m in $MODELS $BF16_MODELS; do  # every count the models need, checked before anything runs
  for kind in ITERS WARMUP TORCH_ITERS; do v=$(iters_of "$kind" "${m#*x}"); done
done
[ "$CELLS" = 0 ] || v=$(iters_of ITERS 512)

[ -x /usr/bin/time ] || { echo "cpu_train.sh: needs /usr/bin/time (apt-get install -y time)" >&2; exit 1; }
command -v mpirun >/dev/null || bench_die "needs mpirun (Open MPI; launch/deps.sh installs it)"

TMP="$(mktemp -d /tmp/crnn-bench.XXXXXX)"
trap 'rm -rf "$TMP"' EXIT
bench_preprocess "$corpus" "$TMP/ts"

# the oneDNN peer, built here; without oneDNN its rows are left out
ONEDNN=1
if ! "$CC" -O2 -fopenmp "$HERE/onednn_peer.c" -o "$TMP/onednn_peer" -ldnnl -lm 2> "$TMP/cc.log"; then
  if grep -qE 'oneapi/dnnl/dnnl\.h: No such file|cannot find -ldnnl' "$TMP/cc.log"; then
    echo "cpu_train.sh: oneDNN is not installed (apt-get install libdnnl-dev): NO oneDNN ROWS" >&2
    ONEDNN=0
  else
    cat "$TMP/cc.log" >&2
    bench_die "building benchmarks/onednn_peer.c failed"
  fi
fi

# PyTorch links the same OpenBLAS as crnn. Where OpenBLAS does not know the processor and falls
# back to its Prescott kernels, crnn re-executes itself with the kernel it picks (src/run/runtime.c):
# PyTorch then gets the same kernel, to compare the implementations rather than the kernels.
TORCH_ENV=(env)
CORE="$("$PYTHON" -c 'import ctypes; l = ctypes.CDLL("libopenblas.so.0"); l.openblas_get_corename.restype = ctypes.c_char_p; print(l.openblas_get_corename().decode())' 2>/dev/null || echo unknown)"
if [ "${CORE,,}" = prescott ] && [ -z "${OPENBLAS_CORETYPE:-}" ]; then
  if grep -qw avx512f /proc/cpuinfo; then TORCH_ENV=(env OPENBLAS_CORETYPE=SkylakeX)
  elif grep -qw avx2 /proc/cpuinfo; then TORCH_ENV=(env OPENBLAS_CORETYPE=Haswell); fi
fi
TORCH_NAME="PyTorch $("$PYTHON" -c 'import torch; print(torch.__version__)' 2>/dev/null || echo '?')"

rss_mb() {  # peak RSS in MB from a /usr/bin/time -v log
  awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2 / 1024}' "$1"
}

# Results: BEST[key] the best round's ms, RSS[key] its peak RSS, ALL[key] every round's ms
declare -A BEST RSS ALL
record() {  # record KEY MS RSS_MB
  ALL[$1]="${ALL[$1]:+${ALL[$1]} / }$2"
  if [ -z "${BEST[$1]:-}" ] || awk -v a="$2" -v b="${BEST[$1]}" 'BEGIN{exit !(a < b)}'; then
    BEST[$1]=$2
    RSS[$1]=$3
  fi
}

fail_run() {  # fail_run LOG: the end of a failed run's output, and stop
  echo "cpu_train.sh: a run failed; the end of its output:" >&2
  tail -20 "$1" >&2
  exit 1
}

# run_crnn KEY MODEL CELL MODE [FLAG...]: MODE 1t (one thread), mpi (mpirun -np 2, 25 streams a
# rank, one thread each) or 2t (one process, two threads); the flags go to crnn-train
run_crnn() {
  local key=$1 model=$2 cell=$3 mode=$4
  shift 4
  local L=${model%x*} H=${model#*x}
  local n warm
  n=$(iters_of ITERS "$H")
  warm=$(iters_of WARMUP "$H")
  local cmd=("$BIN/crnn-train" -input_h5 "$TMP/ts.h5" -input_json "$TMP/ts.json" -model_type "$cell"
             -num_layers "$L" -rnn_size "$H" -wordvec_size 64 -seq_length 50 -max_iters $((warm + n))
             -print_every 1 -progress plain -checkpoint_every 0 -val_max_batches 1
             -checkpoint_name "$TMP/cv/ck" -gpu -1 "$@")
  local pre=(env OPENBLAS_NUM_THREADS=1)
  case "$mode" in
    1t) cmd+=(-batch_size 50) ;;
    2t) cmd+=(-batch_size 50); pre=(env OPENBLAS_NUM_THREADS=2) ;;
    mpi) cmd=(mpirun --oversubscribe -np 2 "${cmd[@]}" -batch_size 25)
         pre+=(OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1) ;;
  esac
  echo "\$ ${pre[*]:1} ${cmd[*]}"
  "${pre[@]}" /usr/bin/time -v -o "$TMP/time.log" "${cmd[@]}" > "$TMP/run.log" 2>&1 || fail_run "$TMP/run.log"
  rm -rf "$TMP/cv"
  # every step's "i = K / N, loss = X, C chars/s" line; a step is 50 x 50 characters in all
  local ms
  ms=$(awk -v warm="$warm" '
    /i = [0-9]+ \/ [0-9]+, loss = .*, [0-9]+ chars\/s$/ {
      match($0, /i = [0-9]+/); k = substr($0, RSTART + 4, RLENGTH - 4) + 0
      c = $(NF - 1) + 0
      if (k > warm && c > 0) { sum += 2500 * 1000 / c; count++ }
    }
    END { if (count) printf "%.1f", sum / count }' "$TMP/run.log")
  [ -n "$ms" ] || { echo "no per-step lines from crnn-train:" >&2; fail_run "$TMP/run.log"; }
  echo "  $(grep -E '^done: ' "$TMP/run.log" | tail -1); after $warm warm-up steps: $ms ms/iter"
  record "$key" "$ms" "$(rss_mb "$TMP/time.log")"
}

# run_onednn KEY MODEL CELL THREADS [VAR=VALUE...]: the extra settings go into its environment;
# in the data type ONEDNN_DT (f32, or bf16: where oneDNN has no bf16 RNN here, its refusal is
# printed and the row left out)
ONEDNN_DT=f32
run_onednn() {
  local key=$1 model=$2 cell=$3 threads=$4
  shift 4
  local L=${model%x*} H=${model#*x}
  local cmd=("$TMP/onednn_peer" --dt "$ONEDNN_DT" "$cell" "$L" "$H" 64 50 50 "$(iters_of ITERS "$H")" "$(iters_of WARMUP "$H")")
  echo "\$ OMP_NUM_THREADS=$threads${*:+ $*} benchmarks/onednn_peer ${cmd[*]:1}"
  env -u OMP_WAIT_POLICY OMP_NUM_THREADS="$threads" "$@" /usr/bin/time -v -o "$TMP/time.log" "${cmd[@]}" > "$TMP/run.log" 2>&1 \
    || fail_run "$TMP/run.log"
  local line
  line="$(grep '^RESULT' "$TMP/run.log")"
  echo "  $line"
  if [ "$ONEDNN_DT" != f32 ] && grep -q ' status=unimplemented ' <<<"$line"; then return 0; fi
  grep -q ' status=ok ' <<<"$line" || fail_run "$TMP/run.log"
  record "$key" "$(sed -E 's/.* ms_per_step=([0-9.]+).*/\1/' <<<"$line" | awk '{printf "%.1f", $1}')" "$(rss_mb "$TMP/time.log")"
}

# run_torch KEY MODEL THREADS
run_torch() {
  local key=$1 model=$2 threads=$3
  local L=${model%x*} H=${model#*x}
  local cmd=("$PYTHON" "$HERE/torch_charrnn.py" --input_h5 "$TMP/ts.h5" --input_json "$TMP/ts.json"
             --rnn_size "$H" --num_layers "$L" --iters "$(iters_of TORCH_ITERS "$H")" --warmup "$TORCH_WARMUP"
             --threads "$threads")
  echo "\$ ${TORCH_ENV[*]:1} ${cmd[*]}"
  "${TORCH_ENV[@]}" /usr/bin/time -v -o "$TMP/time.log" "${cmd[@]}" > "$TMP/run.log" 2>&1 || fail_run "$TMP/run.log"
  local line
  line="$(grep '^RESULT' "$TMP/run.log")"
  echo "  $line"
  record "$key" "$(sed -E 's/.*ms_per_iter=([0-9.]+).*/\1/' <<<"$line" | awk '{printf "%.1f", $1}')" "$(rss_mb "$TMP/time.log")"
}

echo "machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p'), $(grep -qw avx512f /proc/cpuinfo && echo AVX-512 || { grep -qw avx2 /proc/cpuinfo && echo 'AVX2, no AVX-512' || echo 'no AVX2'; }); OpenBLAS core $CORE; oneDNN $(dpkg-query -W -f='${Version}' libdnnl-dev 2>/dev/null || echo '?'); $TORCH_NAME; $(date -u +%Y-%m-%dT%H:%MZ)"
start=$SECONDS
for ((r = 1; r <= ROUNDS; r++)); do
  echo "== round $r of $ROUNDS"
  for model in $MODELS; do
    run_crnn "$model|1|crnn" "$model" lstm 1t
    if [ "$ONEDNN" = 1 ]; then run_onednn "$model|1|onednn" "$model" lstm 1; fi
    run_crnn "$model|2|crnn-mpi" "$model" lstm mpi
    run_crnn "$model|2|crnn" "$model" lstm 2t
    if [ "$ONEDNN" = 1 ]; then
      run_onednn "$model|2|onednn" "$model" lstm 2
      run_onednn "$model|2|onednn-passive" "$model" lstm 2 OMP_WAIT_POLICY=passive
    fi
    if [ "$TORCH" = 1 ] && [ "$r" -le "$TORCH_ROUNDS" ]; then
      run_torch "$model|1|torch" "$model" 1
      run_torch "$model|2|torch" "$model" 2
    fi
  done
  for model in $BF16_MODELS; do  # -precision bf16 against oneDNN's bf16 LSTM
    run_crnn "$model|1|crnn-bf16" "$model" lstm 1t -precision bf16
    run_crnn "$model|2|crnn-mpi-bf16" "$model" lstm mpi -precision bf16
    run_crnn "$model|2|crnn-bf16" "$model" lstm 2t -precision bf16
    if [ "$ONEDNN" = 1 ]; then
      ONEDNN_DT=bf16
      run_onednn "$model|1|onednn-bf16" "$model" lstm 1
      run_onednn "$model|2|onednn-bf16" "$model" lstm 2
      run_onednn "$model|2|onednn-passive-bf16" "$model" lstm 2 OMP_WAIT_POLICY=passive
      ONEDNN_DT=f32
    fi
  done
  if [ "$CELLS" = 1 ]; then
    for cell in gru rnn; do
      run_crnn "2x512|1|crnn-$cell" 2x512 "$cell" 1t
      if [ "$ONEDNN" = 1 ]; then run_onednn "2x512|1|onednn-$cell" 2x512 "$cell" 1; fi
    done
  fi
done

# row KEY MODEL CORES IMPLEMENTATION THREADS: a table row, if KEY was measured
row() {
  [ -n "${BEST[$1]:-}" ] || return 0
  local cps
  cps=$(awk -v ms="${BEST[$1]}" 'BEGIN{printf "%.0f", 2500 * 1000 / ms}')
  echo "| $2 | $3 | $4 | $5 | ${BEST[$1]} | $cps | ${RSS[$1]} | ${ALL[$1]} |"
}
ratio() {  # ratio KEY_A KEY_B [KEY_C]: A's best over the better of B's and C's, or n/a
  local b="${BEST[$2]:-}" c="${BEST[${3:-none}]:-}"
  if [ -n "$c" ] && { [ -z "$b" ] || awk -v x="$c" -v y="$b" 'BEGIN{exit !(x < y)}'; }; then b=$c; fi
  if [ -n "${BEST[$1]:-}" ] && [ -n "$b" ]; then
    awk -v a="${BEST[$1]}" -v b="$b" 'BEGIN{printf "%.2f", a / b}'
  else
    echo "n/a"
  fi
}

echo
if [ "$TORCH" = 1 ]; then torch_note="PyTorch: the first $TORCH_ROUNDS"; else torch_note="no PyTorch"; fi
echo "tiny-shakespeare, LSTM, wordvec 64, batch 50, seq 50, CPU float32; best of $ROUNDS rounds ($torch_note); $((SECONDS - start)) s"
echo "crnn and PyTorch: a whole training step; oneDNN: the recurrent layers' forward and backward only"
echo
echo "| model | cores | implementation | threads | ms/iter | chars/s | peak RSS (MB) | every round (ms) |"
echo "|---|---|---|---|---|---|---|---|"
for model in $MODELS; do
  row "$model|1|crnn" "$model" 1 crnn 1
  row "$model|1|onednn" "$model" 1 "oneDNN (recurrent layers)" 1
  row "$model|1|torch" "$model" 1 "$TORCH_NAME" 1
  row "$model|2|crnn-mpi" "$model" 2 "crnn, mpirun -np 2, B=25 per rank" "1 per rank"
  row "$model|2|crnn" "$model" 2 crnn 2
  row "$model|2|onednn" "$model" 2 "oneDNN (recurrent layers)" 2
  row "$model|2|onednn-passive" "$model" 2 "oneDNN (recurrent layers), OMP_WAIT_POLICY=passive" 2
  row "$model|2|torch" "$model" 2 "$TORCH_NAME" 2
done
for model in $BF16_MODELS; do
  row "$model|1|crnn-bf16" "$model bf16" 1 "crnn -precision bf16" 1
  row "$model|1|onednn-bf16" "$model bf16" 1 "oneDNN bf16 (recurrent layers)" 1
  row "$model|2|crnn-mpi-bf16" "$model bf16" 2 "crnn -precision bf16, mpirun -np 2, B=25 per rank" "1 per rank"
  row "$model|2|crnn-bf16" "$model bf16" 2 "crnn -precision bf16" 2
  row "$model|2|onednn-bf16" "$model bf16" 2 "oneDNN bf16 (recurrent layers)" 2
  row "$model|2|onednn-passive-bf16" "$model bf16" 2 "oneDNN bf16 (recurrent layers), OMP_WAIT_POLICY=passive" 2
done
if [ "$CELLS" = 1 ]; then
  for cell in gru rnn; do
    row "2x512|1|crnn-$cell" "2x512 $cell" 1 "crnn -model_type $cell" 1
    row "2x512|1|onednn-$cell" "2x512 $cell" 1 "oneDNN (recurrent layers)" 1
  done
fi
echo
echo "crnn ms/iter over oneDNN's (target: <= 1; one process with 2 threads: <= 1.1; oneDNN 2 threads: the"
echo "better of its two wait policies):"
for model in $MODELS; do
  echo "$model, 1 core: crnn 1 thread / oneDNN 1 thread = $(ratio "$model|1|crnn" "$model|1|onednn")"
  echo "$model, 2 cores: crnn mpirun -np 2 / oneDNN 2 threads = $(ratio "$model|2|crnn-mpi" "$model|2|onednn" "$model|2|onednn-passive"); crnn 2 threads / oneDNN 2 threads = $(ratio "$model|2|crnn" "$model|2|onednn" "$model|2|onednn-passive")"
done
for model in $BF16_MODELS; do
  echo "$model, -precision bf16 against float32 (the speed-up; at least 1.3 to be offered): 1 core $(ratio "$model|1|crnn" "$model|1|crnn-bf16"), mpirun -np 2 $(ratio "$model|2|crnn-mpi" "$model|2|crnn-mpi-bf16"), 2 threads $(ratio "$model|2|crnn" "$model|2|crnn-bf16")"
  echo "$model, crnn bf16 / oneDNN bf16: 1 core $(ratio "$model|1|crnn-bf16" "$model|1|onednn-bf16"), mpirun -np 2 $(ratio "$model|2|crnn-mpi-bf16" "$model|2|onednn-bf16" "$model|2|onednn-passive-bf16"), 2 threads $(ratio "$model|2|crnn-bf16" "$model|2|onednn-bf16" "$model|2|onednn-passive-bf16")"
done
if [ "$CELLS" = 1 ]; then
  for cell in gru rnn; do
    echo "2x512 $cell, 1 core: crnn 1 thread / oneDNN 1 thread = $(ratio "2x512|1|crnn-$cell" "2x512|1|onednn-$cell")"
  done
fi
