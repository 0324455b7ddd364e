#!/usr/bin/env bash
# rediff base end to end: the held-out loss falls on configs/tiny.yaml;
# a run stopped (by --stop-at, SIGTERM or SIGINT) and resumed equals an uninterrupted
# one bitwise, parameters, optimizer state and loss log; non-finite steps are
# skipped and stop the run after train.max_bad_steps; a checkpoint of another
# shape is refused naming the tensor; the embedded config reads the same in
# PyYAML.
# shellcheck source=tests/lib/script.bash
source "${RD_SOURCE_DIR:?set by ctest}/tests/lib/script.bash"
need_env REDIFF

synth_data -c "$cfg" "${small_data[@]}"

# 1. Learning: 100 steps of the tiny model lower the held-out loss by a third.
seed_data "$tmp/learn"
"$REDIFF" base -c "$cfg" --run-dir "$tmp/learn" "${small_data[@]}" --set base.steps=100 \
  --set train.eval_every=50 --set train.ckpt_every=100 2>"$tmp/learn.err"
eval_losses "$tmp/learn/logs/base.jsonl" >"$tmp/learn.txt"
cat "$tmp/learn.txt"
$py - "$tmp/learn.txt" <<'PY' || fail "held-out loss did not fall enough"
import sys
l = [float(x) for x in open(sys.argv[1])]
print("held-out loss %.3f -> %.3f" % (l[0], l[-1]))
sys.exit(0 if len(l) == 3 and l[-1] < 0.67 * l[0] else 1)
PY
# The config a checkpoint embeds reads in PyYAML (a YAML 1.1 reader) to the
# values rediff used: floats stay floats ("1.0e-05", not "1e-05").
$py - "$(latest_ckpt "$tmp/learn")" <<'PY' || fail "the embedded config does not read the same in PyYAML"
import h5py, sys, yaml
with h5py.File(sys.argv[1], "r") as f:
    text = f.attrs["config_yaml"]
c = yaml.safe_load(text.decode() if isinstance(text, bytes) else text)
for sec, key, want in [("model", "norm_eps", 1e-5), ("train", "adam_eps", 1e-8), ("train", "lr", 1e-3),
                       ("model", "init_std", 0.02), ("model", "d_model", 128)]:
    got = c[sec][key]
    assert type(got) is type(want) and got == want, (sec, key, got)
print("embedded config: PyYAML reads norm_eps %r, adam_eps %r" % (c["model"]["norm_eps"], c["train"]["adam_eps"]))
PY
# Every eval line carries the probe of each kind, with the images and blind.
$py - "$tmp/learn/logs/base.jsonl" <<'PY' || fail "the probe is not logged"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if '"kind":"eval"' in l]
assert len(ev) == 3, ev
for e in ev:
    for k in ("count", "size", "colour", "shape", "position", "relation"):
        for key in ("probe_" + k, "probe_%s_blind" % k):
            assert 0 <= e[key] <= 1, (key, e)
print("probe colour %.3f / %.3f blind at step %d" % (ev[-1]["probe_colour"], ev[-1]["probe_colour_blind"], ev[-1]["step"]))
PY
grep -q "parameters; memory per rank: params" "$tmp/learn.err" || fail "memory line missing"
[ -f "$tmp/learn/done/base" ] || fail "no done marker"
"$REDIFF" base -c "$cfg" --run-dir "$tmp/learn" "${small_data[@]}" --set base.steps=100 | grep -q "done already" \
  || fail "a finished stage ran again"

# 2. Resume equals no interruption: --stop-at, then SIGTERM (the small
#    model: only exactness matters here).
run=(base -c "$cfg" "${small_data[@]}" "${small_model[@]}" --set base.steps=60 --set train.ckpt_every=20 --set train.eval_every=20)
seed_data "$tmp/whole"
"$REDIFF" "${run[@]}" --run-dir "$tmp/whole" 2>/dev/null
seed_data "$tmp/cut"
expect_exit 3 "base: stopped at step 30 (--stop-at) after a checkpoint" "$REDIFF" "${run[@]}" --run-dir "$tmp/cut" \
  --stop-at 30
[ ! -f "$tmp/cut/done/base" ] || fail "a stopped stage wrote its done marker"
"$REDIFF" "${run[@]}" --run-dir "$tmp/cut" 2>"$tmp/resume.err"
grep -q "resuming from .*step-00000030.h5 at step 30" "$tmp/resume.err" || { cat "$tmp/resume.err"; fail "did not resume at 30"; }
compare_ckpt "$(latest_ckpt "$tmp/whole")" "$(latest_ckpt "$tmp/cut")"
cmp <(train_losses "$tmp/whole/logs/base.jsonl") <(train_losses "$tmp/cut/logs/base.jsonl") \
  || fail "the resumed loss log differs"
