#!/bin/bash
# rediff stage '@LABEL@' of the run in @RUN_DIR@, written by `rediff submit`
# from slurm/job.sh. Run it again by hand: sbatch @SCRIPT@ (docs/slurm.md)
@SBATCH@
@SETUP@

# A launcher can report success for ranks that never started: the done
# marker is the stage's own word that it finished.
done_marker=@DONE@
max_requeues=@MAX_REQUEUES@ # slurm.max_requeues

say() { echo "rediff-job ${SLURM_JOB_ID}: $(date -u +%Y-%m-%dT%H:%M:%SZ) $*"; }
# Slurm's warning (USR1, --signal above) or a TERM (scancel, the time limit)
# comes to this shell; the stage gets USR1 from it, which srun and mpirun
# pass on to every rank: each finishes its step, checkpoints, exits 3.
stage_pid='' got='' interrupted=''
# shellcheck disable=SC2317 # called by the traps below
on_signal() {
  got=$1 interrupted=1
  say "got SIG$1; asking the stage to checkpoint and stop"
  [ -n "$stage_pid" ] && kill -USR1 "$stage_pid" 2>/dev/null
}
trap 'on_signal USR1' USR1
trap 'on_signal TERM' TERM

say "start on $(hostname), restart ${SLURM_RESTART_COUNT:-0}"
@LAUNCH@ &
stage_pid=$!
# A trapped signal ends `wait` early (status > 128): wait again.
while :; do
  interrupted=''
  wait "$stage_pid"
  rc=$?
  if [ -z "$interrupted" ] || [ "$rc" -le 128 ]; then break; fi
done
trap - USR1 TERM
say "stage exited with $rc"
if [ "$rc" -eq 0 ] && [ ! -e "$done_marker" ]; then
  say "the stage exited 0 but left no done marker: failing the job"
  rc=1
fi

# 3: stopped after a checkpoint. Requeued, the job keeps its id, so the
# next job's afterok still waits for it; it runs again from the top and
# the stage resumes. Not after a TERM: a cancelled job stays cancelled.
if [ "$rc" -eq 3 ] && [ "$got" != TERM ]; then
  if [ "${SLURM_RESTART_COUNT:-0}" -ge "$max_requeues" ]; then
    say "requeued ${SLURM_RESTART_COUNT} times already (slurm.max_requeues); giving up"
  else
    # Said first: the requeue ends this shell at once.
    say "requeueing the job to resume from the checkpoint"
    scontrol requeue "$SLURM_JOB_ID" ||
      say "scontrol requeue failed; rediff submit again resumes the stage"
  fi
fi
exit "$rc"
