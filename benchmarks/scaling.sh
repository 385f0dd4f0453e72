#!/usr/bin/env bash
# Weak and strong scaling of crnn-train across rank counts, with both gradient allreduces.
# Runs unchanged on this machine (ranks as local processes, or one per emulated host with
# links of a set rate) and inside a Slurm allocation on a real cluster (one `srun -N k` step
# per node count, all in this allocation).
#
#   benchmarks/scaling.sh                          # this machine: 1, 2, 4 ranks, 2x512 LSTM
#   RANKS="2 4 8" HOSTS=emulated RATE=100mbit SCALING=weak benchmarks/scaling.sh   # as root
#   sbatch -N 8 slurm/scaling.sbatch               # a cluster: 1, 2, 4, 8 nodes
#
# For every rank count P, scaling kind and allreduce it trains for ITERS iterations (-print_every
# WARMUP: the first window is warm-up and left out) and reads the metrics file: chars/s over the
# measured windows, and each rank's step time split into compute, exposed communication and I/O
# (docs/FORMATS.md section 4), averaged over ranks. Efficiency is chars/s(P) / (P/P0 · chars/s(P0))
# against the smallest P0 run of the same kind: for weak scaling (B per rank fixed) the work per
# rank is constant, for strong scaling (P·B fixed) the work per step is; both reduce to this.
# Prints a table per kind, writes OUT (JSON: benchmarks/scaling_report.py describes it) and a
# picture beside it through crnn-plot (PICTURE, default OUT with .svg for .json).
#
# Settings (environment):
#   MODEL_TYPE lstm, RNN_SIZE 512, NUM_LAYERS 2, WORDVEC_SIZE 64, SEQ_LENGTH 50
#   SCALING "weak strong"; ALLREDUCE "flat overlap"
#   BATCH 24           -batch_size per rank for weak scaling
#   GLOBAL_BATCH 48    P·B for strong scaling: every P must divide it
#   ITERS 30, WARMUP 10   iterations per run, and the warm-up window left out (ITERS % WARMUP == 0)
#   OUT benchmarks/results/scaling.json
#   GPU -1             crnn-train's -gpu (0: one rank per GPU, as crnn-launch arranges)
#   TRAIN_FLAGS        more crnn-train flags (e.g. -verbose 1: each rank's host and cores,
#                      printed for every run)
#   TEXT or CRNN_CORPUS  the corpus (benchmarks/lib.sh; default: the fortunes Debian ships,
#                      package fortunes); preprocessed once into a scratch folder
# Where the ranks run:
#   outside Slurm: RANKS "1 2 4"; HOSTS local (mpirun on this machine, THREADS 1 thread per rank
#     unless set empty) or emulated (tests/cluster/cluster.sh: one rank per host h1..hP, links at
#     RATE, e.g. 100mbit; unset: unshaped; needs root)
#   inside a Slurm allocation (SLURM_JOB_ID set): NODES "1 2 4 ..." (default: powers of 2 up to
#     the allocation's nodes), TASKS_PER_NODE (default SLURM_NTASKS_PER_NODE, else 1); P = nodes
#     × tasks per node; each step is `srun -N k -n P --mpi=pmix crnn-launch crnn-train ...`
#     (CRNN_LAUNCHER=mpirun, or a Slurm without PMIx: mpirun on the first k nodes instead),
#     threads and binding by crnn-launch.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
root=$bench_root
die() { bench_die "$@"; }
bench_bin "" crnn-preprocess crnn-train

