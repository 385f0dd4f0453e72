#!/usr/bin/env bash
# Model quality: torch-rnn's default model (LSTM 2x128, wordvec 64, B=50, S=50, Adam 2e-3,
# clamp 5) on tiny-shakespeare, crnn-train vs the PyTorch reference trained the same way
# (benchmarks/torch_charrnn.py: same batching, same torch-rnn initialisation distribution,
# different random draws).
#
#   CRNN_CORPUS=data/tinyshakespeare/input.txt benchmarks/quality_tinyshakespeare.sh [BUILD_DIR]
#
# Checks: crnn's validation loss after epoch 1 is within 0.05 of the reference's (expected
# about 1.96), and crnn's keeps falling over epochs 2 and 3. Exit status 0 when both hold.
# Environment: CRNN_CORPUS (tiny-shakespeare's input.txt; benchmarks/lib.sh), EPOCHS (3),
# TORCH_THREADS (1), PYTHON (/usr/bin/python3).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/lib.sh"
bench_bin "${1:-}" crnn-preprocess crnn-train crnn-eval
BIN=$bin
bench_corpus
PYTHON="${PYTHON:-/usr/bin/python3}"
EPOCHS="${EPOCHS:-3}"
TORCH_THREADS="${TORCH_THREADS:-1}"

TMP="$(mktemp -d /tmp/crnn-quality.XXXXXX)"
trap 'rm -rf "$TMP"' EXIT
bench_preprocess "$corpus" "$TMP/ts"

# batches per epoch, torch-rnn's way: num - extra tokens, extra = num mod (B*S) or B*S
PER_EPOCH="$("$PYTHON" -c "
import h5py; n = h5py.File('$TMP/ts.h5', 'r')['train'].shape[0]; e = n % 2500 or 2500
print((n - e) // 2500)")"
echo "train batches per epoch: $PER_EPOCH"

cmd=("$BIN/crnn-train" -input_h5 "$TMP/ts.h5" -input_json "$TMP/ts.json" -max_epochs "$EPOCHS"
     -checkpoint_every "$PER_EPOCH" -checkpoint_name "$TMP/cv/ck" -print_every 50 -gpu -1)
echo "\$ ${cmd[*]}"
start=$(date +%s)
"${cmd[@]}" > "$TMP/crnn.log" 2>&1 || { tail -30 "$TMP/crnn.log"; exit 1; }
echo "  crnn-train: $(( $(date +%s) - start )) s; $(grep -E '^done: ' "$TMP/crnn.log" | tail -1)"
grep -E 'val loss' "$TMP/crnn.log" | sed 's/^/  /' || true

CRNN_VAL=()
for e in $(seq 1 "$EPOCHS"); do
  ck="$TMP/cv/ck_$(( e * PER_EPOCH )).h5"
  [ -f "$ck" ] || { echo "missing checkpoint $ck"; ls "$TMP/cv"; exit 1; }
  # crnn-eval on the checkpoint: the same number as the run's validation line, read back
  v="$("$BIN/crnn-eval" -checkpoint "$ck" -input_h5 "$TMP/ts.h5" -input_json "$TMP/ts.json" \
        -split val -gpu -1 2>&1 | sed -nE 's/.*val loss = ([-0-9.eE+naif]+).*/\1/p' | tail -1)"
  [ -n "$v" ] || { echo "crnn-eval printed no 'val loss = ' for $ck"; exit 1; }
  CRNN_VAL+=("$v")
done

pcmd=("$PYTHON" "$HERE/torch_charrnn.py" --input_h5 "$TMP/ts.h5" --input_json "$TMP/ts.json"
      --rnn_size 128 --num_layers 2 --epochs 1 --val_every_epoch 1 --threads "$TORCH_THREADS")
echo "\$ ${pcmd[*]}"
start=$(date +%s)
"${pcmd[@]}" > "$TMP/torch.log" 2>&1 || { tail -30 "$TMP/torch.log"; exit 1; }
echo "  PyTorch: $(( $(date +%s) - start )) s"
REF="$(sed -nE 's/^EPOCH 1 .*val_loss=([0-9.]+).*/\1/p' "$TMP/torch.log")"
[ -n "$REF" ] || { cat "$TMP/torch.log"; exit 1; }

echo
echo "| epoch | crnn val loss | PyTorch reference val loss |"
echo "|---|---|---|"
for e in $(seq 1 "$EPOCHS"); do
  if [ "$e" = 1 ]; then r="$REF"; else r="-"; fi
  echo "| $e | ${CRNN_VAL[$((e - 1))]} | $r |"
done
echo
status=0
if awk -v a="${CRNN_VAL[0]}" -v b="$REF" 'BEGIN{d=a-b; if (d<0) d=-d; exit !(d <= 0.05)}'; then
  echo "PASS epoch 1: crnn ${CRNN_VAL[0]} vs reference $REF (within 0.05)"
else
  echo "FAIL epoch 1: crnn ${CRNN_VAL[0]} vs reference $REF (differ by more than 0.05)"; status=1
fi
for e in $(seq 2 "$EPOCHS"); do
  if awk -v a="${CRNN_VAL[$((e - 1))]}" -v b="${CRNN_VAL[$((e - 2))]}" 'BEGIN{exit !(a < b)}'; then
    echo "PASS epoch $e: crnn val loss fell to ${CRNN_VAL[$((e - 1))]}"
  else
    echo "FAIL epoch $e: crnn val loss ${CRNN_VAL[$((e - 1))]} did not fall below ${CRNN_VAL[$((e - 2))]}"; status=1
  fi
done
exit $status
