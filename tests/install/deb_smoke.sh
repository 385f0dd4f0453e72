#!/usr/bin/env bash
# The installed Debian package (.ci/run: apt-get install ./crnn_*.deb) end to end from /usr/bin,
# in a temporary folder with a text of its own: crnn-preprocess, crnn-train on the CPU (a few
# iterations, the loss falls; then 2 ranks through crnn-launch), crnn-sample, crnn-eval,
# crnn-inspect, crnn-plot, the man pages and the Slurm scripts' place. Exit status 0 when all
# of it works.
set -euo pipefail
export PATH=/usr/bin:/bin
fail() { echo "deb_smoke: $*" >&2; exit 1; }
for p in crnn-preprocess crnn-train crnn-sample crnn-eval crnn-plot crnn-inspect crnn-launch; do
  [ "$(command -v "$p")" = "/usr/bin/$p" ] || fail "$p is not /usr/bin/$p (found: $(command -v "$p" || echo nothing))"
done
dpkg-query -W -f='${Status}' crnn | grep -q "install ok installed" || fail "the package crnn is not installed"
work=$(mktemp -d "${TMPDIR:-/tmp}/crnn-deb-smoke.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

# a small text: 400 lines of words in a fixed pseudo-random order
awk 'BEGIN { srand(7); split("the quick brown fox jumps over lazy dog and cat runs to sea at dawn", w, " ");
             for (i = 0; i < 400; i++) { n = 3 + int(rand() * 6); s = "";
               for (j = 0; j < n; j++) s = s (j ? " " : "") w[1 + int(rand() * 16)];
               print toupper(substr(s, 1, 1)) substr(s, 2) "." } }' > t.txt
crnn-preprocess --input_txt t.txt --output_h5 t.h5 --output_json t.json --quiet
tiny=(-gpu -1 -rnn_size 32 -num_layers 1 -wordvec_size 16 -batch_size 4 -seq_length 16)
crnn-train -input_h5 t.h5 -input_json t.json "${tiny[@]}" -max_iters 40 -print_every 10 \
  -checkpoint_every 40 -checkpoint_name cv/ck | tee train.out
first=$(sed -n 's/.*i = 10 \/ 40, loss = \([0-9.]*\),.*/\1/p' train.out)
last=$(sed -n 's/.*i = 40 \/ 40, loss = \([0-9.]*\),.*/\1/p' train.out)
[ -n "$first" ] && [ -n "$last" ] || fail "crnn-train printed no losses at iterations 10 and 40"
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a) }' || fail "the loss did not fall: $first at 10, $last at 40"
[ -f cv/ck_40.h5 ] || fail "no checkpoint cv/ck_40.h5"
crnn-sample -checkpoint cv/ck_40.h5 -gpu -1 -length 300 -seed 1 > sample.txt
[ "$(wc -c < sample.txt)" -ge 300 ] || fail "crnn-sample wrote $(wc -c < sample.txt) bytes, not 300"
crnn-eval -checkpoint cv/ck_40.h5 -gpu -1 | grep -q "val loss = " || fail "crnn-eval printed no val loss"
crnn-inspect cv/ck_40.h5 | grep -q "iteration: 40" || fail "crnn-inspect does not say iteration 40"
crnn-plot cv/ck_metrics.jsonl -o cv/ck.png
[ -s cv/ck.png ] || fail "crnn-plot drew no cv/ck.png (gnuplot)"
crnn-launch --ranks 2 crnn-train -input_h5 t.h5 -input_json t.json "${tiny[@]}" -max_iters 3 \
  -checkpoint_every 0 -checkpoint_name cv/launch > launch.out 2>&1 || { cat launch.out >&2; fail "crnn-launch --ranks 2 failed"; }
grep -q "in 8 streams" launch.out || { cat launch.out >&2; fail "crnn-launch did not start 2 ranks"; }
for p in crnn-preprocess crnn-train crnn-sample crnn-eval crnn-plot crnn-inspect; do
  [ -f "/usr/share/man/man1/$p.1" ] || fail "no man page /usr/share/man/man1/$p.1"
  if command -v man >/dev/null; then
    [ "$(man -w "$p")" = "/usr/share/man/man1/$p.1" ] || fail "man -w $p finds $(man -w "$p"), not /usr/share/man/man1/$p.1"
  fi
done
if command -v man >/dev/null; then page=$(MANWIDTH=200 man -l /usr/share/man/man1/crnn-train.1)
else page=$(cat /usr/share/man/man1/crnn-train.1); fi
grep -q 'max_epochs' <<<"$page" || fail "the man page of crnn-train lacks -max_epochs"
[ -x /usr/share/crnn/slurm/cpu.sbatch ] && [ -f /usr/share/crnn/configs/corpus-1MB.conf ] ||
  fail "the Slurm scripts or presets are not under /usr/share/crnn"
echo "deb_smoke: ok ($(dpkg-query -W -f='${Package} ${Version}' crnn))"
