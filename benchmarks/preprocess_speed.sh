#!/usr/bin/env bash
# crnn-preprocess throughput against its peer `LC_ALL=C.UTF-8 wc -m` (which also decodes and
# counts every UTF-8 character of the file), on the same ~50 MB UTF-8 file, best of 3 runs each,
# plus crnn-preprocess's peak RSS. Target: crnn-preprocess at least 0.5x the speed of wc -m.
#
#   CRNN_CORPUS=data/tinyshakespeare/input.txt benchmarks/preprocess_speed.sh [BUILD_DIR] [SIZE_MB]
#                                                             (defaults: build, 50)
#
# The file is CRNN_CORPUS (tiny-shakespeare for RESULTS.md; benchmarks/lib.sh) repeated, with a
# paragraph of 2-, 3- and 4-byte characters 400 times after each copy (about 10% of the bytes). The file is read once before
# timing, so both tools read it from the page cache.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"
bench_bin "${1:-}" crnn-preprocess
size_mb="${2:-50}"
bench_corpus
shakespeare=$corpus
bin="$bin/crnn-preprocess"

work="$(mktemp -d "${TMPDIR:-/tmp}/crnn_pre_bench.XXXXXX")"
trap 'rm -rf "$work"' EXIT
txt="$work/input.txt"

multibyte='Ça fait déjà « quinze » ans — naïve façade, Straße, Ærø. Ελληνικά κείμενα. Русский текст здесь.
日本語の文章とカタカナ。中文字符也在这里。한국어 문장. Emoji 😀🚀🎉 and math 𝔸𝔹ℂ 𝒳 ∑∫√∞ ≠ ≤.
'
target=$((size_mb * 1000 * 1000))
while [ ! -f "$txt" ] || [ "$(stat -c %s "$txt")" -lt "$target" ]; do
  cat "$shakespeare" >> "$txt"
  for _ in $(seq 400); do printf '%s' "$multibyte" >> "$txt"; done
done
bytes=$(stat -c %s "$txt")
cat "$txt" > /dev/null

best_of_3() { # prints the best wall time in seconds of the command
  local best=""
  for _ in 1 2 3; do
    local t0 t1
    t0=$(date +%s.%N)
    "$@" > /dev/null
    t1=$(date +%s.%N)
    best=$(awk -v a="$t0" -v b="$t1" -v best="$best" 'BEGIN { t = b - a; if (best == "" || t < best) best = t; printf "%.4f", best }')
  done
  echo "$best"
}

chars=$(LC_ALL=C.UTF-8 wc -m < "$txt")
t_wc=$(best_of_3 env LC_ALL=C.UTF-8 wc -m "$txt")
t_crnn=$(best_of_3 "$bin" --input_txt "$txt" --output_h5 "$work/out.h5" --output_json "$work/out.json" --quiet)

rss="n/a"
if [ -x /usr/bin/time ]; then
  rss=$(/usr/bin/time -v "$bin" --input_txt "$txt" --output_h5 "$work/out.h5" --output_json "$work/out.json" --quiet 2>&1 \
        | awk -F: '/Maximum resident set size/ { gsub(/ /, "", $2); printf "%.1f MB", $2 / 1024 }')
else
  rss=$(python3 -c 'import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
print("%.1f MB" % (resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024))' \
        "$bin" --input_txt "$txt" --output_h5 "$work/out.h5" --output_json "$work/out.json" --quiet)
fi

"$bin" --input_txt "$txt" --output_h5 "$work/out.h5" --output_json "$work/out.json" | head -2
awk -v bytes="$bytes" -v chars="$chars" -v twc="$t_wc" -v tcr="$t_crnn" -v rss="$rss" 'BEGIN {
  mb = bytes / 1e6
  printf "file: %.1f MB, %d characters\n", mb, chars
  printf "wc -m (LC_ALL=C.UTF-8):   %.3f s  %7.1f MB/s\n", twc, mb / twc
  printf "crnn-preprocess:          %.3f s  %7.1f MB/s\n", tcr, mb / tcr
  printf "ratio crnn / wc -m speed: %.2fx (target >= 0.5x)\n", twc / tcr
  printf "crnn-preprocess peak RSS: %s\n", rss
}'
