#!/usr/bin/env bash
# The paper's ablations on ShapesCap, from one finished tiny pipeline run:
# every variant shares that run's data and base model and gets the same step
# counts, so the rows differ only in what the table names.
#
#   bash bench/experiment.sh RUN_DIR [CONFIG]
#
# RUN_DIR must hold a finished `rediff pipeline` (base, mask, stage1, one
# round of stage2, eval). Variants go to RUN_DIR-<variant>/ and the merged
# table to RUN_DIR/eval/experiment.md:
#   stage1-syntax   Stage I with syntax noise only      (paper: Table of Stage I settings)
#   stage1-halluc   Stage I with hallucinations only
#   stage2-only     one round of Stage II from base, no Stage I  (paper: stage ablation)
#   stage2_r2       a second round after stage2_r1       (paper: rounds table)
set -euo pipefail
run=${1:?usage: bench/experiment.sh RUN_DIR [CONFIG]}
cfg=${2:-configs/tiny.yaml}
here=$(cd "$(dirname "$0")/.." && pwd)
rediff=${REDIFF:-$here/build/rediff}
# The stages run on RANKS data-parallel ranks, as the pipeline runs them.
ranks=${RANKS:-2}
launch=()
[ "$ranks" -gt 1 ] && launch=(mpirun --oversubscribe -np "$ranks")
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
for m in base mask stage1 stage2.r1 eval; do
  [ -f "$run/done/$m" ] || { echo "experiment: $run/done/$m is missing: run rediff pipeline first" >&2; exit 1; }
done

# A variant's run folder: the shared data and base model, nothing else.
variant() {
  local dir="$run-$1"
  mkdir -p "$dir/done" "$dir/ckpt"
  [ -e "$dir/data" ] || cp -r "$run/data" "$dir/data"
  [ -e "$dir/ckpt/base" ] || cp -r "$run/ckpt/base" "$dir/ckpt/base"
  cp "$run/done/data" "$run/done/base" "$dir/done/"
  echo "$dir"
}
step() { echo "experiment: $*" >&2; "${launch[@]}" "$rediff" "$@" >/dev/null 2>>"$run/logs/experiment.log"; }

# Stage I ablation rows: same steps, one kind of noise each.
for v in syntax halluc; do
  d=$(variant "stage1-$v")
  if [ $v = syntax ]; then noise=(--set stage1.hallucination=false); else noise=(--set stage1.syntax=false); fi
  step stage1 -c "$cfg" --run-dir "$d" "${noise[@]}"
  step eval -c "$cfg" --run-dir "$d" "${noise[@]}" --set "eval.models=[stage1]"
done

# Stage II alone: the round starts from base (its checkpoint stands in for
# Stage I's), drafts, revisions and fine-tuning as in the main run.
d=$(variant stage2-only)
[ -e "$d/ckpt/stage1" ] || cp -r "$run/ckpt/base" "$d/ckpt/stage1"
cp "$run/done/base" "$d/done/stage1"
step draft -c "$cfg" --run-dir "$d" --round 1
step expert -c "$cfg" --run-dir "$d" --round 1
step stage2 -c "$cfg" --run-dir "$d" --round 1
step eval -c "$cfg" --run-dir "$d" --set "eval.models=[stage2_r1]"

# A second round on the main run.
two=(--set stage2.rounds=2)
step draft -c "$cfg" --run-dir "$run" "${two[@]}" --round 2
step expert -c "$cfg" --run-dir "$run" "${two[@]}" --round 2
step stage2 -c "$cfg" --run-dir "$run" "${two[@]}" --round 2
d=$(variant rounds)
cp -r "$run/ckpt/stage2_r2" "$d/ckpt/" 2>/dev/null || true
step eval -c "$cfg" --run-dir "$d" "${two[@]}" --set "eval.models=[stage2_r2]"

/usr/bin/python3 "$here/bench/experiment_table.py" "$run" >"$run/eval/experiment.md"
cat "$run/eval/experiment.md"
