#!/usr/bin/env bash
# rediff base end to end: the held-out loss falls on configs/tiny.yaml;
# a run stopped (by --stop-at or SIGTERM) and resumed equals an uninterrupted
# one bitwise, parameters, optimizer state and loss log; non-finite steps are
# skipped and stop the run after train.max_bad_steps; a checkpoint of another
# shape is refused naming the tensor.
set -euo pipefail
: "${REDIFF:?}" "${RD_SOURCE_DIR:?}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
py=/usr/bin/python3
cfg="$RD_SOURCE_DIR/configs/tiny.yaml"
data=(--set data.n_train=2000 --set data.n_eval=128 --set data.shard_size=512
      --set eval.n_samples=64 --set draft.n_samples=64)
# A smaller model for the equality runs, where only exactness matters.
small=(--set model.d_model=64 --set model.n_layers=2 --set model.d_ff=128 --set model.vision_d=64
       --set model.vision_d_ff=128 --set train.batch_size=16 --set train.eval_batches=2)

"$REDIFF" data synth -c "$cfg" --run-dir "$tmp/data0" "${data[@]}" >/dev/null
seed_data() { mkdir -p "$1" && cp -r "$tmp/data0/data" "$tmp/data0/done" "$1/"; }
eval_losses() { grep '"kind":"eval"' "$1" | sed 's/.*"loss":\([^,}]*\).*/\1/'; }
train_losses() { grep '"kind":"train"' "$1" | sed 's/.*"step":\([0-9]*\),.*"loss":\([^,}]*\).*/\1 \2/'; }
last_ckpt() { echo "$1/ckpt/base/$(cat "$1/ckpt/base/LATEST")"; }

# 1. Learning: 100 steps of the tiny model lower the held-out loss by a third.
seed_data "$tmp/learn"
"$REDIFF" base -c "$cfg" --run-dir "$tmp/learn" "${data[@]}" --set base.steps=100 \
  --set train.eval_every=50 --set train.ckpt_every=100 2>"$tmp/learn.err"
eval_losses "$tmp/learn/logs/base.jsonl" >"$tmp/learn.txt"
cat "$tmp/learn.txt"
$py - "$tmp/learn.txt" <<'PY' || fail "held-out loss did not fall enough"
import sys
l = [float(x) for x in open(sys.argv[1])]
print("held-out loss %.3f -> %.3f" % (l[0], l[-1]))
sys.exit(0 if len(l) == 3 and l[-1] < 0.67 * l[0] else 1)
PY
grep -q "parameters; memory per rank: params" "$tmp/learn.err" || fail "memory line missing"
[ -f "$tmp/learn/done/base" ] || fail "no done marker"
"$REDIFF" base -c "$cfg" --run-dir "$tmp/learn" "${data[@]}" --set base.steps=100 | grep -q "done already" \
  || fail "a finished stage ran again"

# 2. Resume equals no interruption: --stop-at, then SIGTERM.
run=(base -c "$cfg" "${data[@]}" "${small[@]}" --set base.steps=60 --set train.ckpt_every=20 --set train.eval_every=20)
seed_data "$tmp/whole"
"$REDIFF" "${run[@]}" --run-dir "$tmp/whole" 2>/dev/null
seed_data "$tmp/cut"
set +e
"$REDIFF" "${run[@]}" --run-dir "$tmp/cut" --stop-at 30 2>"$tmp/cut.err"
rc=$?
set -e
[ $rc = 3 ] || { cat "$tmp/cut.err"; fail "--stop-at exited $rc, want 3"; }
grep -q "step 30: checkpoint" "$tmp/cut.err" || fail "no checkpoint at the stop"
[ ! -f "$tmp/cut/done/base" ] || fail "a stopped stage wrote its done marker"
"$REDIFF" "${run[@]}" --run-dir "$tmp/cut" 2>"$tmp/resume.err"
grep -q "resuming from .*step-00000030.h5 at step 30" "$tmp/resume.err" || { cat "$tmp/resume.err"; fail "did not resume at 30"; }
$py "$RD_SOURCE_DIR/tests/reference/compare_ckpt.py" "$(last_ckpt "$tmp/whole")" "$(last_ckpt "$tmp/cut")"
cmp <(train_losses "$tmp/whole/logs/base.jsonl") <(train_losses "$tmp/cut/logs/base.jsonl") \
  || fail "the resumed loss log differs"
