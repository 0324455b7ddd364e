#!/usr/bin/env bash
# The whole tiny pipeline (short steps) as a chain of Slurm jobs on a local
# single-node cluster, 2 MPI ranks per job under srun --mpi=pmix: every job
# completes in order and the evaluation equals `rediff pipeline` run with the
# same config on this machine.
set -euo pipefail
: "${REDIFF:?}" "${RD_SOURCE_DIR:?}"
if ! command -v sbatch >/dev/null 2>&1 || ! [ -x /usr/sbin/slurmctld ]; then
  echo "skipped: slurm-wlm is not installed (apt-get install slurm-wlm munge)"
  exit 0
fi
tmp=$(mktemp -d)
cluster="$RD_SOURCE_DIR/slurm/local-cluster.sh"
trap '"$cluster" down "$tmp/cluster" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
eval "$("$cluster" up "$tmp/cluster")"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cfg="$RD_SOURCE_DIR/configs/tiny.yaml"
sets=(--set data.n_train=1500 --set data.n_eval=96 --set data.shard_size=512
      --set model.d_model=64 --set model.n_layers=2 --set model.d_ff=128 --set model.vision_d=64
      --set model.vision_d_ff=128 --set train.batch_size=16 --set train.eval_batches=2
      --set train.eval_every=40 --set train.ckpt_every=20
      --set base.steps=80 --set stage1.steps=30 --set stage2.steps=30
      --set draft.n_samples=48 --set draft.step_counts=[64,8] --set eval.n_samples=32 --set eval.batch=16
      --set eval.tokens_per_step=[1,8] --set parallel.ranks=2 --set slurm.tasks_per_node=2
      --set slurm.time=00:10:00 --set slurm.signal_lead_s=30)
state_of() { scontrol show job -o "$1" | sed -n 's/.* JobState=\([A-Z_]*\) .*/\1/p'; }

run="$tmp/chain"
t0=$SECONDS
"$REDIFF" submit -c "$cfg" --run-dir "$run" "${sets[@]}" >"$tmp/submit.txt"
ids=$(sed -n 's/.*"job_id": "\([0-9]*\)".*/\1/p' "$run/slurm/chain.json")
[ "$(echo "$ids" | wc -w)" = 8 ] || { cat "$tmp/submit.txt"; fail "want 8 jobs"; }
last=$(echo "$ids" | tail -n 1)
for ((t = 0; t < 2400; t++)); do
  case "$(state_of "$last")" in PENDING | RUNNING | CONFIGURING | COMPLETING | REQUEUED | "") sleep 0.25 ;; *) break ;; esac
done
for id in $ids; do
  st=$(state_of "$id")
  [ "$st" = COMPLETED ] || { "$REDIFF" status --run-dir "$run"; fail "job $id ended $st"; }
done
grep -q "micro-batch 8" "$run"/slurm/logs/*-stage2.r1.*.err || fail "stage2 did not run on 2 data-parallel ranks"
echo "the Slurm chain of 8 jobs took $((SECONDS - t0)) s"
t0=$SECONDS

"$REDIFF" pipeline -c "$cfg" --run-dir "$tmp/local" "${sets[@]}" >/dev/null 2>"$tmp/local.err" \
  || { tail -20 "$tmp/local.err"; fail "rediff pipeline failed"; }
echo "rediff pipeline took $((SECONDS - t0)) s"
/usr/bin/python3 - "$tmp/local/eval/results.json" "$run/eval/results.json" <<'PY' || fail "the chain's results differ"
import json, sys
a, b = (json.load(open(p))["rows"] for p in sys.argv[1:3])
strip = lambda rows: [{k: v for k, v in r.items() if k not in ("captions_per_s", "forward_passes_per_s")} for r in rows]
if strip(a) != strip(b):
    for x, y in zip(strip(a), strip(b)):
        if x != y: print("differs:", x, y)
    sys.exit(1)
print("the Slurm chain's results equal rediff pipeline's (%d rows)" % len(a))
PY
echo "slurm pipeline chain: ok"
