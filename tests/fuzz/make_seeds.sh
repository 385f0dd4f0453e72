#!/usr/bin/env bash
# Makes the fuzz targets' seed files that are binary (and so not kept in the repository):
#   tests/fuzz/make_seeds.sh BUILD_DIR OUT_DIR
# OUT_DIR/data_h5: .h5 files of crnn-preprocess (uint8 and uint32 tokens, utf-8 and bytes);
# OUT_DIR/json: their vocabularies; OUT_DIR/checkpoint: checkpoints of 2-iteration runs of
# crnn-train (lstm with an embedding, gru one-hot, rnn with RMSprop). Tiny models: seconds.
set -euo pipefail
build=$(cd "$1" && pwd)
out=$2
src=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$out/data_h5" "$out/json" "$out/checkpoint"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

# an ASCII text, a text of more than 255 characters (uint32 tokens), bytes
python=/usr/bin/python3
[ -x "$python" ] || python=python3
"$python" - "$work" <<'PY'
import sys, random
d = sys.argv[1]
r = random.Random(1)
words = "the quick brown fox jumps over a lazy dog and runs far away".split()
open(d + "/ascii.txt", "w").write(" ".join(r.choice(words) for _ in range(300)) + "\n")
chars = [chr(c) for c in range(0x3b1, 0x3b1 + 300)]
open(d + "/wide.txt", "w", encoding="utf-8").write("".join(r.choice(chars) for _ in range(800)))
open(d + "/bytes.bin", "wb").write(bytes(r.randrange(256) for _ in range(400)))
PY
"$build/crnn-preprocess" --input_txt "$work/ascii.txt" --output_h5 "$out/data_h5/ascii.h5" \
    --output_json "$out/json/ascii.json" --quiet
"$build/crnn-preprocess" --input_txt "$work/wide.txt" --output_h5 "$out/data_h5/wide.h5" \
    --output_json "$out/json/wide.json" --quiet
"$build/crnn-preprocess" --input_txt "$work/bytes.bin" --output_h5 "$out/data_h5/bytes.h5" \
    --output_json "$out/json/bytes.json" --encoding bytes --quiet

train() { # name, flags...
    local name=$1
    shift
    "$build/crnn-train" -input_h5 "$out/data_h5/ascii.h5" -input_json "$out/json/ascii.json" \
        -rnn_size 4 -num_layers 2 -batch_size 2 -seq_length 4 -max_iters 2 -checkpoint_every 2 \
        -print_every 0 -quiet 1 -gpu -1 -checkpoint_name "$work/$name" "$@" >/dev/null
    cp "$work/${name}_2.h5" "$out/checkpoint/$name.h5"
}
train lstm -model_type lstm -wordvec_size 3
train gru -model_type gru -wordvec_size 0 -num_layers 1
train rnn -model_type rnn -wordvec_size 2 -optimizer rmsprop