model_type=${MODEL_TYPE:-lstm} rnn_size=${RNN_SIZE:-512} num_layers=${NUM_LAYERS:-2}
wordvec=${WORDVEC_SIZE:-64} seq=${SEQ_LENGTH:-50} gpu=${GPU:--1}
read -ra train_flags <<< "${TRAIN_FLAGS:-}"
kinds=${SCALING:-weak strong} modes=${ALLREDUCE:-flat overlap}
batch=${BATCH:-24} global=${GLOBAL_BATCH:-48}
iters=${ITERS:-30} warmup=${WARMUP:-10}
out=${OUT:-$root/benchmarks/results/scaling.json}
picture=${PICTURE:-${out%.json}.svg}
[ "$warmup" -ge 1 ] && [ "$iters" -gt "$warmup" ] && [ $((iters % warmup)) -eq 0 ] ||
  die "ITERS ($iters) must be a multiple of WARMUP ($warmup) and larger"
for k in $kinds; do case $k in weak|strong) ;; *) die "SCALING takes weak and strong, got '$k'" ;; esac; done
for m in $modes; do case $m in flat|overlap) ;; *) die "ALLREDUCE takes flat and overlap, got '$m'" ;; esac; done

# --- where the ranks run -----------------------------------------------------------------------
in_slurm=
[ -n "${SLURM_JOB_ID:-}" ] && in_slurm=1
hosts=${HOSTS:-local} rate=${RATE:-}
if [ -n "$in_slurm" ]; then
  tpn=${TASKS_PER_NODE:-${SLURM_NTASKS_PER_NODE:-1}}
  tpn=${tpn%%(*}
  all_nodes=${SLURM_JOB_NUM_NODES:-${SLURM_NNODES:-1}}
  if [ -z "${NODES:-}" ]; then
    NODES=
    for ((k = 1; k <= all_nodes; k *= 2)); do NODES+="$k "; done
  fi
  ranks_list=
  for k in $NODES; do
    [ "$k" -le "$all_nodes" ] || die "NODES asks for $k nodes; the allocation has $all_nodes"
    ranks_list+="$((k * tpn)) "
  done
  launcher=${CRNN_LAUNCHER:-}
  if [ -z "$launcher" ]; then # srun needs Slurm's PMIx plugin to start MPI ranks; else mpirun
    launcher=srun
    [[ $(srun --mpi=list 2>&1 || true) == *pmix* ]] || launcher=mpirun
  fi
  where="Slurm job $SLURM_JOB_ID, $launcher, $tpn task(s) per node"
else
  ranks_list=${RANKS:-1 2 4}
  case $hosts in
    local) where="mpirun on $(hostname)" ;;
    emulated) where="emulated hosts, one rank each, links ${rate:-unshaped}" ;;
    *) die "HOSTS is local or emulated, got '$hosts'" ;;
  esac
fi
for p in $ranks_list; do
  [[ $p =~ ^[1-9][0-9]*$ ]] || die "rank counts must be positive integers, got '$p'"
  case " $kinds " in *" strong "*) [ $((global % p)) -eq 0 ] || die "GLOBAL_BATCH $global is not divisible by $p ranks: choose one every rank count divides (e.g. 48 or 96)" ;; esac
done

text=${TEXT:-${CRNN_CORPUS:-}}
if [ -z "$text" ]; then
  [ -d /usr/share/games/fortunes ] || die "no corpus: set CRNN_CORPUS (or TEXT) to a text file, e.g. CRNN_CORPUS=data/tinyshakespeare/input.txt, or install Debian's fortunes"
  text=fortunes
fi

