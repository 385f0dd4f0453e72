#!/usr/bin/env bash
# crnn on one GPU against PyTorch's nn.LSTM (cuDNN): the same model (embedding 64, L LSTM layers
# of H, linear decoder), data (crnn-preprocess's split of one text), batch and optimiser (Adam
# 2e-3, elementwise clamp 5), for 2x128, 2x512 and 3x1024 at B=50 and B=256 (S=50); crnn also
# without its recurrences' CUDA graphs (CRNN_CUDA_GRAPHS=0) and with its gradients through NCCL
# over one rank (CRNN_NCCL=1). Prints a markdown table:
# ms/iter and chars/s in steady state, and the GPU memory the run took.
#
#   benchmarks/gpu_bench.sh [BUILD_DIR]     (default build-gpu; after gpu_setup.sh build)
#
# crnn's time is the median of its per-window chars/s (-print_every windows, the first left out);
# PyTorch's is timed after warm-up steps with the GPU synchronised. Memory: for both, the peak
# of nvidia-smi's memory.used during the run less the value before it (so the CUDA context
# counts for both); for PyTorch also its allocator's peak. Set ITERS to change the step count.
set -euo pipefail
cd "$(dirname "$0")/.."
. benchmarks/lib.sh
BUILD=${1:-build-gpu}
BIN=$PWD/$BUILD
bin=$BIN
ITERS=${ITERS:-300}
WORK=$(mktemp -d /tmp/crnn-gpu-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
[ -x "$BIN/crnn-train" ] || { echo "gpu_bench: no $BIN/crnn-train: run benchmarks/gpu_setup.sh build first" >&2; exit 1; }
# crnn's libraries from gpu_setup.sh's prefix; PyTorch keeps the machine's own library path
TORCH_LD_LIBRARY_PATH=${LD_LIBRARY_PATH-}
if [ -f carry/prefix/usr/bin/mpicc ]; then eval "$(benchmarks/gpu_setup.sh env)"; fi

# ~6 MB of English-like text (no data set on the machine): words drawn with Zipf-like weights
python3 - "$WORK/input.txt" <<'PY'
import random, sys
rng = random.Random(7)
words = ("the of and to a in that is was he for it with as his on be at by I this had not are but from or "
         "have an they which one you were her all she there would their we him been has when who will more "
         "no if out so said what up its about into than them can only other new some could time these two "
         "may then do first any my now such like our over man me even most made after also did many before "
         "must through back years where much your way well down should because each just those people").split()
weights = [1.0 / (k + 1) for k in range(len(words))]
out, n = [], 0
while n < 6_000_000:
    line = " ".join(rng.choices(words, weights, k=rng.randint(4, 14))).capitalize() + rng.choice(".,;!?") + "\n"
    out.append(line)
    n += len(line)
open(sys.argv[1], "w").write("".join(out))
PY
bench_preprocess "$WORK/input.txt" "$WORK/d"
V=$(python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print(len(j['idx_to_token']))" "$WORK/d.json")

smi_used() { nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 | head -1; }
# runs "$@" while sampling memory.used; prints the peak above the value before, in MiB
with_peak() {
    local before peak=0 pid u
    before=$(smi_used)
    "$@" > "$WORK/out" 2> "$WORK/err" &
    pid=$!
    while kill -0 $pid 2>/dev/null; do
        u=$(smi_used); [ "$u" -gt "$peak" ] && peak=$u
        sleep 0.2
    done
    wait $pid || { echo "gpu_bench: failed: $*" >&2; cat "$WORK/out" "$WORK/err" >&2; return 1; }
    echo $((peak > before ? peak - before : 0))
}

crnn_row() { # H L B label [env...]
    local H=$1 L=$2 B=$3 label=$4; shift 4
    local every=$((ITERS / 6)) mib
    mib=$(with_peak env "$@" "$BIN/crnn-train" -input_h5 "$WORK/d.h5" -input_json "$WORK/d.json" -gpu 0 \
        -model_type lstm -wordvec_size 64 -rnn_size "$H" -num_layers "$L" -batch_size "$B" -seq_length 50 \
        -max_iters "$ITERS" -print_every "$every" -checkpoint_every 0 -checkpoint_name "$WORK/ck" -progress plain)
    grep -q "no CUDA device\|no CUDA backend" "$WORK/err" && { echo "gpu_bench: crnn did not run on the GPU:" >&2; cat "$WORK/err" >&2; exit 1; }
    python3 - "$WORK/out" "$B" "$H" "$L" "$label" "$mib" <<'PY'
import re, statistics, sys
out, B, H, L, label, mib = open(sys.argv[1]).read(), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
cps = [float(m) for m in re.findall(r"loss = \S+, (\d+) chars/s", out)][1:]
c = statistics.median(cps)
print(f"| {L}x{H} | {B} | 50 | {label} | {B * 50 / c * 1e3:.2f} | {c:,.0f} | {mib} | - |")
PY
}

torch_row() { # H L B
    local H=$1 L=$2 B=$3 mib
    mib=$(with_peak env LD_LIBRARY_PATH="$TORCH_LD_LIBRARY_PATH" python3 benchmarks/torch_gpu_lstm.py --input_h5 "$WORK/d.h5" --vocab "$V" --rnn_size "$H" \
        --num_layers "$L" --batch_size "$B" --seq_length 50 --iters "$ITERS")
    python3 - "$WORK/out" "$B" "$H" "$L" "$mib" <<'PY'
import re, sys
out, B, H, L, mib = open(sys.argv[1]).read(), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
m = dict(re.findall(r"(\S+)=(\S+)", out))
print(f"| {L}x{H} | {B} | 50 | PyTorch nn.LSTM (cuDNN) | {float(m['ms/iter']):.2f} | {float(m['chars/s']):,.0f} | {mib} | {m['peak_mib']} |")
PY
}

echo "GPU: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1); vocabulary $V; $ITERS steps each"
echo
echo "| model | B | S | implementation | ms/iter | chars/s | GPU MiB (nvidia-smi) | allocator peak MiB |"
echo "|---|---|---|---|---|---|---|---|"
for B in 50 256; do
    for HL in "128 2" "512 2" "1024 3"; do
        set -- $HL
        crnn_row "$1" "$2" "$B" "crnn (cuBLAS + fused kernels, recurrences as CUDA graphs)"
        crnn_row "$1" "$2" "$B" "crnn, every launch issued directly" CRNN_CUDA_GRAPHS=0
        crnn_row "$1" "$2" "$B" "crnn, gradients through NCCL (1 rank)" CRNN_NCCL=1
        torch_row "$1" "$2" "$B"
    done
done
