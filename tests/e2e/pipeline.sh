#!/usr/bin/env bash
# rediff pipeline end to end on a small setting: every stage runs in order
# and the eval table comes out; killed with SIGKILL in the middle of a stage
# and started again, it finishes with the same results as an uninterrupted
# run; rediff status reports what is done.
# shellcheck source=tests/lib/script.bash
source "${RD_SOURCE_DIR:?set by ctest}/tests/lib/script.bash"
need_env REDIFF
args=(-c "$cfg" "${short_pipeline[@]}" --set base.steps=120 --set stage1.steps=40 --set stage2.steps=40
      --set train.threads=1)

"$REDIFF" pipeline "${args[@]}" --run-dir "$tmp/whole" >"$tmp/whole.out" 2>"$tmp/whole.err" \
  || { tail -30 "$tmp/whole.err"; fail "pipeline failed"; }
cat "$tmp/whole.out"
grep -q "pipeline: done in" "$tmp/whole.err" || fail "no timing summary"
# The launcher is the mpirun first on PATH, looked up once and recorded;
# without one the pipeline refuses before any stage runs.
grep -q "\"kind\":\"launcher\",\"mpirun\":\"$(command -v mpirun)\"" "$tmp/whole/logs/pipeline.jsonl" \
  || fail "the launcher is not recorded in logs/pipeline.jsonl"
expect_exit 1 "mpirun is not on PATH: parallel.ranks = 2 needs an MPI launcher" \
  env PATH=/nonexistent "$REDIFF" pipeline "${args[@]}" --run-dir "$tmp/nompi"
[ ! -e "$tmp/nompi/data" ] || fail "a stage ran without a launcher"
# eval.models by default: the baseline, Stage I and the final Stage II round
for m in mask stage1 stage2_r1; do grep -q "| $m " "$tmp/whole.out" || fail "no $m row in the table"; done
for d in data base mask stage1 draft.r1 expert.r1 stage2.r1 eval; do
  [ -f "$tmp/whole/done/$d" ] || fail "no done marker $d"
done

# Killed in the middle of stage1 (after its first checkpoint), then again.
"$REDIFF" pipeline "${args[@]}" --run-dir "$tmp/cut" >/dev/null 2>"$tmp/cut.err" &
pid=$!
for _ in $(seq 600); do [ -f "$tmp/cut/ckpt/stage1/LATEST" ] && break; sleep 0.1; done
[ -f "$tmp/cut/ckpt/stage1/LATEST" ] || fail "stage1 never checkpointed"
pkill -KILL -P $pid || true
kill -KILL $pid || true
wait $pid || true
[ ! -f "$tmp/cut/done/stage1" ] || fail "stage1 finished before the kill; the test did not cut it"
"$REDIFF" pipeline "${args[@]}" --run-dir "$tmp/cut" >"$tmp/cut.out" 2>>"$tmp/cut.err" \
  || { tail -30 "$tmp/cut.err"; fail "the restarted pipeline failed"; }
same_results "$tmp/whole/eval/results.json" "$tmp/cut/eval/results.json" \
  "results after kill -9 and restart equal the uninterrupted run" || fail "results differ after the kill"
# A stage that fails stops the pipeline with its message, and rediff status
# names it.
grep -q "^base  *yes" <("$REDIFF" status "${args[@]}" --run-dir "$tmp/whole") || fail "status: base not done"
expect_exit 1 "no such run folder" "$REDIFF" status "${args[@]}" --run-dir "$tmp/not-a-run"
rm -rf "$tmp/whole/ckpt/base" "$tmp/whole/done/mask" "$tmp/whole/ckpt/mask"
expect_exit 1 "stage mask failed (exit 1)" "$REDIFF" pipeline "${args[@]}" --run-dir "$tmp/whole"
grep -q "has no checkpoint to start mask from" "$tmp/err.txt" || fail "pipeline: the stage's own message is missing"
"$REDIFF" status "${args[@]}" --run-dir "$tmp/whole" >"$tmp/status.txt"
grep -q "last local pipeline run: stage mask failed (exit 1)" "$tmp/status.txt" || { cat "$tmp/status.txt"; fail "status"; }
grep -q "^mask  *no" "$tmp/status.txt" || fail "status: mask should not be done"
echo "pipeline: ok"
