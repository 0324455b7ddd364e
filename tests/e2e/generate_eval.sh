#!/usr/bin/env bash
# rediff generate and rediff eval end to end on a small trained base model:
# captions from a shard sample and from a PNG, trajectories with one record
# per step that lists every unmasked token, starting captions, bad input;
# eval's results.json / results.md / PNG, and the same numbers under
# mpirun -np 2 as on one rank; a failed write leaves no partial result.
# shellcheck source=tests/lib/script.bash
source "${RD_SOURCE_DIR:?set by ctest}/tests/lib/script.bash"
need_env REDIFF
set_=(-c "$cfg" --set data.n_train=2000 --set data.n_eval=128 --set data.shard_size=512 --set eval.n_samples=32
      "${small_model[@]}")
run=$tmp/run
"$REDIFF" data synth "${set_[@]}" --run-dir "$run" >/dev/null
"$REDIFF" base "${set_[@]}" --run-dir "$run" --set base.steps=100 --set train.eval_every=100 \
  --set train.ckpt_every=100 2>/dev/null
shard=$run/data/eval-00000.h5
ckpt=$run/ckpt/base

# 1. generate from a shard sample and from a PNG of `data show`, both modes,
#    with trajectories: one record per step, each listing its unmasked tokens.
"$REDIFF" data show "$shard" --index 5 --png "$tmp/s5.png" >/dev/null
check_traj() { # file steps tokens-unmasked-in-all
  $py - "$@" <<'PY' || fail "trajectory $1"
import re, sys
path, steps, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
text = open(path).read()
recs = re.findall(r"^step (\d+)/(\d+)\n  caption: (.*)\n  unmasked \((\d+)\):(.*)\n  changed \((\d+)\):(.*)$", text, re.M)
assert len(recs) == steps, (len(recs), steps)
n = 0
for i, (k, of, cap, nu, um, nc, ch) in enumerate(recs):
    assert int(k) == i + 1 and int(of) == steps
    items = um.split()
    assert len(items) == int(nu) and all(re.fullmatch(r"\d+:\S+", t) for t in items), um
    changes = ch.split()
    assert len(changes) == int(nc) and all(re.fullmatch(r"\d+:\S+->\S+", t) for t in changes), ch
    n += int(nu)
assert n == total, (n, total)
assert "_" not in recs[-1][2].split()   # nothing masked at the end
PY
}
for mode in refine remask; do
  "$REDIFF" generate "${set_[@]}" --run-dir "$run" --ckpt "$ckpt" --shard "$shard" --index 5 --steps 16 \
    --mode $mode --trajectory "$tmp/shard_$mode.txt" >"$tmp/shard_$mode.out" 2>"$tmp/shard_$mode.err"
  check_traj "$tmp/shard_$mode.txt" 16 64
  grep -q "16 steps, 16 forward passes" "$tmp/shard_$mode.err" || fail "forward pass count ($mode)"
  "$REDIFF" generate "${set_[@]}" --run-dir "$run" --ckpt "$ckpt/$(cat "$ckpt/LATEST")" --image "$tmp/s5.png" \
    --steps 16 --mode $mode --trajectory "$tmp/png_$mode.txt" >"$tmp/png_$mode.out" 2>/dev/null
  check_traj "$tmp/png_$mode.txt" 16 64
  # the PNG is the shard's image: the same caption
  cmp "$tmp/shard_$mode.out" "$tmp/png_$mode.out" || fail "PNG and shard sample decode differently ($mode)"
done
[ "$(wc -l <"$tmp/shard_remask.out")" = 1 ] || fail "generate prints one caption line"
# remask never revises; 7 steps of 64 tokens in one block unmask 10,9,9,9,9,9,9
"$REDIFF" generate "${set_[@]}" --run-dir "$run" --ckpt "$ckpt" --shard "$shard" --index 2 --steps 7 \
  --block 0 --mode remask --trajectory "$tmp/t7.txt" >/dev/null 2>&1
