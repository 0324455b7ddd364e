#!/usr/bin/env bash
# A stage that fails for real on the local Slurm cluster: base finds no
# data (data is marked done but its files are missing). Its job FAILS with
# the stage's exit code, every later job of the chain is CANCELLED by Slurm
# (afterok can never be satisfied; --kill-on-invalid-dep=yes), and
# rediff status names the failed job, its exit code and the end of its log.
# A job sbatch refuses is reported with the sbatch command line and message.
# shellcheck source=tests/lib/script.bash
source "${RD_SOURCE_DIR:?set by ctest}/tests/lib/script.bash"
need_env REDIFF
slurm_cluster_up
sets=(--set base.steps=10 "${slurm_sets[@]}" --set slurm.time=00:05:00)

run="$tmp/run"
mkdir -p "$run/done"
echo "marked by the test; the data files are missing" >"$run/done/data"
"$REDIFF" submit -c "$cfg" --run-dir "$run" "${sets[@]}" >/dev/null
base_job=$(job_of "$run" 02-base)
names=(03-mask 04-stage1 05-draft.r1 06-expert.r1 07-stage2.r1 08-eval)
[ "$(final_state "$base_job")" = FAILED ] || fail "base job did not fail"
scontrol show job -o "$base_job" | grep -q "ExitCode=1:0" || fail "base job's exit code is not the stage's 1"
for name in "${names[@]}"; do
  id=$(job_of "$run" "$name")
  st=$(final_state "$id")
  [ "$st" = CANCELLED ] || fail "$name (job $id) ended $st, want CANCELLED"
  scontrol show job -o "$id" | grep -q "Reason=DependencyNeverSatisfied" || fail "$name: reason"
  ls "$run/slurm/logs/$name".* >/dev/null 2>&1 && fail "$name ran (it has a log)"
done

"$REDIFF" status -c "$cfg" --run-dir "$run" "${sets[@]}" | tee "$tmp/status.txt"
grep -Eq "^base +no +$base_job +FAILED +reason NonZeroExitCode; exit 1:0$" "$tmp/status.txt" || fail "status: base row"
grep -Eq "^stage1 +no +$(job_of "$run" 04-stage1) +CANCELLED +reason DependencyNeverSatisfied \(afterok:$(job_of "$run" 03-mask)\(failed\)\)$" \
  "$tmp/status.txt" || fail "status: stage1 row"
grep -q "^job $base_job (base) FAILED: ExitCode=1:0 Reason=NonZeroExitCode$" "$tmp/status.txt" || fail "status: failed job"
grep -q "^  last lines of $run/slurm/logs/02-base.$base_job.err:$" "$tmp/status.txt" || fail "status: log name"
grep -q "^    rediff: .*data/vocab.txt is missing: run \`rediff data synth\`" "$tmp/status.txt" || fail "status: log tail"
[ "$(grep -c '^job ' "$tmp/status.txt")" = 1 ] || fail "status shows logs of jobs that never ran"

# sbatch itself refusing a job: the error names the command line and quotes
# sbatch's message; no chain.json is written.
expect_exit 1 "" "$REDIFF" submit -c "$cfg" --run-dir "$tmp/nopart" "${sets[@]}" --set slurm.partition=nosuch
cat "$tmp/err.txt"
grep -q "^rediff: \`sbatch --parsable $tmp/nopart/slurm/01-data.sbatch\` exited with 1: sbatch: error: .*invalid partition" \
  "$tmp/err.txt" || fail "sbatch's error not reported with its command line"
[ ! -e "$tmp/nopart/slurm/chain.json" ] || fail "a chain.json was written for a failed submit"
echo "slurm failure: ok"
