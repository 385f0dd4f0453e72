#!/usr/bin/env bash
# The demo: preprocess the fortunes Debian ships, train the default LSTM (2 x 128) for one
# epoch on the CPU with two MPI ranks (25 streams each: torch-rnn's batch of 50), and sample
# from it. Usage: launch/demo.sh [BUILD_DIR] [WORK_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=$(cd "${1:-$here/build}" && pwd)
work=${2:-$here/demo}
fortunes=/usr/share/games/fortunes
[ -d "$fortunes" ] || { echo "demo: $fortunes is missing: install Debian's 'fortunes' package (launch/deps.sh)" >&2; exit 1; }
mkdir -p "$work"
find "$fortunes" -maxdepth 1 -type f ! -name '*.dat' ! -name '*.u8' | sort | xargs cat > "$work/fortunes.txt"
"$bin/crnn-preprocess" --input_txt "$work/fortunes.txt" --output_h5 "$work/fortunes.h5" --output_json "$work/fortunes.json"
# Open MPI refuses root unless told it is meant
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
mpirun --oversubscribe -np 2 "$bin/crnn-train" -input_h5 "$work/fortunes.h5" -input_json "$work/fortunes.json" \
  -gpu -1 -batch_size 25 -max_epochs 1 -print_every 50 -checkpoint_every 400 -checkpoint_name "$work/cv/checkpoint"
last=$(ls -t "$work"/cv/checkpoint_*.h5 | head -n 1)
echo "--- a sample from $last ---"
"$bin/crnn-sample" -checkpoint "$last" -length 600 -temperature 0.8 -gpu -1
