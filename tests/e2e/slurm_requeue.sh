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
# shellcheck source=tests/lib/script.bash
source "${RD_SOURCE_DIR:?set by ctest}/tests/lib/script.bash"
need_env REDIFF
slurm_cluster_up
sets=("${small_data[@]}" "${small_model[@]}"
      --set base.steps=100 --set train.ckpt_every=50 --set train.eval_every=25 --set train.log_every=5
      "${slurm_sets[@]}")

synth_data -c "$cfg" "${sets[@]}"
run="$tmp/run"
seed_data "$run"
mark_later_done "$run"
"$REDIFF" submit -c "$cfg" --run-dir "$run" "${sets[@]}" >/dev/null
id=$(job_of "$run" 02-base)
err="$run/slurm/logs/02-base.$id.err" out="$run/slurm/logs/02-base.$id.out"
fail_logs=("$out" "$err")
# A dependant as the next stage of the chain would be.
child=$(sbatch --parsable --dependency=afterok:"$id" --kill-on-invalid-dep=yes -o "$tmp/child.out" \
  --wrap 'echo "child ran"')

# Signal once training is under way (past step 20 of 100).
for ((t = 0; t < 1200; t++)); do
  grep -Eq '^base: (2[0-9]|[3-9][0-9])/100' "$err" 2>/dev/null && break
  sleep 0.25
done
grep -Eq '^base: (2[0-9]|[3-9][0-9])/100' "$err" || fail "base did not get to step 20"
signal_at=$(date -u +%H:%M:%S)
scancel --signal=USR1 --batch "$id"

[ "$(final_state "$id")" = COMPLETED ] || fail "job $id did not complete"
scontrol show job -o "$id" | grep -q "Restarts=1 " || fail "job $id was not requeued exactly once"
grep -q "got SIGUSR1; asking the stage to checkpoint and stop" "$out" || fail "batch shell did not get USR1"
grep -q "stage exited with 3" "$out" || fail "stage did not exit 3"
grep -q "requeueing the job to resume from the checkpoint" "$out" || fail "no requeue"
grep -q "start on .*, restart 1" "$out" || fail "no second run"
grep -q "stage exited with 0" "$out" || fail "second run did not finish"
stop_step=$(sed -n 's/^rediff: base: stopped by SIGUSR1 at step \([0-9]*\) .*/\1/p' "$err" | head -1)
resume_step=$(sed -n 's/^base: resuming from .* at step \([0-9]*\) .*$/\1/p' "$err")
[ -n "$stop_step" ] && [ "$stop_step" = "$resume_step" ] || fail "stopped at '$stop_step' but resumed at '$resume_step'"
grep -q "^base: step $stop_step: checkpoint " "$err" || fail "no checkpoint at the stop"
[ -f "$run/done/base" ] || fail "no done marker"
[ "$(final_state "$child")" = COMPLETED ] || fail "the afterok dependant of the requeued job did not run"
child_start=$(scontrol show job -o "$child" | sed -n 's/.* StartTime=\([^ ]*\) .*/\1/p')
base_end=$(scontrol show job -o "$id" | sed -n 's/.* EndTime=\([^ ]*\) .*/\1/p')
[[ ! "$child_start" < "$base_end" ]] || fail "the dependant started ($child_start) before the requeued job ended ($base_end)"

# The uninterrupted run.
seed_data "$tmp/whole"
mpirun -np 2 --oversubscribe "$REDIFF" base -c "$cfg" --run-dir "$tmp/whole" "${sets[@]}" 2>/dev/null
compare_ckpt "$(latest_ckpt "$run")" "$(latest_ckpt "$tmp/whole")" || fail "requeued run differs from an uninterrupted one"
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
seed_data "$run2"
mark_later_done "$run2"
"$REDIFF" submit -c "$cfg" --run-dir "$run2" "${sets[@]}" >/dev/null
id2=$(job_of "$run2" 02-base)
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
