#!/usr/bin/env bash
# Time to quality: the wall-clock seconds crnn-train (mpirun -np 2, configs/corpus-1MB.conf) and
# the PyTorch reference (benchmarks/torch_charrnn.py, 1 thread, crnn's recipe) need to
# reach validation losses 1.60, 1.55 and 1.50 on a corpus (tiny-shakespeare: torch-rnn's
# 80/10/10 split, as crnn-preprocess writes it), one run after the other on this machine, and
# one picture of both validation curves, against time and against iterations.
#
#   CRNN_CORPUS=data/tinyshakespeare/input.txt benchmarks/time_to_quality.sh [BUILD_DIR]
#
# Each run validates on the whole validation split every VAL_EVERY iterations and stops at the
# first validation at or below the lowest threshold (crnn through SIGUSR1, which makes it write
# a checkpoint and exit with 75), or at its time limit. A threshold's time is the run's own
# clock at the first validation at or below it: crnn's metrics `time_s` (seconds since the run
# began; docs/FORMATS.md section 4), the reference's the same from the start of its script;
# both include their validations and crnn its checkpoints, which are also reported apart
# ("training only": that clock less the validations' and checkpoints' seconds so far).
# "-" is a threshold not reached within the time limit.
# Prints a table, writes OUT (JSON: settings, curves, crossings) and the picture PICTURE (PNG,
# through gnuplot; without gnuplot it says so and draws none). Exit status 0 when both runs ran
# (whether or not they reached the thresholds), 1 when one failed, 2 on bad settings.
#
# Environment:
#   CRNN_CORPUS, CRNN_BIN   the corpus and the build folder (benchmarks/lib.sh)
#   THRESHOLDS "1.60 1.55 1.50"   validation losses, nats per character
#   RANKS 2                 crnn-train's ranks (mpirun --oversubscribe -np RANKS)
#   CRNN_FLAGS              crnn-train's recipe (default: -config configs/corpus-1MB.conf, whose
#                           -batch_size is per rank)
#   TORCH_FLAGS             the reference's recipe (default: crnn's, read from CRNN_FLAGS and
#                           the -config file it names: the same model, dropout, learning rate,
#                           schedule, clipping and sequence length, the global batch (-batch_size
#                           times RANKS), with 1 thread)
#   VAL_EVERY 100           iterations between validations, both runs
#   CRNN_SECONDS 420, TORCH_SECONDS 660   each run's time limit
#   RUN "crnn torch"        which runs to make (the table shows only those)
#   OUT benchmarks/results/time_to_quality.json, PICTURE (OUT with .png for .json)
#   PYTHON /usr/bin/python3 (with torch, h5py and numpy)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/lib.sh"
bench_bin "${1:-}" crnn-preprocess crnn-train
BIN=$bin
bench_corpus
PYTHON="${PYTHON:-/usr/bin/python3}"
THRESHOLDS="${THRESHOLDS:-1.60 1.55 1.50}"
RANKS="${RANKS:-2}"
CRNN_FLAGS="${CRNN_FLAGS:--config $bench_root/configs/corpus-1MB.conf}"
TORCH_FLAGS="${TORCH_FLAGS:-}"
# torch_recipe: the reference's flags for crnn's recipe CRNN_FLAGS (its -config file first, the
# flags after it win, as in crnn-train); stops on a setting the reference does not have
torch_recipe() {
  "$PYTHON" - "$RANKS" "$CRNN_FLAGS" <<'EOF'
import shlex, sys
ranks, flags = int(sys.argv[1]), shlex.split(sys.argv[2])
same = ("rnn_size", "num_layers", "wordvec_size", "dropout", "learning_rate", "grad_clip",
        "grad_clip_mode", "lr_decay_every", "lr_decay_factor", "seq_length", "seed")
ignored = ("max_epochs", "max_iters", "print_every", "checkpoint_every", "eval_val_every", "keep_last",
           "progress", "gpu", "gpuid", "verbose", "allreduce", "comm_timeout", "sample_every", "sample_length")
settings = {}
def take(name, value, where):
    name = name.lstrip("-").replace("-", "_")
    name = {"model": "model_type"}.get(name, name)
    if name in same or name in ("batch_size", "model_type") or name in ignored:
        settings[name] = value
    else:
        sys.exit("time_to_quality.sh: the PyTorch reference has no counterpart of %s's %s; set TORCH_FLAGS" % (where, name))
i = 0
while i < len(flags):
    name, value = flags[i], flags[i + 1] if i + 1 < len(flags) else ""
    if name.lstrip("-") == "config":
        for line in open(value):
            line = line.split("#", 1)[0].strip()
            if line:
                k, _, v = line.partition("=")
                take(k.strip(), v.strip(), value)
    else:
        take(name, value, "CRNN_FLAGS")
    i += 2
out = ["--%s %s" % (k, settings[k]) for k in ("model_type",) + same if k in settings]
out.append("--batch_size %d" % (int(settings.get("batch_size", 50)) * ranks))
print(" ".join(out + ["--threads 1"]))
EOF
}
VAL_EVERY="${VAL_EVERY:-100}"
CRNN_SECONDS="${CRNN_SECONDS:-420}"
TORCH_SECONDS="${TORCH_SECONDS:-660}"
RUN="${RUN:-crnn torch}"
OUT="${OUT:-$bench_root/benchmarks/results/time_to_quality.json}"
PICTURE="${PICTURE:-${OUT%.json}.png}"
read -ra crnn_flags <<< "$CRNN_FLAGS"