[ "$(grep -o 'unmasked ([0-9]*)' "$tmp/t7.txt" | tr -dc '0-9\n' | paste -sd,)" = 10,9,9,9,9,9,9 ] \
  || fail "unmasked per step with 7 steps"
[ -z "$(grep 'changed (' "$tmp/t7.txt" | grep -v 'changed (0)')" ] || fail "remask changed a token"
# an empty caption is said to be empty, not printed as a bare empty line
"$REDIFF" generate "${set_[@]}" --run-dir "$run" --ckpt "$ckpt" --shard "$shard" --index 2 --steps 6 \
  --mode remask --caption "[EOS] _" >"$tmp/empty.out" 2>"$tmp/empty.err"
[ "$(cat "$tmp/empty.out")" = "" ] || fail "an [EOS]-first caption printed words"
grep -q "the caption is empty: its first token is \[EOS\]" "$tmp/empty.err" || fail "an empty caption is not explained"
# a starting caption: remask keeps the given words, 60 masked positions to fill
"$REDIFF" generate "${set_[@]}" --run-dir "$run" --ckpt "$ckpt" --shard "$shard" --index 2 --steps 6 \
  --mode remask --caption "there are _ objects" --trajectory "$tmp/c.txt" >/dev/null 2>&1
check_traj "$tmp/c.txt" 6 61
grep -q "^start: there are _ objects _" "$tmp/c.txt" || fail "starting caption not in the trajectory"
$py - "$tmp/c.txt" <<'PY' || fail "remask revised the starting caption"
import sys
last = [l for l in open(sys.argv[1]) if l.startswith("  caption:")][-1].split()[1:]
assert last[0] == "there" and last[1] == "are" and last[3] == "objects", last
PY
# bad input: a clear message, exit code 1 or 2
g=("$REDIFF" generate "${set_[@]}" --run-dir "$run" --ckpt "$ckpt")
expect_exit 1 "word 2 'blorp' is not in the vocabulary" "${g[@]}" --shard "$shard" --index 0 --caption "there blorp"
expect_exit 1 "between 4 (one per block) and 64" "${g[@]}" --shard "$shard" --index 0 --steps 65
expect_exit 2 "neither refine nor remask" "${g[@]}" --shard "$shard" --index 0 --mode greedy
expect_exit 2 "usage: rediff generate" "${g[@]}" --shard "$shard"
expect_exit 1 "does not exist" "$REDIFF" generate "${set_[@]}" --run-dir "$run" --ckpt "$tmp/nope.h5" --image "$tmp/s5.png"

# 2. eval: 2 models asked, the missing one skipped; 4 rows; outputs valid,
# with the blind control, intervals and the probe.
expect_exit 1 "unknown mode 'greedy'" "$REDIFF" eval "${set_[@]}" --run-dir "$run" --set "eval.models=[base:greedy]"
# A model of another image size is refused before it reads a byte of the
# shards (it would misread every image), by eval and by draft alike.
expect_exit 1 "eval-*.h5: 48 x 48 images, the config's model.image_size is 32" \
  "$REDIFF" eval "${set_[@]}" --run-dir "$run" --set model.image_size=32
expect_exit 1 "train-*.h5: 48 x 48 images, the config's model.image_size is 32" \
  "$REDIFF" draft "${set_[@]}" --run-dir "$run" --round 1 --set model.image_size=32
# Batches of 16: one rank decodes [0, 16) and [16, 32), two ranks one batch
# each, so that section 3 compares the same matrix products (OpenBLAS's sgemm
# rounds a row by the row count of the call, and this briefly trained model
# decides many tokens closer than that rounding).
ev=(eval "${set_[@]}" --set "eval.models=[base, stage1:refine]" --set eval.n_samples=32 --set "eval.tokens_per_step=[1, 8]"
    --set eval.batch=16)
