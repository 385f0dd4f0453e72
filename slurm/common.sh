# Sourced by the sbatch scripts of this folder: finds crnn, builds crnn-train's data and
# checkpoint flags from the environment, and runs training so that the warning signal before the
# time limit ends in a checkpoint and a requeue, and the requeued job resumes (-resume auto).
#
# Slurm runs a copy of the batch script, so a script cannot look beside itself: it sources
# $CRNN_ROOT/slurm/common.sh when CRNN_ROOT is set, else the submit folder's slurm/common.sh (a
# checkout), else the installed one of the crnn-launch on the PATH (PREFIX/share/crnn/slurm).
# This file then knows where it is: in a checkout, the launcher is launch/crnn-launch and the
# programs are in build/; installed, both are in PREFIX/bin.
#
# Environment (all optional):
#   CRNN_ROOT             the folder holding slurm/: a crnn checkout or an installed
#                         PREFIX/share/crnn (default: the submit folder, else the installed crnn)
#   CRNN_BIN              the folder of the programs (default: $CRNN_ROOT/build in a checkout,
#                         PREFIX/bin installed)
#   CRNN_DATA             data prefix: trains on $CRNN_DATA.h5 + $CRNN_DATA.json (crnn-preprocess)
#   CRNN_DATA_DIR         or char-rnn's DIR/input.txt (preprocessed on first use)
#   CRNN_CHECKPOINT_NAME  checkpoint prefix (default: cv/<job name>-<job id>/checkpoint; set it to
#                         continue an earlier job's run from a new submission)
#   CRNN_TRAIN_FLAGS      more crnn-train flags (the script's own arguments are added after them)
#   CRNN_MAX_RESTARTS     requeue at most this many times (default 20)
# and those of launch/crnn-launch (CRNN_LAUNCHER=srun|mpirun, CRNN_BIND, ...).

crnn_die() { echo "crnn job: error: $*" >&2; exit 2; }

# the folder holding this file's slurm/: a checkout, or an installed PREFIX/share/crnn
crnn_here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

crnn_setup() {
  export CRNN_ROOT=$crnn_here
  if [ -x "$CRNN_ROOT/launch/crnn-launch" ]; then # a checkout
    CRNN_LAUNCH=$CRNN_ROOT/launch/crnn-launch
    export CRNN_BIN=${CRNN_BIN:-$CRNN_ROOT/build}
    [ -x "$CRNN_BIN/crnn-train" ] ||
      crnn_die "no crnn-train in $CRNN_BIN: build crnn (cmake -S . -B build && cmake --build build) or set CRNN_BIN"
  elif [ -x "$CRNN_ROOT/../../bin/crnn-launch" ]; then # installed: PREFIX/share/crnn
    CRNN_LAUNCH=$(cd "$CRNN_ROOT/../../bin" && pwd)/crnn-launch
    export CRNN_BIN=${CRNN_BIN:-$(dirname "$CRNN_LAUNCH")}
    [ -x "$CRNN_BIN/crnn-train" ] || crnn_die "no crnn-train in $CRNN_BIN (CRNN_BIN): the installed crnn is incomplete, or CRNN_BIN is wrong"
  else
    crnn_die "$CRNN_ROOT is neither a crnn checkout (launch/crnn-launch) nor an installed PREFIX/share/crnn (PREFIX/bin/crnn-launch)"
  fi
  crnn_data_flags=()
  if [ -n "${CRNN_DATA:-}" ]; then
    for f in "$CRNN_DATA.h5" "$CRNN_DATA.json"; do
      [ -r "$f" ] || crnn_die "CRNN_DATA=$CRNN_DATA: $f is missing: make it with crnn-preprocess --input_txt TEXT --output_h5 $CRNN_DATA.h5 --output_json $CRNN_DATA.json"
    done
    crnn_data_flags=(-input_h5 "$CRNN_DATA.h5" -input_json "$CRNN_DATA.json")
  elif [ -n "${CRNN_DATA_DIR:-}" ]; then
    [ -r "$CRNN_DATA_DIR/input.txt" ] || [ -r "$CRNN_DATA_DIR/input.h5" ] ||
      crnn_die "CRNN_DATA_DIR=$CRNN_DATA_DIR holds no input.txt"
    crnn_data_flags=(-data_dir "$CRNN_DATA_DIR")
  fi
  echo "crnn job ${SLURM_JOB_ID:-?}${SLURM_ARRAY_TASK_ID:+ (array task $SLURM_ARRAY_TASK_ID)}: start $((${SLURM_RESTART_COUNT:-0} + 1)) on ${SLURM_JOB_NODELIST:-$(hostname)}, ${SLURM_NTASKS:-1} tasks, $(date -u '+%F %T UTC')"
}

