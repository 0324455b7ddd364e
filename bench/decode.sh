#!/usr/bin/env bash
# Decoding speed of the tiny model (configs/tiny.yaml's shape): captions/s and
# forward passes/s at 1, 2, 4, 8 tokens per step, and the cost of one step in
# refine mode relative to remask, all measured in the same `rediff eval` run.
# Decoding speed does not depend on how well the model is trained, so a
# 1-step model is enough.
#
#   bench/decode.sh [path/to/rediff] [extra --set options ...]
#   e.g. bench/decode.sh build/rediff --set eval.batch=16 --set train.threads=2
#   CONFIG=configs/bench-cpu.yaml bench/decode.sh build/rediff --set eval.n_samples=4 --set eval.batch=4
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
rediff=${1:-$here/build/rediff}
shift || true
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
config=${CONFIG:-$here/configs/tiny.yaml}
common=(-c "$config" --run-dir "$tmp/run" --set data.n_train=256 --set data.n_eval=128
        --set data.shard_size=256 --set eval.n_samples=64 --set eval.batch=32 --set draft.n_samples=256 "$@")
"$rediff" data synth "${common[@]}" >/dev/null
"$rediff" base "${common[@]}" --set base.steps=1 --set train.ckpt_every=1 2>/dev/null
"$rediff" eval "${common[@]}" --set "eval.models=[base]" --set "eval.modes=[refine, remask]" \
  --set "eval.tokens_per_step=[1, 2, 4, 8]" >/dev/null 2>"$tmp/eval.err" || { cat "$tmp/eval.err"; exit 1; }
/usr/bin/python3 - "$tmp/run/eval/results.json" "$(basename "$config")" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))["rows"]
by = {(r["mode"], r["tokens_per_step"]): r for r in rows}
tps = sorted({r["tokens_per_step"] for r in rows})
n = rows[0]["n_samples"]
print(f"decoding speed, {sys.argv[2]}, {n} captions of {json.load(open(sys.argv[1]))['gen_len']} tokens")
print("| tok/step | steps | captions/s refine | captions/s remask | speed-up vs 1 tok/step (remask) "
      "| fwd passes/s refine | fwd passes/s remask | step cost refine / remask |")
print("|---|---|---|---|---|---|---|---|")
base = by[("remask", tps[0])]["captions_per_s"]
for t in tps:
    a, b = by[("refine", t)], by[("remask", t)]
    ratio = b["forward_passes_per_s"] / a["forward_passes_per_s"]
    print(f"| {t} | {a['steps']} | {a['captions_per_s']:.3g} | {b['captions_per_s']:.3g} | "
          f"{b['captions_per_s'] / base:.2f}x | {a['forward_passes_per_s']:.1f} | {b['forward_passes_per_s']:.1f} | "
          f"{ratio:.3f} |")
PY
