#!/usr/bin/env bash
# A large corpus end to end, with the time and peak memory of every step:
#
#   benchmarks/big_corpus.sh                    # SIZE=1G: a gigabyte of text (about 30 min here)
#   SIZE=32M benchmarks/big_corpus.sh           # a quick check
#   KIND=wide SIZE=256M benchmarks/big_corpus.sh  # thousands of distinct characters: uint32 tokens
#
# The text is made on the machine, nothing downloaded: the documentation Debian installs
# (/usr/share/doc: its plain files and its .gz files decompressed), kept to printable ASCII,
# concatenated and repeated to SIZE bytes. KIND=wide maps each pair of that text's bytes onto one
# of 3,000 CJK characters (3 bytes each in UTF-8, a line break every 60), so that the corpus is
# stored as uint32 (docs/FORMATS.md section 1).
#
# Then, each under GNU time (wall seconds, peak resident memory per process):
#   1. crnn-preprocess (--val_frac 0.01 --test_frac 0.0005);
#   2. crnn-train of a 3x512 LSTM (NUM_LAYERS, RNN_SIZE) on 1 rank (B=50) and on 2 ranks (mpirun -np 2, B=25 each): ITERS
#      iterations, a validation and checkpoint every ITERS/2 (-val_max_batches VAL_BATCHES, the
#      split being too long for a full pass at every checkpoint), 1 thread a rank; from the metrics:
#      start-up (the shard's read, the model), ms per step, each validation and each checkpoint;
#   3. -resume auto on 2 ranks for ITERS/2 more iterations;
#   4. crnn-sample (2,000 characters) and mpirun -np 2 crnn-eval on the test split.
# Each rank's peak memory is printed beside its shard (its training streams' tokens and its share
# of the validation view): it should be about the shard plus the model, not the corpus.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
root=$bench_root
size=${SIZE:-1G}
kind=${KIND:-ascii}
iters=${ITERS:-20}
layers=${NUM_LAYERS:-3} rnn_size=${RNN_SIZE:-512}
val_batches=${VAL_BATCHES:-20}
die() { bench_die "$@"; }
bench_bin "" crnn-preprocess crnn-train crnn-sample crnn-eval
[ -x /usr/bin/time ] || die "needs GNU time (/usr/bin/time; Debian: apt-get install time)"
py=${PYTHON:-python3}
[ -x /usr/bin/python3 ] && [ -z "${PYTHON:-}" ] && py=/usr/bin/python3 # Debian's, with numpy and h5py
case $kind in ascii|wide) ;; *) die "KIND is ascii or wide, got '$kind'" ;; esac
bytes=$(numfmt --from=iec "$size" 2>/dev/null) || die "SIZE reads like 1G, 256M or 32M, got '$size'"
[ "$bytes" -ge 4000000 ] || die "SIZE must be at least 4M (the validation and test splits need streams)"
[ $((iters % 2)) -eq 0 ] && [ "$iters" -ge 2 ] || die "ITERS must be even and at least 2"
work=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/crnn-big.XXXXXX")}
mkdir -p "$work"
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
timed() { # timed NAME CMD...: GNU time's wall seconds and peak KB into $work/NAME.time
  local name=$1
  shift
  /usr/bin/time -f "%e %M" -o "$work/$name.time" "$@"
}
# each rank of an mpirun under GNU time, into NAME.rankR.time
cat > "$work/rank_time" <<EOF
#!/bin/sh
exec /usr/bin/time -f "%e %M" -o "$work/\$CRNN_TIMED.rank\${OMPI_COMM_WORLD_RANK:-0}.time" "\$@"
EOF
chmod +x "$work/rank_time"

# --- the text -----------------------------------------------------------------------------
echo "big_corpus.sh: making $size of $kind text from /usr/share/doc in $work" >&2
base=$work/base.txt
# (no more than SIZE bytes of it: head ends the reading early, hence no pipefail here)
set +o pipefail
find /usr/share/doc -type f \( -name '*.gz' -o -name '*.txt' -o -name 'copyright' -o -name 'README*' -o -name 'NEWS*' \
  -o -name 'changelog*' \) -print0 2>/dev/null | sort -z |
  while IFS= read -r -d '' f; do case $f in *.gz) zcat -f -- "$f" 2>/dev/null || true ;; *) cat -- "$f" ;; esac; done |
  LC_ALL=C tr -cd '\11\12\40-\176' | head -c "$bytes" > "$base"
