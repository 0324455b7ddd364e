#!/usr/bin/env bash
# rediff submit on a local single-node Slurm cluster (slurm/local-cluster.sh):
# a chain of the real stages data synth + base (2 MPI ranks via srun
# --mpi=pmix; the later stages are marked done so the chain is what exists)
# finishes with done markers and the same checkpoint as `rediff base` run
# directly under mpirun; rediff status shows both jobs COMPLETED (also
# without -c, from the chain's own config); a second submit has nothing to
# do; a queued chain blocks another submit and `rediff submit --cancel`
# cancels it.
# shellcheck source=tests/lib/script.bash
source "${RD_SOURCE_DIR:?set by ctest}/tests/lib/script.bash"
need_env REDIFF
slurm_cluster_up
sets=("${small_data[@]}" "${small_model[@]}"
      --set base.steps=40 --set train.ckpt_every=20 --set train.eval_every=20 --set train.log_every=10
      "${slurm_sets[@]}")

# 1. The chain: data synth, then base under srun --mpi=pmix on 2 ranks.
run="$tmp/run"
mark_later_done "$run"
"$REDIFF" submit -c "$cfg" --run-dir "$run" "${sets[@]}" | tee "$tmp/submit.txt"
grep -Eq '^  stage1 +done, skipped$' "$tmp/submit.txt" || fail "stage1 was not skipped"
data_job=$(job_of "$run" 01-data)
base_job=$(job_of "$run" 02-base)
[ -n "$data_job" ] && [ -n "$base_job" ] || fail "chain.json lacks the job ids"
scontrol show job -o "$base_job" | grep -q "Dependency=afterok:$data_job" || fail "base does not wait for data"
st=$(final_state "$base_job")
[ "$st" = COMPLETED ] || { cat "$run"/slurm/logs/*; fail "base job ended $st"; }
[ "$(state_of "$data_job")" = COMPLETED ] || fail "data job not COMPLETED"
[ -f "$run/done/data" ] && [ -f "$run/done/base" ] || fail "done markers missing"
grep -q "micro-batch 8" "$run/slurm/logs/02-base.$base_job.err" || fail "base did not run on 2 data-parallel ranks"
grep -q "stage exited with 0" "$run/slurm/logs/02-base.$base_job.out" || fail "job log lacks the exit line"

# 2. The same stages run directly give the same checkpoint, bit for bit.
direct="$tmp/direct"
"$REDIFF" data synth -c "$cfg" --run-dir "$direct" "${sets[@]}" >/dev/null
mpirun -np 2 --oversubscribe "$REDIFF" base -c "$cfg" --run-dir "$direct" "${sets[@]}" 2>/dev/null
cmp "$run/data/vocab.txt" "$direct/data/vocab.txt" || fail "vocabularies differ"
compare_ckpt "$(latest_ckpt "$run")" "$(latest_ckpt "$direct")" || fail "the chain's checkpoint differs from a direct run"

# 3. rediff status: both jobs COMPLETED, done.
"$REDIFF" status -c "$cfg" --run-dir "$run" "${sets[@]}" | tee "$tmp/status.txt"
grep -Eq "^data +yes +$data_job +COMPLETED$" "$tmp/status.txt" || fail "status: data row"
grep -Eq "^base +yes +$base_job +COMPLETED$" "$tmp/status.txt" || fail "status: base row"
# Without -c it reads the chain's own config (RUN_DIR/slurm/config.yaml).
"$REDIFF" status --run-dir "$run" | cmp - "$tmp/status.txt" || fail "status without -c differs"

# 4. Everything done: a second submit queues nothing.
"$REDIFF" submit -c "$cfg" --run-dir "$run" "${sets[@]}" | grep -q "is done; nothing submitted" \
  || fail "a finished run was submitted again"

# 5. A queued chain (held an hour by --begin) blocks a second submit of the
# same run; --cancel cancels it.
held="$tmp/held"
mark_later_done "$held"
"$REDIFF" submit -c "$cfg" --run-dir "$held" "${sets[@]}" --set 'slurm.extra=[--begin=now+3600]' >/dev/null
expect_exit 1 "2 jobs of an earlier chain are still queued or running" \
  "$REDIFF" submit -c "$cfg" --run-dir "$held" "${sets[@]}"
"$REDIFF" submit -c "$cfg" --run-dir "$held" "${sets[@]}" --cancel | tee "$tmp/cancel.txt"
grep -q "^cancelled 2 jobs: $(job_of "$held" 01-data) $(job_of "$held" 02-base)$" "$tmp/cancel.txt" || fail "cancel output"
[ "$(final_state "$(job_of "$held" 02-base)")" = CANCELLED ] || fail "held base job not cancelled"
"$REDIFF" submit -c "$cfg" --run-dir "$held" "${sets[@]}" --cancel | grep -q "nothing to cancel" || fail "second cancel"
echo "slurm chain: ok"