"$REDIFF" "${ev[@]}" --run-dir "$run" >"$tmp/eval.out" 2>"$tmp/eval.err"
grep -q "model stage1: no checkpoint" "$tmp/eval.err" || fail "missing model not noted"
[ "$(grep -c "^eval: base .* tok/step" "$tmp/eval.err")" = 4 ] || fail "one progress line per setting"
grep -q "^| base | remask |" "$tmp/eval.out" || fail "the table is not printed"
[ -f "$run/done/eval" ] || fail "no done marker"
$py - "$run/eval" <<'PY' || fail "results"
import json, struct, sys
d = sys.argv[1]
r = json.load(open(d + "/results.json"))
rows = r["rows"]
assert r["n_samples"] == 32 and r["skipped"] == ["stage1"], r
assert len(rows) == 4, rows
assert sorted((x["mode"], x["tokens_per_step"]) for x in rows) == [("refine", 1), ("refine", 8), ("remask", 1), ("remask", 8)]
for x in rows:
    assert x["model"] == "base" and x["n_samples"] == 32 and x["steps"] == 64 // x["tokens_per_step"]
    for k in ("f1", "factuality", "coverage", "syntax", "repetition", "bleu4"):
        assert 0 <= x[k] <= 1, (k, x)
    assert 0 <= x["cider"] <= 10 and x["captions_per_s"] > 0 and x["forward_passes_per_s"] > 0
    for k in ("f1", "syntax", "f1_blind", "syntax_blind"):
        lo, hi = x[k + "_ci"]
        assert 0 <= lo <= x[k] <= hi <= 1, (k, x)
    for k in ("factuality_blind", "coverage_blind"):
        assert 0 <= x[k] <= 1, (k, x)
assert "another sample" in r["blind"] and "bootstrap" in r["interval"], r
(p,) = r["probe"]
assert p["model"] == "base", p
for side in ("image", "blind"):
    assert sorted(p[side]) == sorted(["count", "size", "colour", "shape", "position", "relation"]), p
    assert all(v is None or 0 <= v <= 1 for v in p[side].values()), p
md = open(d + "/results.md").read()
assert "| model | mode | tokens/step | F1 | F1 blind | syntax | syntax blind |" in md, md
assert md.count("| base |") == 5, md  # 4 settings and the probe
png = open(d + "/quality_vs_speed.png", "rb").read()
assert png[:8] == b"\x89PNG\r\n\x1a\n"
w, h = struct.unpack(">II", png[16:24])
assert 600 <= w <= 4000 and 300 <= h <= 3000, (w, h)
PY
"$REDIFF" "${ev[@]}" --run-dir "$run" | grep -q "done already" || fail "a finished eval ran again"

# 3. The same numbers from 2 ranks (each decodes half, counts summed), bitwise:
#    the batches are the same products as on one rank.
mkdir -p "$tmp/mpi" && cp -r "$run/data" "$run/ckpt" "$tmp/mpi/"
mpirun -np 2 --oversubscribe "$REDIFF" "${ev[@]}" --run-dir "$tmp/mpi" >/dev/null 2>"$tmp/mpi.err" \
  || { cat "$tmp/mpi.err"; fail "eval under mpirun"; }
same_results "$run/eval/results.json" "$tmp/mpi/eval/results.json" "2 ranks give the results of 1" || fail "2 ranks differ from 1"
# 4. A failure writing the last output (the figure's path is a folder here)
# leaves no results.json or results.md behind, and no done marker.
mkdir -p "$tmp/part" && cp -r "$run/data" "$run/ckpt" "$tmp/part/"
mkdir -p "$tmp/part/eval/quality_vs_speed.png"
expect_exit 1 "quality_vs_speed.png" "$REDIFF" "${ev[@]}" --run-dir "$tmp/part"
[ ! -e "$tmp/part/eval/results.json" ] && [ ! -e "$tmp/part/eval/results.md" ] \
  || fail "a failed eval left a partial result"
[ ! -e "$tmp/part/done/eval" ] || fail "a failed eval was marked done"
echo "generate and eval: ok"
