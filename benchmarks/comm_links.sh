#!/usr/bin/env bash
# The allreduce of crnn's own gradient buckets on real links: emulated hosts (tests/cluster/,
# as root), one rank each, links shaped to each RATE, at 2, 4 and 8 hosts, for the 2x128, 2x512
# and 3x1024 LSTMs. Each point is crnn-bench-allreduce's best of REPEAT timings of one bucket
# (or of the whole gradient) across the ranks; before the buckets it measures every link's rate
# with all links loaded at once (as the ring loads them) and prints it. One JSON file per
# (rate, hosts, model) goes to OUT; benchmarks/project_scaling.py fits the ring model to them.
#
#   benchmarks/comm_links.sh                       # RATES="100mbit 500mbit" HOSTS="2 4 8"
#   RATES=1gbit HOSTS="2 4" OUT=/tmp/links benchmarks/comm_links.sh
#   benchmarks/project_scaling.py fit OUT/*.json
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
root=$bench_root
bench_bin "" crnn-bench-allreduce
rates=${RATES:-100mbit 500mbit}
hosts=${HOSTS:-2 4 8}
models=${MODELS:-2x128 2x512 3x1024}
repeat=${REPEAT:-3}
out=${OUT:-$root/benchmarks/results/links}
most=0
for p in $hosts; do [ "$p" -gt "$most" ] && most=$p; done
[ "$most" -ge 2 ] || { echo "comm_links.sh: HOSTS must name host counts of 2 or more, got '$hosts'" >&2; exit 2; }
mkdir -p "$out"
work=$(mktemp -d)
cl=$work/cluster
trap '"$root/tests/cluster/cluster.sh" stop "$cl" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1

for rate in $rates; do
  "$root/tests/cluster/cluster.sh" stop "$cl" >/dev/null 2>&1 || true
  "$root/tests/cluster/cluster.sh" start "$most" "$cl" "$rate" >/dev/null
  # shellcheck disable=SC1091
  (
    . "$cl/env"
    for p in $hosts; do
      hostlist=$(seq -f 'h%g:1' 1 "$p" | paste -sd,)
      for model in $models; do
        layers=${model%x*} size=${model#*x}
        json=$out/links-$rate-$p-$model.json
        echo "== $rate links, $p hosts, lstm $model"
        mpirun --host "$hostlist" -np "$p" --bind-to none -x OPENBLAS_NUM_THREADS \
          "$bin/crnn-bench-allreduce" -rnn_size "$size" -num_layers "$layers" -repeat "$repeat" -json "$json.tmp" ||
          { echo "comm_links.sh: the $rate, $p-host, $model measurement failed" >&2; exit 1; }
        # the setting the links were shaped to, for the fit
        sed "s/^{/{\"rate\": \"$rate\", /" "$json.tmp" > "$json" && rm -f "$json.tmp"
      done
    done
  )
done
echo "comm_links.sh: results in $out; fit them with: $root/benchmarks/project_scaling.py fit $out/links-*.json"