set -o pipefail
[ "$(stat -c %s "$base")" -ge 1000000 ] || die "found under 1 MB of text in /usr/share/doc"
text=$work/corpus.txt
if [ "$kind" = ascii ]; then
  : > "$text"
  while [ "$(stat -c %s "$text")" -lt "$bytes" ]; do cat "$base" >> "$text"; done
  truncate -s "$bytes" "$text"
else
  "$py" - "$base" "$text" "$bytes" <<'PY'
import sys
import numpy as np
base, out, want = sys.argv[1], sys.argv[2], int(sys.argv[3])
b = np.frombuffer(open(base, "rb").read(), dtype=np.uint8)
b = b[: len(b) // 2 * 2].astype(np.int64)
cp = 0x4E00 + (b[0::2] * 97 + b[1::2]) % 3000           # one CJK character per byte pair
u = np.empty((len(cp), 3), dtype=np.uint8)
u[:, 0] = 0xE0 | (cp >> 12)
u[:, 1] = 0x80 | ((cp >> 6) & 0x3F)
u[:, 2] = 0x80 | (cp & 0x3F)
lines = u[: len(u) // 60 * 60].reshape(-1, 180)          # 60 characters a line
chunk = np.hstack([lines, np.full((len(lines), 1), 0x0A, dtype=np.uint8)]).tobytes()
with open(out, "wb") as f:
    n = 0
    while n < want:
        part = chunk[: want - n]
        if len(part) < len(chunk):                          # end on a whole line
            part = part[: part.rfind(b"\n") + 1] or part[:181 * ((want - n) // 181)]
            if not part:
                break
        f.write(part)
        n += len(part)
PY
fi
echo "big_corpus.sh: $(stat -c %s "$text") bytes of text" >&2

# a process's baseline: crnn-train with no data (its libraries, CUDA's among them, mapped)
timed baseline "$bin/crnn-train" --help > /dev/null

# --- 1. preprocess ----------------------------------------------------------------------------
timed preprocess "$bin/crnn-preprocess" --input_txt "$text" --output_h5 "$work/d.h5" --output_json "$work/d.json" \
  --val_frac 0.01 --test_frac 0.0005 --quiet
rm -f "$text" "$base" # only the HDF5 file from here on

# --- 2. training on 1 and 2 ranks ----------------------------------------------------------
half=$((iters / 2))
train=(-input_h5 "$work/d.h5" -input_json "$work/d.json" -gpu -1 -num_layers "$layers" -rnn_size "$rnn_size" -seq_length 50
       -checkpoint_every "$half" -print_every "$half" -val_max_batches "$val_batches")
CRNN_TIMED=train1 "$work/rank_time" "$bin/crnn-train" "${train[@]}" -batch_size 50 -max_iters "$iters" \
  -checkpoint_name "$work/one/ck" > "$work/train1.log" 2>&1 || { cat "$work/train1.log" >&2; die "1-rank training failed"; }
mkdir -p "$work/two"
run2() { # run2 NAME ARGS...: crnn-train on 2 ranks, each timed
  local name=$1
  shift
  mpirun -np 2 --bind-to core -x OPENBLAS_NUM_THREADS -x CRNN_TIMED="$name" "$work/rank_time" \
    "$bin/crnn-train" "${train[@]}" -batch_size 25 -checkpoint_name "$work/two/ck" "$@" > "$work/$name.log" 2>&1 ||
    { cat "$work/$name.log" >&2; die "$name failed"; }
}
run2 train2 -max_iters "$iters"
# --- 3. resume ------------------------------------------------------------------------------
run2 resume2 -max_iters $((iters + half)) -resume auto
last=$work/two/ck_$((iters + half)).h5
[ -f "$last" ] || die "the resumed run left no $last"

# --- 4. sample and evaluate -----------------------------------------------------------------
timed sample "$bin/crnn-sample" -checkpoint "$last" -length 2000 -gpu -1 > "$work/sample.txt"
mpirun -np 2 --bind-to core -x OPENBLAS_NUM_THREADS -x CRNN_TIMED=eval2 "$work/rank_time" \
  "$bin/crnn-eval" "$last" -split test -gpu -1 > "$work/eval2.log" 2>&1 || { cat "$work/eval2.log" >&2; die "crnn-eval failed"; }

[ -n "${KEEP:-}" ] && echo "big_corpus.sh: the files are kept in $work" >&2
"$py" "$root/benchmarks/big_corpus_report.py" "$work" "$kind" "$iters" "$val_batches" "lstm ${layers}x$rnn_size"
