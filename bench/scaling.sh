#!/usr/bin/env bash
# Communication of data- and tensor-parallel training on this machine: the
# `base` stage of configs/bench-cpu.yaml for a few steps in three shapes of
# 2 cores, at the same global batch:
#
#   1 rank x 2 threads    one process, train.threads=2
#   dp 2 x 1 thread       mpirun -np 2, parallel.tp=1
#   tp 2 x 1 thread       mpirun -np 2, parallel.tp=2
#
# and a table of ms/step (median of the timed steps; with REPS > 1 the best
# repetition, the shapes run in turn so none always meets the same
# background load), tokens/s, the share of
# the step spent in collectives, and the payload bytes per step and rank on
# the dp and tp groups (the comm_* fields of the training log, rank 0)
# against those bench/scaling_model.py predicts. A shape that fails is
# reported with the first line of its error, and the others still run.
#
#   bench/scaling.sh [path/to/rediff]
# env: STEPS (12) optimizer steps per shape, WARMUP (2) first steps not
#      timed, BATCH (2) global batch, REPS (1) runs of each shape,
#      CONFIG (configs/bench-cpu.yaml),
#      OUT (scaling.json) the measured numbers, for
#      bench/scaling_model.py --measured OUT.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
rediff=${1:-$here/build/rediff}
STEPS=${STEPS:-12}
WARMUP=${WARMUP:-2}
BATCH=${BATCH:-2}
REPS=${REPS:-1}
CONFIG=${CONFIG:-$here/configs/bench-cpu.yaml}
OUT=${OUT:-scaling.json}
PY=/usr/bin/python3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
[ -x "$rediff" ] || { echo "scaling.sh: $rediff is not an executable (build it, or pass its path)" >&2; exit 1; }
[ "$STEPS" -gt "$WARMUP" ] || { echo "scaling.sh: STEPS ($STEPS) must exceed WARMUP ($WARMUP)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Few samples (the steps read STEPS x BATCH of them); one held-out batch
# before the first and after the last step, outside the timed steps; one
# checkpoint, after the last step.
common=(-c "$CONFIG" --set data.n_train=1024 --set data.n_eval=256 --set data.shard_size=1024
        --set train.batch_size="$BATCH" --set base.steps="$STEPS" --set train.eval_every="$STEPS"
        --set train.eval_batches=1 --set train.ckpt_every="$STEPS")
"$rediff" data synth "${common[@]}" --run-dir "$tmp/data-run" >/dev/null
"$rediff" config show "${common[@]}" >"$tmp/config.yaml"

# run ID.REP RANKS TP THREADS: one shape in its own run folder (same data).
# Leaves $tmp/ID.REP.status: ok, or why the shape is not available.
run() {
  local name=$1 ranks=$2 tp=$3 threads=$4 dir=$tmp/$1
  mkdir -p "$dir"
  cp -r "$tmp/data-run/data" "$dir/"
  local cmd=("$rediff" base "${common[@]}" --run-dir "$dir" --set parallel.ranks="$ranks" --set parallel.tp="$tp"
             --set train.threads="$threads")
  [ "$ranks" -gt 1 ] && cmd=(mpirun -np "$ranks" --oversubscribe "${cmd[@]}")
  echo "== $name: ${cmd[*]}" >&2
  if "${cmd[@]}" 2>"$dir/stderr"; then
    echo ok >"$tmp/$name.status"
  else
    echo "failed: $(grep -m1 'rediff' "$dir/stderr" || tail -n1 "$dir/stderr")" >"$tmp/$name.status"
  fi
  echo "   $(cat "$tmp/$name.status")" >&2
}
# The machine may be shared: its load is part of the result.
load_before=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo null)
for rep in $(seq "$REPS"); do
  if [ $((rep % 2)) = 1 ]; then order="one dp2 tp2"; else order="tp2 dp2 one"; fi
  for id in $order; do
    case $id in
      one) run "one.$rep" 1 1 2 ;;
      dp2) run "dp2.$rep" 2 1 1 ;;
      tp2) run "tp2.$rep" 2 2 1 ;;
    esac
  done