for t in $THRESHOLDS; do
  [[ $t =~ ^[0-9]+(\.[0-9]+)?$ ]] || bench_die "THRESHOLDS takes losses such as 1.50, got '$t'"
done
[ -n "$THRESHOLDS" ] || bench_die "THRESHOLDS is empty"
for n in "$RANKS" "$VAL_EVERY" "$CRNN_SECONDS" "$TORCH_SECONDS"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || bench_die "RANKS, VAL_EVERY, CRNN_SECONDS and TORCH_SECONDS take positive integers, got '$n'"
done
for r in $RUN; do case $r in crnn|torch) ;; *) bench_die "RUN takes crnn and torch, got '$r'" ;; esac; done
if [ -z "$TORCH_FLAGS" ] && [[ " $RUN " == *" torch "* ]]; then
  TORCH_FLAGS="$(torch_recipe)" || bench_die "cannot translate CRNN_FLAGS for the PyTorch reference"
fi
read -ra torch_flags <<< "$TORCH_FLAGS"
# the lowest threshold ends each run
TARGET="$(tr ' ' '\n' <<<"$THRESHOLDS" | sort -g | head -1)"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/crnn-ttq.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
bench_preprocess "$corpus" "$TMP/data"
mkdir -p "$(dirname "$OUT")" "$(dirname "$PICTURE")"

load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p'); $(date -u +%Y-%m-%dT%H:%MZ); load average $(load)"
echo "corpus: $corpus; thresholds: $THRESHOLDS; a validation every $VAL_EVERY iterations"
started=$(date +%s)

# reached METRICS LOSS: true once METRICS holds a validation at or below LOSS
reached() {
  [ -f "$1" ] && awk -v t="$2" '/"type": "val"/ { if (match($0, /"val_loss": [-+0-9.eE]+/) &&
      substr($0, RSTART + 12, RLENGTH - 12) + 0 <= t + 0) f = 1 } END { exit !f }' "$1"
}

if [[ " $RUN " == *" crnn "* ]]; then
  ccmd=(mpirun --oversubscribe -np "$RANKS" "$BIN/crnn-train" "${crnn_flags[@]}" -input_h5 "$TMP/data.h5"
        -input_json "$TMP/data.json" -gpu -1 -checkpoint_every "$VAL_EVERY" -print_every "$VAL_EVERY"
        -keep_last 1 -progress plain -checkpoint_name "$TMP/crnn/ck")
  echo "\$ ${ccmd[*]}"
  t0=$(date +%s)
  env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "${ccmd[@]}" > "$TMP/crnn.log" 2>&1 &
  pid=$!
  # stop it at the target or the time limit: mpirun passes SIGUSR1 to every rank, which
  # checkpoint and exit with 75
  while kill -0 "$pid" 2> /dev/null; do
    if reached "$TMP/crnn/ck_metrics.jsonl" "$TARGET" || [ $(($(date +%s) - t0)) -ge "$CRNN_SECONDS" ]; then
      kill -USR1 "$pid" 2> /dev/null || true
      break
    fi
    sleep 1
  done
  rc=0
  wait "$pid" || rc=$?
  if [ "$rc" != 0 ] && [ "$rc" != 75 ]; then
    echo "crnn-train failed (exit status $rc):"; tail -30 "$TMP/crnn.log"; exit 1
  fi
  echo "  crnn-train: $(($(date +%s) - t0)) s; $(grep -E '^crnn-train: (lstm|gru|rnn) ' "$TMP/crnn.log" | head -1 | sed 's/^crnn-train: //')"
fi

if [[ " $RUN " == *" torch "* ]]; then
  tcmd=("$PYTHON" "$HERE/torch_charrnn.py" --input_h5 "$TMP/data.h5" --input_json "$TMP/data.json"
        "${torch_flags[@]}" --epochs 50 --val_every "$VAL_EVERY" --target_loss "$TARGET"
        --max_seconds "$TORCH_SECONDS" --metrics "$TMP/torch_metrics.jsonl")
  echo "\$ ${tcmd[*]}"
  t0=$(date +%s)
  "${tcmd[@]}" > "$TMP/torch.log" 2>&1 || { echo "the PyTorch reference failed:"; tail -30 "$TMP/torch.log"; exit 1; }
  echo "  PyTorch: $(($(date +%s) - t0)) s; $(sed -n 's/^RESULT .*\(ms_per_iter=[0-9.]*\).*/\1/p' "$TMP/torch.log")"
