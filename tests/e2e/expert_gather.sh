#!/usr/bin/env bash
# rediff expert --round R end to end: the same drafts in 1 file under 1 rank
# and in 4 files under 3 ranks give equal revisions files and counts; the
# drop policy; the reference expert; command experts that answer well,
# always right, crash, hang past the timeout and reply with broken JSON --
# every gather finishes and counts each failure.
# shellcheck source=tests/lib/script.bash
source "${RD_SOURCE_DIR:?set by ctest}/tests/lib/script.bash"
need_env REDIFF
DRAFTS=$(test_program expert_drafts)
CMP="$RD_SOURCE_DIR/tests/reference/compare_revisions.py"
small=(--set data.n_train=160 --set data.n_eval=20 --set eval.n_samples=20 --set draft.n_samples=20)
count() { $py -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, d))" "$@"; }

synth_data "${small[@]}"

echo "== 1 file, 1 rank vs 4 files, 3 ranks"
seed_data "$tmp/one" "$tmp/four"
"$DRAFTS" "$tmp/one" 1 1 150
"$DRAFTS" "$tmp/four" 4 1 150
"$REDIFF" expert --round 1 --run-dir "$tmp/one" "${small[@]}" | tee "$tmp/one.txt"
timeout 300 mpirun -np 3 --oversubscribe "$REDIFF" expert --round 1 --run-dir "$tmp/four" "${small[@]}" >"$tmp/four.txt"
$py "$CMP" "$tmp/one/revisions/r1.h5" "$tmp/four/revisions/r1.h5"
cmp "$tmp/one/revisions/r1.json" "$tmp/four/revisions/r1.json" || fail "counts differ between 1 and 3 ranks"
[ -f "$tmp/four/done/expert.r1" ] || fail "no done marker"
[ "$(count "$tmp/one/revisions/r1.json" drafts)" = 465 ] || fail "not every draft was counted"
[ "$(count "$tmp/one/revisions/r1.json" 'right + revised + dropped')" = 465 ] || fail "counts do not add up"
[ "$(count "$tmp/one/revisions/r1.json" 'right > 40 and revised > 300')" = True ] || fail "too few right or revised"
[ "$(count "$tmp/one/revisions/r1.json" 'sum(edits_by_kind.values()) == edits == sum(edits_by_length.values())')" = True ] \
  || fail "edit counts do not add up"
"$REDIFF" expert --round 1 --run-dir "$tmp/one" "${small[@]}" | grep -q "done already" || fail "a second gather did not skip"

echo "== length policy drop"
seed_data "$tmp/drop"
"$DRAFTS" "$tmp/drop" 2 1 150
"$REDIFF" expert --round 1 --run-dir "$tmp/drop" "${small[@]}" --set expert.length_policy=drop | tail -1
$py "$CMP" "$tmp/drop/revisions/r1.h5"
[ "$(count "$tmp/drop/revisions/r1.json" 'dropped_by_reason["length"] > 0 and edits_by_length["longer"] + edits_by_length["shorter"] == 0')" = True ] \
  || fail "drop policy kept a length-changing edit or dropped nothing"

echo "== reference expert"
seed_data "$tmp/ref"
"$DRAFTS" "$tmp/ref" 1 1 20
"$REDIFF" expert --round 1 --run-dir "$tmp/ref" "${small[@]}" --set expert.kind=reference | tail -1
$py "$CMP" "$tmp/ref/revisions/r1.h5"
cp "$tmp/ref/revisions/r1.h5" "$tmp/ref.h5"

# cmd_run NAME RANKS COMMAND [--set ...]: a command-expert gather over the 20-sample drafts.
cmd_run() {
  local name=$1 np=$2 cmd=$3; shift 3
  seed_data "$tmp/$name"
  cp -r "$tmp/ref/drafts" "$tmp/$name/"
  local start=$SECONDS
  timeout 300 mpirun -np "$np" --oversubscribe "$REDIFF" expert --round 1 --run-dir "$tmp/$name" "${small[@]}" \
    --set expert.kind=command --set "expert.command=$cmd" --set expert.timeout_s=0.5 "$@" | tail -1
  echo "   ($((SECONDS - start)) s)"
  $py "$CMP" "$tmp/$name/revisions/r1.h5" >/dev/null
  [ ! -e "$tmp/$name/revisions/r1.images" ] || fail "$name: the image folder was left"
}
EXP="$RD_SOURCE_DIR/tests/experts"
N=$(count "$tmp/ref/revisions/r1.json" drafts)

