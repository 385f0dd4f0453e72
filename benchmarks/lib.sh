# What the benchmark scripts share, sourced by each: the build folder with the programs, the
# corpus they train on, and its preprocessing.
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Environment:
#   CRNN_CORPUS  the text a benchmark trains on (any UTF-8 text file). The numbers in
#                RESULTS.md are for tiny-shakespeare: char-rnn's data/tinyshakespeare/input.txt
#                (1.1 MB), e.g. CRNN_CORPUS=data/tinyshakespeare/input.txt. There is no
#                default path and nothing is downloaded: a script that needs a corpus and has
#                none stops, saying how to give one. (scaling.sh, overlap.sh and
#                validation_ranks.sh also take it as TEXT, slurm/scaling.sbatch's name.)
#   CRNN_BIN     the build folder holding the programs (default: build/ in the checkout); a
#                BUILD_DIR argument, where a script takes one, comes first.

bench_name=$(basename "$0")
bench_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# bench_die MESSAGE: the script's name and the message on stderr, exit status 2
bench_die() {
  echo "$bench_name: $*" >&2
  exit 2
}

# bench_bin [DIR] [PROGRAM...]: bin=DIR, else $CRNN_BIN, else <checkout>/build, as an absolute
# path; each PROGRAM must be built there
bench_bin() {
  local dir=${1:-${CRNN_BIN:-$bench_root/build}}
  shift || true
  [ -d "$dir" ] || bench_die "no build folder $dir (build first, or give BUILD_DIR / set CRNN_BIN)"
  bin=$(cd "$dir" && pwd)
  local p
  for p in "$@"; do
    [ -x "$bin/$p" ] || bench_die "$bin/$p is not built (build first, or give BUILD_DIR / set CRNN_BIN)"
  done
}

# bench_corpus [PATH]: corpus=PATH (a script's own setting), else $CRNN_CORPUS; stops when
# neither names a readable file
bench_corpus() {
  corpus=${1:-${CRNN_CORPUS:-}}
  [ -n "$corpus" ] || bench_die "no corpus: set CRNN_CORPUS to a text file, e.g. CRNN_CORPUS=data/tinyshakespeare/input.txt benchmarks/$bench_name (benchmarks/lib.sh)"
  [ -r "$corpus" ] && [ -f "$corpus" ] || bench_die "cannot read the corpus '$corpus' (CRNN_CORPUS)"
}

# bench_fortunes FILE: the fortunes Debian ships (package fortunes) concatenated into FILE, a
# corpus any Debian machine can install; fails when they are not installed
bench_fortunes() {
  [ -d /usr/share/games/fortunes ] || return 1
  find /usr/share/games/fortunes -maxdepth 1 -type f ! -name '*.dat' ! -name '*.u8' | sort | xargs cat > "$1"
}

# bench_preprocess TEXT PREFIX [crnn-preprocess flags...]: PREFIX.h5 and PREFIX.json, quietly
bench_preprocess() {
  local text=$1 prefix=$2
  shift 2
  "$bin/crnn-preprocess" --input_txt "$text" --output_h5 "$prefix.h5" --output_json "$prefix.json" --quiet "$@"
}
