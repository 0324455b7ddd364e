#!/usr/bin/env bash
# rediff submit on a local single-node Slurm cluster (slurm/local-cluster.sh):
# a chain of the real stages data synth + base (2 MPI ranks via srun
# --mpi=pmix; the later stages are marked done so the chain is what exists)
# finishes with done markers and the same checkpoint as `rediff base` run
# directly under mpirun; rediff status shows both jobs COMPLETED (also
# without -c, from the chain's own config); a second submit has nothing to
# do; a queued chain blocks another submit and `rediff submit --cancel`
# cancels it.
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
py=/usr/bin/python3
cfg="$RD_SOURCE_DIR/configs/tiny.yaml"
sets=(--set data.n_train=2000 --set data.n_eval=128 --set data.shard_size=512 --set eval.n_samples=64
      --set draft.n_samples=64 --set model.d_model=64 --set model.n_layers=2 --set model.d_ff=128
      --set model.vision_d=64 --set model.vision_d_ff=128 --set train.batch_size=16 --set train.eval_batches=2
      --set base.steps=40 --set train.ckpt_every=20 --set train.eval_every=20 --set train.log_every=10
      --set parallel.ranks=2 --set slurm.tasks_per_node=2 --set slurm.time=00:10:00 --set slurm.signal_lead_s=30)
job_of() { sed -n "s/.*\"name\": \"$2\", \"job_id\": \"\([0-9]*\)\".*/\1/p" "$1/slurm/chain.json"; }
state_of() { scontrol show job -o "$1" | sed -n 's/.* JobState=\([A-Z_]*\) .*/\1/p'; }
# Waits (at most 5 minutes) until job $1 has ended; prints its state.
final_state() {
  local st
  for ((t = 0; t < 1200; t++)); do
    st=$(state_of "$1")
    case "$st" in PENDING | RUNNING | CONFIGURING | COMPLETING | REQUEUED | "") sleep 0.25 ;; *) echo "$st"; return ;; esac
  done
  echo "STILL-$st"
}
# The stages after base are not part of this test: marked done, they are skipped.
mark_later_done() {
  mkdir -p "$1/done"
  for m in mask stage1 draft.r1 expert.r1 stage2.r1 eval; do echo "skipped by the test" >"$1/done/$m"; done
}

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
$py "$RD_SOURCE_DIR/tests/reference/compare_ckpt.py" "$run/ckpt/base/$(cat "$run/ckpt/base/LATEST")" \
  "$direct/ckpt/base/$(cat "$direct/ckpt/base/LATEST")" || fail "the chain's checkpoint differs from a direct run"

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
set +e
"$REDIFF" submit -c "$cfg" --run-dir "$held" "${sets[@]}" 2>"$tmp/twice.err"
rc=$?
set -e
[ $rc = 1 ] && grep -q "2 jobs of an earlier chain are still queued or running" "$tmp/twice.err" \
  || { cat "$tmp/twice.err"; fail "a second chain of a queued run was accepted (exit $rc)"; }
"$REDIFF" submit -c "$cfg" --run-dir "$held" "${sets[@]}" --cancel | tee "$tmp/cancel.txt"
grep -q "^cancelled 2 jobs: $(job_of "$held" 01-data) $(job_of "$held" 02-base)$" "$tmp/cancel.txt" || fail "cancel output"
[ "$(final_state "$(job_of "$held" 02-base)")" = CANCELLED ] || fail "held base job not cancelled"
"$REDIFF" submit -c "$cfg" --run-dir "$held" "${sets[@]}" --cancel | grep -q "nothing to cancel" || fail "second cancel"
echo "slurm chain: ok"