cmp <(grep '"kind":"eval"' "$tmp/whole/logs/base.jsonl") <(grep '"kind":"eval"' "$tmp/cut/logs/base.jsonl") \
  || fail "the resumed held-out losses and probes differ"

long=(base -c "$cfg" "${small_data[@]}" "${small_model[@]}" --set base.steps=400 --set train.ckpt_every=1000 --set train.eval_every=1000)
# A run stopped by signal SIG after step 5 checkpoints, exits 3 naming the
# signal, and resumes to the end; its folder is DIR.
stop_by() {
  local sig=$1 dir=$2 pid rc=0
  seed_data "$dir"
  "$REDIFF" "${long[@]}" --run-dir "$dir" 2>"$dir.err" &
  pid=$!
  for _ in $(seq 100); do grep -q '"step":5,' "$dir/logs/base.jsonl" 2>/dev/null && break; sleep 0.1; done
  kill "-$sig" $pid
  wait $pid || rc=$?
  [ $rc = 3 ] || { cat "$dir.err"; fail "SIG$sig: exit $rc, want 3"; }
  grep -q "stopped by SIG$sig at step" "$dir.err" || fail "no SIG$sig stop message"
  "$REDIFF" "${long[@]}" --run-dir "$dir" 2>/dev/null
}
seed_data "$tmp/term_whole"
"$REDIFF" "${long[@]}" --run-dir "$tmp/term_whole" 2>/dev/null
stop_by TERM "$tmp/term"
compare_ckpt "$(latest_ckpt "$tmp/term_whole")" "$(latest_ckpt "$tmp/term")"
cmp <(train_losses "$tmp/term_whole/logs/base.jsonl") <(train_losses "$tmp/term/logs/base.jsonl") \
  || fail "the loss log after SIGTERM differs"
# Ctrl-C (SIGINT) stops the same way: checkpoint, exit 3, a bitwise resume.
stop_by INT "$tmp/int"
compare_ckpt "$(latest_ckpt "$tmp/term_whole")" "$(latest_ckpt "$tmp/int")"

# 3. Non-finite steps: skipped and logged; K in a row stop the run, the last
#    good checkpoint intact; a run that ends on skipped steps is not done.
seed_data "$tmp/nan"
RD_TEST_NAN_STEPS=3,4 "$REDIFF" "${run[@]}" --run-dir "$tmp/nan" --set base.steps=10 --set train.ckpt_every=5 \
  2>"$tmp/nan.err"
[ "$(grep -c '"kind":"skip"' "$tmp/nan/logs/base.jsonl")" = 2 ] || fail "skipped steps not logged"
grep -q "update skipped (2 in a row)" "$tmp/nan.err" || fail "no skip warning"
seed_data "$tmp/nan2"
expect_exit 1 "3 non-finite steps in a row" env RD_TEST_NAN_STEPS=7,8,9 "$REDIFF" "${run[@]}" --run-dir "$tmp/nan2" \
  --set base.steps=10 --set train.ckpt_every=5 --set train.max_bad_steps=3
[ "$(cat "$tmp/nan2/ckpt/base/LATEST")" = step-00000005.h5 ] || fail "the last good checkpoint is not the latest"
# Fewer bad steps than max_bad_steps, but the run ends on them: not done,
# neither now nor when started again at its last checkpoint.
seed_data "$tmp/nan3"
expect_exit 1 "the last 2 steps (to step 10) were non-finite and skipped; the stage is not marked done" \
  env RD_TEST_NAN_STEPS=9,10 "$REDIFF" "${run[@]}" --run-dir "$tmp/nan3" --set base.steps=10 --set train.ckpt_every=5
[ ! -e "$tmp/nan3/done/base" ] || fail "a stage that ended on non-finite steps was marked done"
expect_exit 1 "the last 2 steps (to step 10) were non-finite" "$REDIFF" "${run[@]}" --run-dir "$tmp/nan3" \
  --set base.steps=10 --set train.ckpt_every=5
[ ! -e "$tmp/nan3/done/base" ] || fail "the resumed stage was marked done"

# 4. A checkpoint of another shape is refused, naming the tensor and shapes.
seed_data "$tmp/shape"
cp -r "$tmp/nan2/ckpt" "$tmp/shape/"
expect_exit 1 "has shape [128, 64], the model wants [192, 64]" "$REDIFF" "${run[@]}" --run-dir "$tmp/shape" --set model.d_ff=192
echo "base training: ok"
