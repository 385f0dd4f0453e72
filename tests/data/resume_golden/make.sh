#!/usr/bin/env bash
# How tests/data/resume_golden was made (tests/test_golden.py checks it; do not rerun unless a
# change of the numerics is meant, with the parity tests as the judge). Run from this folder with
# a build's programs in $CRNN_BIN; writes data.h5, data.json, ck_10.h5 and expected.json.
set -euo pipefail
B=${CRNN_BIN:?the build folder}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
/usr/bin/python3 - "$T/text.txt" <<'PYEOF'
import random, sys
random.seed(16)
words = ("the of and to in a is that for it as was with be by on not he this are or his from at "
         "which but have an they you were her she there one all we their").split()
lines = [" ".join(random.choice(words) for _ in range(random.randint(3, 9))).capitalize() + random.choice(".,!?")
         for _ in range(1500)]
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
PYEOF
"$B/crnn-preprocess" --input_txt "$T/text.txt" --output_h5 data.h5 --output_json data.json --quiet
export OPENBLAS_NUM_THREADS=1
"$B/crnn-train" -input_h5 data.h5 -input_json data.json -gpu -1 -model_type lstm -rnn_size 32 -num_layers 2 \
  -wordvec_size 16 -dropout 0.2 -batch_size 4 -seq_length 16 -max_iters 10 -checkpoint_every 10 -print_every 1 \
  -checkpoint_name "$T/ck" -progress plain -seed 7 -quiet
cp "$T/ck_10.h5" ck_10.h5
"$B/crnn-train" -resume ck_10.h5 -input_h5 data.h5 -input_json data.json -gpu -1 -max_iters 30 -checkpoint_every 10 \
  -print_every 1 -checkpoint_name "$T/cont" -progress plain -quiet 0 > "$T/out.txt"
/usr/bin/python3 - "$T" "$B" <<'PYEOF'
import json, subprocess, sys
sys.path.insert(0, "../..")
from test_golden import kernel
T, B = sys.argv[1:]
recs = [json.loads(l) for l in open(f"{T}/cont_metrics.jsonl")]
json.dump({"kernel": kernel(),
           "written_by": subprocess.run([f"{B}/crnn-train", "--version"], capture_output=True, text=True).stdout.strip(),
           "train_loss": {r["iteration"]: r["loss"] for r in recs if r["type"] == "train"},
           "val_loss": {r["iteration"]: r["val_loss"] for r in recs if r["type"] == "val"},
           "printed": [l for l in open(f"{T}/out.txt").read().splitlines() if "loss = " in l]},
          open("expected.json", "w"), indent=1)
PYEOF
