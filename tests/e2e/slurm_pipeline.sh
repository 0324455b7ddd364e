#!/usr/bin/env bash
# The whole tiny pipeline (short steps) as a chain of Slurm jobs on a local
# single-node cluster, 2 MPI ranks per job under srun --mpi=pmix: every job
# completes in order and the evaluation equals `rediff pipeline` run with the
# same config on this machine.
# shellcheck source=tests/lib/script.bash
source "${RD_SOURCE_DIR:?set by ctest}/tests/lib/script.bash"
need_env REDIFF
slurm_cluster_up
sets=("${short_pipeline[@]}" --set base.steps=80 --set stage1.steps=30 --set stage2.steps=30 "${slurm_sets[@]}")

run="$tmp/chain"
t0=$SECONDS
"$REDIFF" submit -c "$cfg" --run-dir "$run" "${sets[@]}" >"$tmp/submit.txt"
ids=$(chain_ids "$run")
[ "$(echo "$ids" | wc -w)" = 8 ] || { cat "$tmp/submit.txt"; fail "want 8 jobs"; }
last=$(echo "$ids" | tail -n 1)
final_state "$last" 600 >/dev/null
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
same_results "$tmp/local/eval/results.json" "$run/eval/results.json" "the Slurm chain's results equal rediff pipeline's" \
  || fail "the chain's results differ"
echo "slurm pipeline chain: ok"