echo "== command expert answering from the reference (2 ranks)"
cmd_run good 2 "$py $EXP/reference_edits.py"
# Where it answered, its refined captions are the reference expert's (both are the ground truth).
$py - "$tmp/good/revisions/r1.h5" "$tmp/ref.h5" <<'PYEOF'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1]), h5py.File(sys.argv[2])
key = lambda f: {(s, t, o.tobytes()): r for s, t, o, r in zip(f["sample_id"][...], f["steps"][...], f["original"][...], f["refined"][...])}
ka, kb = key(a), key(b)
assert len(ka) > 0.9 * len(kb), (len(ka), len(kb))
assert all(np.array_equal(r, kb[k]) for k, r in ka.items()), "refined differs from the reference expert's"
print("   %d of %d drafts answered; refined equals the reference" % (len(ka), len(kb)))
PYEOF
[ "$(count "$tmp/good/revisions/r1.json" 'dropped == dropped_by_reason["invalid"] and revised > 0 and edits_by_kind["text"] == edits')" = True ] \
  || fail "good expert: unexpected drops"

echo "== always right"
cmd_run right 1 "$py $EXP/echo_right.py"
[ "$(count "$tmp/right/revisions/r1.json" "right == $N")" = True ] || fail "echo_right: not all right"

echo "== crashing after 5 replies"
cmd_run crash0 1 "$py $EXP/reference_edits.py --crash-after 5" --set expert.retries=0
[ "$(count "$tmp/crash0/revisions/r1.json" 'dropped_by_reason["crash"] > 0 and right + revised > 0')" = True ] \
  || fail "crash without retries was not counted"
cmd_run crash1 1 "$py $EXP/reference_edits.py --crash-after 5" --set expert.retries=1
# With a retry every draft the good expert answered is answered (the restarted program serves it).
[ "$(count "$tmp/crash1/revisions/r1.json" 'right + revised')" = "$(count "$tmp/good/revisions/r1.json" 'right + revised')" ] \
  || fail "a retry did not restart the expert"

echo "== hanging past the timeout"
cmd_run hang 1 "$py $EXP/reference_edits.py --hang-every 4" --set expert.retries=0
[ "$(count "$tmp/hang/revisions/r1.json" 'dropped_by_reason["timeout"] > 0 and right + revised > 0')" = True ] \
  || fail "timeouts were not counted"

echo "== malformed replies"
cmd_run bad 1 "$py $EXP/reference_edits.py --malformed-every 3" --set expert.retries=0
[ "$(count "$tmp/bad/revisions/r1.json" 'dropped_by_reason["malformed"] > 0 and right + revised > 0')" = True ] \
  || fail "malformed replies were not counted"

echo "== a command that does not exist"
cmd_run missing 1 "/nonexistent/expert" --set expert.retries=1
[ "$(count "$tmp/missing/revisions/r1.json" "dropped_by_reason['crash'] == $N")" = True ] || fail "missing command"

echo "== no drafts"
seed_data "$tmp/none"
expect_exit 1 "drafts/r2/rank0.h5 is missing" "$REDIFF" expert --round 2 --run-dir "$tmp/none" "${small[@]}"
echo "== a failed gather leaves no image folder"
seed_data "$tmp/fail"
cp -r "$tmp/ref/drafts" "$tmp/fail/"
mkdir -p "$tmp/fail/revisions/r1.h5" # the output's path is taken by a folder: the write fails
expect_exit 1 "r1.h5" "$REDIFF" expert --round 1 --run-dir "$tmp/fail" "${small[@]}" \
  --set expert.kind=command --set "expert.command=$py $EXP/reference_edits.py"
[ ! -e "$tmp/fail/revisions/r1.images" ] || fail "a failed gather left its image folder"
[ ! -e "$tmp/fail/done/expert.r1" ] || fail "a failed gather was marked done"
echo "expert_gather.sh: all passed"
