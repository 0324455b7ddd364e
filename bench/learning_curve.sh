#!/usr/bin/env bash
# The base model's learning curve: one base run of STEPS steps that keeps a
# checkpoint every EVERY steps, then `rediff eval` of each checkpoint (base,
# remask, 1 token per step, N held-out images) with the blind control, the
# bootstrap interval and the probe (on the same N images, each with its own
# image / another's), beside the held-out loss of the training log.
# Prints one row per checkpoint; the run folder is kept for more looks.
#
#   bench/learning_curve.sh RUN_DIR STEPS [--set key=value ...]
#   e.g. bench/learning_curve.sh runs/lc 9000 --set model.image_heads=2 \
#          --set model.vision_fan_in=true --set model.vision_layers=0
# Environment: EVERY (1500), N (200 eval images), RANKS (2), CONFIG
# (configs/tiny.yaml), REDIFF (build/rediff).
set -euo pipefail
run=${1:?usage: bench/learning_curve.sh RUN_DIR STEPS [--set ...]}
steps=${2:?usage: bench/learning_curve.sh RUN_DIR STEPS [--set ...]}
shift 2
here=$(cd "$(dirname "$0")/.." && pwd)
rediff=${REDIFF:-$here/build/rediff}
cfg=${CONFIG:-$here/configs/tiny.yaml}
every=${EVERY:-1500}
n=${N:-200}
ranks=${RANKS:-2}
launch=()
[ "$ranks" -gt 1 ] && launch=(mpirun --oversubscribe -np "$ranks")
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
sets=(--set "base.steps=$steps" "$@")

"$rediff" data synth -c "$cfg" --run-dir "$run" "${sets[@]}" >/dev/null
# The checkpoints of the curve are kept (train.keep); probes every EVERY / 2.
"${launch[@]}" "$rediff" base -c "$cfg" --run-dir "$run" "${sets[@]}" --set "train.ckpt_every=$every" \
  --set train.keep=1000 --set "train.eval_every=$((every / 2))" --set train.eval_batches=16 2>"$run/base.err"

# Each checkpoint is evaluated in a folder of its own that holds only it.
ev=(--set "eval.models=[base]" --set "eval.modes=[remask]" --set "eval.tokens_per_step=[1]" --set "eval.n_samples=$n")
for ck in "$run"/ckpt/base/step-*.h5; do
  s=$(basename "$ck" .h5)
  d="$run/curve/$s"
  rm -rf "$d"
  mkdir -p "$d/ckpt/base" "$d/done"
  ln -s "$run/data" "$d/data"
  cp "$run/done/data" "$run/done/base" "$d/done/"
  ln "$ck" "$d/ckpt/base/"
  echo "$s.h5" >"$d/ckpt/base/LATEST"
  "${launch[@]}" "$rediff" eval -c "$cfg" --run-dir "$d" "${sets[@]}" "${ev[@]}" >/dev/null 2>"$d/eval.err" \
    || { cat "$d/eval.err"; exit 1; }
done

/usr/bin/python3 - "$run" <<'PY'
import glob, json, os, sys
run = sys.argv[1]
log = [json.loads(l) for l in open(os.path.join(run, "logs/base.jsonl"))]
probe = {r["step"]: r for r in log if r.get("kind") == "eval"}
kinds = ["count", "colour", "shape", "size", "position"]
print("| step | held-out loss | F1 [95% CI] | F1 blind | " + " | ".join(kinds) + " |")
print("|---|---|---|---|" + "---|" * len(kinds))
for d in sorted(glob.glob(os.path.join(run, "curve/step-*"))):
    step = int(os.path.basename(d).split("-")[1])
    res = json.load(open(os.path.join(d, "eval/results.json")))
    r, pr = res["rows"][0], res["probe"][0]
    p = probe.get(step, {})
    # the probe of the eval's own N images, with each image and with another's
    cells = ["%.2f / %.2f" % (pr["image"].get(k, float("nan")), pr["blind"].get(k, float("nan"))) for k in kinds]
    print("| %d | %.3f | %.3f [%.3f, %.3f] | %.3f | %s |" % (
        step, p.get("loss", float("nan")), r["f1"], r["f1_ci"][0], r["f1_ci"][1], r["f1_blind"], " | ".join(cells)))
PY