cmp <(eval_losses "$tmp/whole/logs/base.jsonl") <(eval_losses "$tmp/cut/logs/base.jsonl") \
  || fail "the resumed held-out losses differ"

seed_data "$tmp/term"
long=(base -c "$cfg" "${data[@]}" "${small[@]}" --set base.steps=400 --set train.ckpt_every=1000 --set train.eval_every=1000)
"$REDIFF" "${long[@]}" --run-dir "$tmp/term" 2>"$tmp/term.err" &
pid=$!
for _ in $(seq 100); do grep -q '"step":5,' "$tmp/term/logs/base.jsonl" 2>/dev/null && break; sleep 0.1; done
kill -TERM $pid
set +e
wait $pid
rc=$?
set -e
[ $rc = 3 ] || { cat "$tmp/term.err"; fail "SIGTERM: exit $rc, want 3"; }
grep -q "stopped by signal at step" "$tmp/term.err" || fail "no stop message"
"$REDIFF" "${long[@]}" --run-dir "$tmp/term" 2>/dev/null
seed_data "$tmp/term_whole"
"$REDIFF" "${long[@]}" --run-dir "$tmp/term_whole" 2>/dev/null
$py "$RD_SOURCE_DIR/tests/reference/compare_ckpt.py" "$(last_ckpt "$tmp/term_whole")" "$(last_ckpt "$tmp/term")"
cmp <(train_losses "$tmp/term_whole/logs/base.jsonl") <(train_losses "$tmp/term/logs/base.jsonl") \
  || fail "the loss log after SIGTERM differs"

# 3. Non-finite steps: skipped and logged; K in a row stop the run, the last
#    good checkpoint intact.
seed_data "$tmp/nan"
RD_TEST_NAN_STEPS=3,4 "$REDIFF" "${run[@]}" --run-dir "$tmp/nan" --set base.steps=10 --set train.ckpt_every=5 \
  2>"$tmp/nan.err"
[ "$(grep -c '"kind":"skip"' "$tmp/nan/logs/base.jsonl")" = 2 ] || fail "skipped steps not logged"
grep -q "update skipped (2 in a row)" "$tmp/nan.err" || fail "no skip warning"
seed_data "$tmp/nan2"
set +e
RD_TEST_NAN_STEPS=7,8,9 "$REDIFF" "${run[@]}" --run-dir "$tmp/nan2" --set base.steps=10 --set train.ckpt_every=5 \
  --set train.max_bad_steps=3 2>"$tmp/nan2.err"
rc=$?
set -e
[ $rc = 1 ] || fail "max_bad_steps: exit $rc, want 1"
grep -q "3 non-finite steps in a row" "$tmp/nan2.err" || { cat "$tmp/nan2.err"; fail "no numerics message"; }
[ "$(cat "$tmp/nan2/ckpt/base/LATEST")" = step-00000005.h5 ] || fail "the last good checkpoint is not the latest"

# 4. A checkpoint of another shape is refused, naming the tensor and shapes.
seed_data "$tmp/shape"
cp -r "$tmp/nan2/ckpt" "$tmp/shape/"
set +e
"$REDIFF" "${run[@]}" --run-dir "$tmp/shape" --set model.d_ff=192 2>"$tmp/shape.err"
rc=$?
set -e
[ $rc = 1 ] || fail "shape mismatch: exit $rc"
grep -q "has shape \[128, 64\], the model wants \[192, 64\]" "$tmp/shape.err" || { cat "$tmp/shape.err"; fail "shape message"; }
echo "base training: ok"