done
load_after=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo null)

"$PY" - "$tmp" "$OUT" "$(realpath --relative-to="$here" "$CONFIG" 2>/dev/null || echo "$CONFIG")" \
  "$STEPS" "$WARMUP" "$load_before" "$load_after" "$(nproc)" "$REPS" <<'PY'
import json, os, re, statistics, sys
tmp, out, config, steps, warmup = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
reps = int(sys.argv[9])
load = [json.loads(x) for x in sys.argv[6:8]]
shapes = [("one", "1 rank x 2 threads", 1, 1, 2), ("dp2", "dp 2 x 1 thread", 2, 1, 1),
          ("tp2", "tp 2 x 1 thread", 2, 2, 1)]
vocab = sum(1 for _ in open(os.path.join(tmp, "data-run", "data", "vocab.txt")))
res = {"config": config, "steps": steps, "warmup": warmup, "reps": reps, "vocab": vocab,
       "cores": int(sys.argv[8]), "load_avg_1min": load,
       "config_yaml": open(os.path.join(tmp, "config.yaml")).read(), "shapes": []}


def measure(d):
    """The timed steps of one run folder (rank 0's log)."""
    err = open(os.path.join(d, "stderr")).read()
    p, mb = re.search(r"(\d+) parameters", err), re.search(r"micro-batch (\d+)", err)
    lines = [json.loads(l) for l in open(os.path.join(d, "logs", "base.jsonl"))]
    timed = [l for l in lines if l["kind"] == "train" and l["step"] > warmup]
    med = lambda k: statistics.median(l[k] for l in timed)
    return {
        "n_params": int(p.group(1)) if p else None,
        "micro": int(mb.group(1)) if mb else None,
        "timed_steps": len(timed),
        "step_s": med("step_s"),
        # tokens per step from the log's own rate: batch x T
        "tokens_per_step": round(timed[0]["tokens_per_s"] * timed[0]["step_s"]),
        # the share of the timed steps' wall time spent inside collectives
        "comm_share": sum(l["comm_dp_s"] + l["comm_tp_s"] for l in timed) / sum(l["step_s"] for l in timed),
        "dp_s": med("comm_dp_s"), "tp_s": med("comm_tp_s"),
        "dp_bytes": int(med("comm_dp_bytes")), "tp_bytes": int(med("comm_tp_bytes")),
        "bytes_vary": len({(l["comm_dp_bytes"], l["comm_tp_bytes"]) for l in timed}) > 1,
    }

for sid, name, ranks, tp, threads in shapes:
    s = {"name": name, "ranks": ranks, "tp": tp, "dp": ranks // tp, "threads": threads}
    runs, status = [], None
    for r in range(1, reps + 1):
        st = open(os.path.join(tmp, f"{sid}.{r}.status")).read().strip()
        if st == "ok":
            runs.append(measure(os.path.join(tmp, f"{sid}.{r}")))
        else:
            status = status or st
    s["status"] = "ok" if runs else status
    if runs:
        # the quietest repetition; the others' medians show the noise
        best = min(runs, key=lambda x: x["step_s"])
        s.update(best)
        s["step_s_reps"] = [x["step_s"] for x in runs]
        s["bytes_vary"] = best["bytes_vary"] or len({(x["dp_bytes"], x["tp_bytes"]) for x in runs}) > 1
    res["shapes"].append(s)
tmpout = out + ".tmp"
with open(tmpout, "w") as f:
    json.dump(res, f, indent=1)
os.replace(tmpout, out)
PY
"$PY" "$here/bench/scaling_model.py" --measured "$OUT"
echo "measured numbers: $OUT"
# A shape that failed for any other reason than a missing feature is an error.
if grep -l '^failed' "$tmp"/*.status >/dev/null 2>&1; then
  echo "scaling.sh: some runs failed (see above)" >&2
  exit 1
fi