# crnn_train_requeueable CHECKPOINT_NAME [FLAGS...]: runs crnn-train through the launcher with
# -resume auto. The batch shell receives the warning signal (SIGUSR1, --signal=B:USR1@secs),
# passes it to srun or mpirun, which pass it to every rank; crnn-train checkpoints and exits with
# 75, and the job requeues itself. Exit 75 after a SIGUSR1 sent to the steps directly
# (scancel --signal=USR1) requeues too; after SIGTERM (scancel, the time limit) it does not.
crnn_train_requeueable() {
  local ckpt=$1 rc child terminated=0 signalled=0
  shift
  mkdir -p "$(dirname "$ckpt")"
  # shellcheck disable=SC2086
  set -- "${crnn_data_flags[@]}" ${CRNN_TRAIN_FLAGS:-} "$@" -checkpoint_name "$ckpt" -resume auto
  trap 'signalled=1; echo "crnn job: SIGUSR1: checkpointing at the next step"; kill -USR1 "$child" 2>/dev/null' USR1
  trap 'signalled=1; terminated=1; echo "crnn job: SIGTERM: checkpointing, no requeue"; kill -USR1 "$child" 2>/dev/null' TERM
  trap 'signalled=1; terminated=1; kill -USR1 "$child" 2>/dev/null' INT
  # crnn-train rewrites <prefix>_metrics.jsonl whenever it starts (even with nothing left to do):
  # a launch that exits 0 without it (srun could not start the tasks) is a failure
  local stamp
  stamp=$(dirname "$ckpt")/.$(basename "$ckpt").launched
  touch "$stamp"
  # a start refused by the run's lock (<checkpoint_name>.lock: the previous start's ranks are
  # still exiting, or a host cut off from them trains on) is tried again every 10 s for up to
  # -comm_timeout + 60 s: by then such ranks have given up waiting for the others
  local errcopy copier give_up copy_fd
  errcopy=$(mktemp "${TMPDIR:-/tmp}/crnn-job.XXXXXX")
  give_up=$((SECONDS + $(crnn_comm_timeout "$@") + 60))
  while :; do
    : > "$errcopy"
    exec {copy_fd}> >(tee -a "$errcopy" >&2)
    copier=$!
    "$CRNN_LAUNCH" crnn-train "$@" 2>&"$copy_fd" &
    child=$!
    # wait returns early (status > 128) when a trapped signal arrives: wait again until it ends
    while :; do
      rc=0
      wait "$child" || rc=$?
      kill -0 "$child" 2>/dev/null || break
    done
    exec {copy_fd}>&-
    wait "$copier" 2>/dev/null || true
    if [ "$rc" -eq 1 ] && [ "$signalled" = 0 ] && grep -q "another crnn-train is writing this run" "$errcopy"; then
      if [ "$SECONDS" -lt "$give_up" ]; then
        echo "crnn job: an earlier start still holds the run (see above): trying again in 10 s, for $((give_up - SECONDS)) s more"
        sleep 10 &
        wait $! || true
        [ "$signalled" = 0 ] && continue
      else
        echo "crnn job: error: the run is still locked after -comm_timeout + 60 s: the process named above is alive; stop it, or submit with another CRNN_CHECKPOINT_NAME" >&2
      fi
    fi
    break
  done
  rm -f "$errcopy"
  trap - USR1 TERM INT
  if [ "$rc" -eq 75 ]; then
    if [ "$terminated" = 1 ]; then
      echo "crnn job: stopped with a checkpoint; submit again with CRNN_CHECKPOINT_NAME=$ckpt to continue"
      return 75
    fi
    if [ "${SLURM_RESTART_COUNT:-0}" -ge "${CRNN_MAX_RESTARTS:-20}" ]; then
      echo "crnn job: stopped with a checkpoint after ${SLURM_RESTART_COUNT} restarts (CRNN_MAX_RESTARTS): not requeueing"
      return 75
    fi
    echo "crnn job: stopped with a checkpoint: requeueing job $SLURM_JOB_ID (it resumes with -resume auto)"
    scontrol requeue "$SLURM_JOB_ID" || { echo "crnn job: scontrol requeue failed" >&2; return 75; }
    return 0
  fi
  if [ "$rc" -eq 0 ] && [ -z "$(find "$(dirname "$ckpt")" -maxdepth 1 -name "$(basename "$ckpt")_metrics.jsonl" -newer "$stamp")" ]; then
    case " $* " in
      *" -savefile "*|*" -checkpoint_dir "*|*" --savefile"*|*" --checkpoint_dir"*) ;; # char-rnn's names: another prefix
      *) echo "crnn job: error: the launch ended with status 0 but crnn-train never started (${ckpt}_metrics.jsonl was not written): see the messages above" >&2
         return 1 ;;
    esac
  fi
  [ "$rc" -eq 0 ] && echo "crnn job: training finished ($ckpt)"
  return "$rc"
}

# crnn_comm_timeout FLAGS...: crnn-train's -comm_timeout among FLAGS (600 when not given)
crnn_comm_timeout() {
  local t=600
  while [ $# -gt 0 ]; do
    case $1 in
      -comm_timeout|--comm_timeout) t=${2:-600}; shift ;;
      -comm_timeout=*|--comm_timeout=*) t=${1#*=} ;;
    esac
    shift
  done
  t=${t%%.*}
  [[ $t =~ ^[0-9]+$ ]] || t=600
  echo "$t"
}

# crnn_check_gpus: warns when the ranks per node are not the GPUs per node (one rank per GPU).
crnn_check_gpus() {
  local gpus per_node
  if command -v nvidia-smi >/dev/null 2>&1; then
    gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)
  else
    gpus=0
  fi
  per_node=${SLURM_NTASKS_PER_NODE:-${SLURM_TASKS_PER_NODE%%[(,]*}}
  if [ "$gpus" -eq 0 ]; then
    echo "crnn job: warning: no GPU visible on $(hostname) (nvidia-smi -L): crnn-train will say so and use the CPU" >&2
  elif [ -n "$per_node" ] && [ "$per_node" != "$gpus" ]; then
    echo "crnn job: warning: $per_node ranks per node for $gpus GPUs: one rank per GPU wants --ntasks-per-node=$gpus" >&2
  fi
}