# scratch: under the output's folder inside Slurm (the nodes share it), else a temporary folder
mkdir -p "$(dirname "$out")"
if [ -n "$in_slurm" ]; then work=$(mktemp -d "$(cd "$(dirname "$out")" && pwd)/scaling-work.XXXXXX")
else work=$(mktemp -d); fi
cl=$work/cluster
cleanup() {
  [ "$hosts" = emulated ] && "$root/tests/cluster/cluster.sh" stop "$cl" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
if [ "$text" = fortunes ]; then
  bench_fortunes "$work/corpus.txt"
  text=$work/corpus.txt
fi
bench_corpus "$text"
bench_preprocess "$corpus" "$work/d" --val_frac 0.01 --test_frac 0.01

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
most=1
for p in $ranks_list; do [ "$p" -gt "$most" ] && most=$p; done
if [ "$hosts" = emulated ] && [ -z "$in_slurm" ]; then
  [ "$most" -ge 2 ] || die "HOSTS=emulated needs a rank count of 2 or more"
  "$root/tests/cluster/cluster.sh" start "$most" "$cl" $rate >/dev/null ||
    die "cannot start $most emulated hosts (tests/cluster/cluster.sh needs root and network namespaces)"
  # shellcheck disable=SC1091
  . "$cl/env"
fi
threads=${THREADS-1}

launch() { # launch P ARGS...: crnn-train on P ranks
  local p=$1
  shift
  if [ -n "$in_slurm" ]; then
    local k=$((p / tpn))
    if [ "$launcher" = mpirun ]; then
      local nodes
      nodes=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n "$k" | sed "s/\$/:$tpn/" | paste -sd,)
      mpirun --host "$nodes" -np "$p" --bind-to none \
        -x PATH -x LD_LIBRARY_PATH "$root/launch/crnn-launch" "$bin/crnn-train" "$@"
    else
      srun --nodes="$k" --ntasks="$p" --ntasks-per-node="$tpn" --mpi=pmix --kill-on-bad-exit=1 \
        "$root/launch/crnn-launch" "$bin/crnn-train" "$@"
    fi
  elif [ "$hosts" = emulated ]; then
    OPENBLAS_NUM_THREADS=${threads:-1} mpirun --host "$(seq -f 'h%g:1' 1 "$p" | paste -sd,)" -np "$p" --bind-to none \
      -x OPENBLAS_NUM_THREADS "$bin/crnn-train" "$@"
  elif [ -n "$threads" ]; then
    OPENBLAS_NUM_THREADS=$threads mpirun -np "$p" --oversubscribe --bind-to none -x OPENBLAS_NUM_THREADS "$bin/crnn-train" "$@"
  else
    mpirun -np "$p" --oversubscribe --bind-to none "$bin/crnn-train" "$@"
  fi
}

runs=()
for kind in $kinds; do
  for p in $ranks_list; do
    b=$batch
    [ "$kind" = strong ] && b=$((global / p))
    for mode in $modes; do
      name=$work/$kind-$mode-$p
      echo "scaling.sh: $kind, $mode, $p rank(s), -batch_size $b: $where" >&2
      log=$name.log
      if ! launch "$p" -input_h5 "$work/d.h5" -input_json "$work/d.json" -gpu "$gpu" -model_type "$model_type" \
          -rnn_size "$rnn_size" -num_layers "$num_layers" -wordvec_size "$wordvec" -batch_size "$b" -seq_length "$seq" \
          -max_iters "$iters" -print_every "$warmup" -checkpoint_every 0 -allreduce "$mode" \
          -checkpoint_name "$name" "${train_flags[@]}" > "$log" 2>&1; then
        cat "$log" >&2
        echo "scaling.sh: the $kind, $mode, $p-rank run failed (above)" >&2
        exit 1
      fi
      nodes=1
      [ -n "$in_slurm" ] && nodes=$((p / tpn))
      [ "$hosts" = emulated ] && [ -z "$in_slurm" ] && nodes=$p
      runs+=("$kind:$mode:$p:$b:$nodes:$name")
      grep '^rank [0-9]* of ' "$log" >&2 || true
    done
  done
done

python3 "$root/benchmarks/scaling_report.py" --out "$out" --model "$model_type ${num_layers}x$rnn_size" \
  --seq_length "$seq" --iterations "$iters" --warmup "$warmup" --launcher "$where" "${runs[@]}"
if "$bin/crnn-plot" "$out" -o "$picture"; then echo "scaling.sh: wrote $out and $picture"
else echo "scaling.sh: wrote $out; crnn-plot could not draw it (above)" >&2; fi
