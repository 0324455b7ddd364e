#!/usr/bin/env bash
# rediff pipeline end to end on a small setting: every stage runs in order
# and the eval table comes out; killed with SIGKILL in the middle of a stage
# and started again, it finishes with the same results as an uninterrupted
# run; rediff status reports what is done.
set -euo pipefail
: "${REDIFF:?}" "${RD_SOURCE_DIR:?}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
py=/usr/bin/python3
args=(-c "$RD_SOURCE_DIR/configs/tiny.yaml"
      --set data.n_train=1500 --set data.n_eval=96 --set data.shard_size=512
      --set model.d_model=64 --set model.n_layers=2 --set model.d_ff=128 --set model.vision_d=64
      --set model.vision_d_ff=128 --set train.batch_size=16 --set train.eval_batches=2
      --set train.eval_every=40 --set train.ckpt_every=20
      --set base.steps=120 --set stage1.steps=40 --set stage2.steps=40
      --set draft.n_samples=48 --set draft.step_counts=[64,8] --set eval.n_samples=32 --set eval.batch=16
      --set eval.tokens_per_step=[1,8] --set train.threads=1)

"$REDIFF" pipeline "${args[@]}" --run-dir "$tmp/whole" >"$tmp/whole.out" 2>"$tmp/whole.err" \
  || { tail -30 "$tmp/whole.err"; fail "pipeline failed"; }
cat "$tmp/whole.out"
grep -q "pipeline: done in" "$tmp/whole.err" || fail "no timing summary"
for m in base mask stage1 stage2_r1; do grep -q "| $m " "$tmp/whole.out" || fail "no $m row in the table"; done
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
$py - "$tmp/whole/eval/results.json" "$tmp/cut/eval/results.json" <<'PY' || fail "results differ after the kill"
import json, sys
a, b = (json.load(open(p))["rows"] for p in sys.argv[1:3])
strip = lambda rows: [{k: v for k, v in r.items() if k not in ("captions_per_s", "forward_passes_per_s")} for r in rows]
if strip(a) != strip(b):
    for x, y in zip(strip(a), strip(b)):
        if x != y: print("differs:", x, y)
    sys.exit(1)
print("results after kill -9 and restart equal the uninterrupted run (%d rows)" % len(a))
PY
# A stage that fails stops the pipeline with its message, and rediff status
# names it.
grep -q "^base  *yes" <("$REDIFF" status "${args[@]}" --run-dir "$tmp/whole") || fail "status: base not done"
rm -rf "$tmp/whole/ckpt/base" "$tmp/whole/done/mask" "$tmp/whole/ckpt/mask"
set +e
"$REDIFF" pipeline "${args[@]}" --run-dir "$tmp/whole" >/dev/null 2>"$tmp/fail.err"
rc=$?
set -e
[ $rc = 1 ] || fail "a failing stage: pipeline exit $rc, want 1"
grep -q "stage mask failed (exit 1)" "$tmp/fail.err" || { cat "$tmp/fail.err"; fail "pipeline: no failure message"; }
grep -q "has no checkpoint to start mask from" "$tmp/fail.err" || fail "pipeline: the stage's own message is missing"
"$REDIFF" status "${args[@]}" --run-dir "$tmp/whole" >"$tmp/status.txt"
grep -q "last local pipeline run: stage mask failed (exit 1)" "$tmp/status.txt" || { cat "$tmp/status.txt"; fail "status"; }
grep -q "^mask  *no" "$tmp/status.txt" || fail "status: mask should not be done"
echo "pipeline: ok"
