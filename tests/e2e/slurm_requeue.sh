#!/usr/bin/env bash
# Slurm's pre-timeout warning on the local cluster: a base job gets USR1 in
# its batch shell (delivered by `scancel --signal=USR1 --batch` instead of
# waiting for a real time limit), passes it to the stage, which checkpoints
# and exits 3; the job requeues itself, runs again under the same job id,
# resumes from that checkpoint and completes. The final checkpoint and the
# loss log equal an uninterrupted run bit for bit. A job waiting on it with
# afterok + --kill-on-invalid-dep=yes stays pending through the requeue and
# runs after it. A job cancelled with scancel (TERM) stays cancelled: it is
# not requeued. Prints what it saw.
set -euo pipefail
: "${REDIFF:?}" "${RD_SOURCE_DIR:?}"
if ! command -v sbatch >/dev/null 2>&1 || ! [ -x /usr/sbin/slurmctld ]; then
  echo "skipped: slurm-wlm is not installed (apt-get install slurm-wlm munge)"
  exit 0
fi
tmp=$(mktemp -d)
cluster="$RD_SOURCE_DIR/slurm/local-cluster.sh"
trap '"$cluster" down "$tmp/cluster" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
out= err=
fail() {
  [ -z "$out" ] || cat "$out" "$err"
  echo "FAIL: $*"
  exit 1
}
eval "$("$cluster" up "$tmp/cluster")"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
py=/usr/bin/python3
cfg="$RD_SOURCE_DIR/configs/tiny.yaml"
sets=(--set data.n_train=2000 --set data.n_eval=128 --set data.shard_size=512 --set eval.n_samples=64
      --set draft.n_samples=64 --set model.d_model=64 --set model.n_layers=2 --set model.d_ff=128
      --set model.vision_d=64 --set model.vision_d_ff=128 --set train.batch_size=16 --set train.eval_batches=2
      --set base.steps=100 --set train.ckpt_every=50 --set train.eval_every=25 --set train.log_every=5
      --set parallel.ranks=2 --set slurm.tasks_per_node=2 --set slurm.time=00:10:00 --set slurm.signal_lead_s=30)
state_of() { scontrol show job -o "$1" | sed -n 's/.* JobState=\([A-Z_]*\) .*/\1/p'; }
final_state() {
  local st
  for ((t = 0; t < 1200; t++)); do
    st=$(state_of "$1")
    case "$st" in PENDING | RUNNING | CONFIGURING | COMPLETING | REQUEUED | "") sleep 0.25 ;; *) echo "$st"; return ;; esac
  done
  echo "STILL-$st"
}
train_losses() { grep '"kind":"train"' "$1" | sed 's/.*"step":\([0-9]*\),.*"loss":\([^,}]*\).*/\1 \2/'; }
eval_losses() { grep '"kind":"eval"' "$1" | sed 's/.*"loss":\([^,}]*\).*/\1/'; }

"$REDIFF" data synth -c "$cfg" --run-dir "$tmp/data0" "${sets[@]}" >/dev/null
seed() { mkdir -p "$1/done" && cp -r "$tmp/data0/data" "$1/" && cp "$tmp/data0/done/data" "$1/done/"; }
run="$tmp/run"
seed "$run"
for m in mask stage1 draft.r1 expert.r1 stage2.r1 eval; do echo "skipped by the test" >"$run/done/$m"; done
"$REDIFF" submit -c "$cfg" --run-dir "$run" "${sets[@]}" >/dev/null
id=$(sed -n 's/.*"name": "02-base", "job_id": "\([0-9]*\)".*/\1/p' "$run/slurm/chain.json")
err="$run/slurm/logs/02-base.$id.err" out="$run/slurm/logs/02-base.$id.out"
# A dependant as the next stage of the chain would be.
child=$(sbatch --parsable --dependency=afterok:"$id" --kill-on-invalid-dep=yes -o "$tmp/child.out" \
  --wrap 'echo "child ran"')

# Signal once training is under way (past step 20 of 100).
for ((t = 0; t < 1200; t++)); do
  grep -Eq '^base: (2[0-9]|[3-9][0-9])/100' "$err" 2>/dev/null && break
  sleep 0.25
done
grep -Eq '^base: (2[0-9]|[3-9][0-9])/100' "$err" || { cat "$out" "$err"; fail "base did not get to step 20"; }
signal_at=$(date -u +%H:%M:%S)
scancel --signal=USR1 --batch "$id"