fi
echo "load average at the end: $(load); the whole script: $(($(date +%s) - started)) s"

# the results name files of this checkout relative to its root, not where it lies on this machine
"$PYTHON" - "$TMP" "$OUT" "$PICTURE" "$THRESHOLDS" "$RUN" "$RANKS" "${CRNN_FLAGS//"$bench_root"\//}" "$TORCH_FLAGS" \
    "$corpus" "$VAL_EVERY" "$(load)" <<'EOF'
import json, os, shutil, subprocess, sys
tmp, out, picture, thresholds, run, ranks, crnn_flags, torch_flags, corpus, val_every, load = sys.argv[1:]
thresholds = sorted((float(t) for t in thresholds.split()), reverse=True)
runs = []
for key, name, path in (("crnn", "crnn-train, mpirun -np %s" % ranks, "crnn/ck_metrics.jsonl"),
                        ("torch", "PyTorch reference, 1 thread", "torch_metrics.jsonl")):
    if key not in run.split():
        continue
    curve, overhead = [], 0.0
    with open(os.path.join(tmp, path)) as f:
        for line in f:
            r = json.loads(line)
            if r.get("type") == "val":
                overhead += r.get("val_seconds", 0.0)
                curve.append({"iteration": r["iteration"], "time_s": r["time_s"],
                              "train_s": r["time_s"] - overhead, "val_loss": r["val_loss"]})
            elif r.get("type") == "checkpoint":
                overhead += r.get("seconds", 0.0)
    reached = {}
    for t in thresholds:
        hit = next((p for p in curve if p["val_loss"] <= t), None)
        reached["%.2f" % t] = hit and {"seconds": round(hit["time_s"], 1), "iteration": hit["iteration"],
                                       "training_seconds": round(hit["train_s"], 1)}
    runs.append({"implementation": key, "name": name,
                 "flags": crnn_flags if key == "crnn" else torch_flags, "curve": curve, "reached": reached})

print()
print("| validation loss | " + " | ".join(r["name"] for r in runs) + " |")
print("|---|" + "---|" * len(runs))
for t in thresholds:
    cells = []
    for r in runs:
        h = r["reached"]["%.2f" % t]
        cells.append("%.0f s (iteration %d; training only %.0f s)" % (h["seconds"], h["iteration"], h["training_seconds"])
                     if h else "- (not reached)")
    print("| %.2f | %s |" % (t, " | ".join(cells)))
print()
for r in runs:
    last = r["curve"][-1] if r["curve"] else None
    print("%s: %s; last validation %s" % (r["name"], r["flags"],
          "%.4f at iteration %d, %.0f s" % (last["val_loss"], last["iteration"], last["time_s"]) if last else "none"))
doc = {"benchmark": "time_to_quality", "corpus": os.path.basename(corpus), "thresholds": thresholds,
       "val_every": int(val_every), "load_average_at_end": load, "runs": runs}
with open(out, "w") as f:
    json.dump(doc, f, indent=1)
print("results: %s" % out)

if not shutil.which("gnuplot"):
    print("no gnuplot: no picture (apt-get install gnuplot-nox)")
    sys.exit(0)
colors = {"crnn": "#1f77b4", "torch": "#d62728"}
for r in runs:
    with open(os.path.join(tmp, r["implementation"] + ".dat"), "w") as f:
        for p in r["curve"]:
            f.write("%d %.3f %.6f\n" % (p["iteration"], p["time_s"], p["val_loss"]))
losses = [p["val_loss"] for r in runs for p in r["curve"]]
lo = min(losses + thresholds) - 0.03
hi = max(thresholds) + 0.5
g = ['set terminal pngcairo size 1400,560 font ",10"', 'set output "%s"' % picture,
     'set multiplot layout 1,2 title "validation loss on %s: time to %s"' % (
         os.path.basename(corpus).replace("_", "\\\\_"), ", ".join("%.2f" % t for t in thresholds)),
     "set grid", "set key top right", "set yrange [%.3f:%.3f]" % (lo, hi),
     'set ylabel "validation loss (nats per character)"']
for t in thresholds:
    g.append("set arrow from graph 0, first %.2f to graph 1, first %.2f nohead dt 2 lc rgb '#888888'" % (t, t))
for xcol, xlabel in ((2, "wall-clock seconds (validations and checkpoints included)"), (1, "iteration")):
    g.append('set xlabel "%s"' % xlabel)
    g.append("plot " + ", ".join(
        "'%s' using %d:3 with linespoints lw 2 pt 7 ps 0.6 lc rgb '%s' title '%s'" % (
            os.path.join(tmp, r["implementation"] + ".dat"), xcol, colors[r["implementation"]], r["name"])
        for r in runs if r["curve"]))
g.append("unset multiplot")
subprocess.run(["gnuplot"], input="\n".join(g) + "\n", text=True, check=True)
print("picture: %s" % picture)
EOF