[ "$(final_state "$id")" = COMPLETED ] || { cat "$out" "$err"; fail "job $id did not complete"; }
scontrol show job -o "$id" | grep -q "Restarts=1 " || fail "job $id was not requeued exactly once"
grep -q "got SIGUSR1; asking the stage to checkpoint and stop" "$out" || fail "batch shell did not get USR1"
grep -q "stage exited with 3" "$out" || fail "stage did not exit 3"
grep -q "requeueing the job to resume from the checkpoint" "$out" || fail "no requeue"
grep -q "start on .*, restart 1" "$out" || fail "no second run"
grep -q "stage exited with 0" "$out" || fail "second run did not finish"
stop_step=$(sed -n 's/^rediff: base: stopped by signal at step \([0-9]*\) .*/\1/p' "$err" | head -1)
resume_step=$(sed -n 's/^base: resuming from .* at step \([0-9]*\) .*$/\1/p' "$err")
[ -n "$stop_step" ] && [ "$stop_step" = "$resume_step" ] || fail "stopped at '$stop_step' but resumed at '$resume_step'"
grep -q "^base: step $stop_step: checkpoint " "$err" || fail "no checkpoint at the stop"
[ -f "$run/done/base" ] || fail "no done marker"
[ "$(final_state "$child")" = COMPLETED ] || fail "the afterok dependant of the requeued job did not run"
child_start=$(scontrol show job -o "$child" | sed -n 's/.* StartTime=\([^ ]*\) .*/\1/p')
base_end=$(scontrol show job -o "$id" | sed -n 's/.* EndTime=\([^ ]*\) .*/\1/p')
[[ ! "$child_start" < "$base_end" ]] || fail "the dependant started ($child_start) before the requeued job ended ($base_end)"

# The uninterrupted run.
seed "$tmp/whole"
mpirun -np 2 --oversubscribe "$REDIFF" base -c "$cfg" --run-dir "$tmp/whole" "${sets[@]}" 2>/dev/null
$py "$RD_SOURCE_DIR/tests/reference/compare_ckpt.py" "$run/ckpt/base/$(cat "$run/ckpt/base/LATEST")" \
  "$tmp/whole/ckpt/base/$(cat "$tmp/whole/ckpt/base/LATEST")" || fail "requeued run differs from an uninterrupted one"
cmp <(train_losses "$tmp/whole/logs/base.jsonl") <(train_losses "$run/logs/base.jsonl") || fail "train losses differ"
cmp <(eval_losses "$tmp/whole/logs/base.jsonl") <(eval_losses "$run/logs/base.jsonl") || fail "held-out losses differ"

"$REDIFF" status -c "$cfg" --run-dir "$run" "${sets[@]}" | grep -Eq "^base +yes +$id +COMPLETED +requeued 1$" \
  || fail "status does not show the requeue"
echo "observed: USR1 sent at $signal_at UTC; the stage checkpointed at step $stop_step and exited 3;"
grep -E "got SIGUSR1|stage exited|requeueing|start on" "$out" | sed 's/^/  /'
echo "  resumed at step $resume_step of 100 under the same job $id; final checkpoint equals an uninterrupted run"
echo "  the afterok dependant $child started $child_start, after job $id ended $base_end"

# scancel: TERM to the job; it checkpoints if it can but is not requeued.
run2="$tmp/run2"
seed "$run2"
for m in mask stage1 draft.r1 expert.r1 stage2.r1 eval; do echo "skipped by the test" >"$run2/done/$m"; done
"$REDIFF" submit -c "$cfg" --run-dir "$run2" "${sets[@]}" >/dev/null
id2=$(sed -n 's/.*"name": "02-base", "job_id": "\([0-9]*\)".*/\1/p' "$run2/slurm/chain.json")
for ((t = 0; t < 1200; t++)); do
  grep -Eq '^base: [1-9][0-9]*/100' "$run2/slurm/logs/02-base.$id2.err" 2>/dev/null && break
  sleep 0.25
done
scancel "$id2"
[ "$(final_state "$id2")" = CANCELLED ] || fail "scancel'd job $id2 did not end CANCELLED"
sleep 2
[ "$(state_of "$id2")" = CANCELLED ] || fail "scancel'd job $id2 came back: $(state_of "$id2")"
scontrol show job -o "$id2" | grep -q "Restarts=0 " || fail "scancel'd job $id2 was requeued"
[ ! -f "$run2/done/base" ] || fail "a cancelled base wrote its done marker"
echo "  scancel'd job $id2 stayed CANCELLED (not requeued)"
echo "slurm requeue: ok"
