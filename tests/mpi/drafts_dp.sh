#!/usr/bin/env bash
# rediff draft at dp 2 writes the same drafts as one process, sample by
# sample: each rank decodes its slice of the drafted samples in batches of
# other neighbours than the single process has, and the decoding noise is
# keyed by sample id, so every draft's tokens must be equal.
# shellcheck source=tests/lib/script.bash
source "${RD_SOURCE_DIR:?set by ctest}/tests/lib/script.bash"
need_env REDIFF
# 14 drafted samples in batches of 4: one process decodes them as 4+4+4+2,
# two ranks as 4+3 and 4+3, so no batch but the first is the same.
args=(-c "$cfg" --set data.n_train=130 --set data.shard_size=65 --set data.n_eval=64
      --set eval.n_samples=64 --set draft.n_samples=14 --set eval.batch=4
      --set "draft.step_counts=[64, 16, 8]" "${small_model[@]}" --set train.eval_every=1000 --set train.ckpt_every=1000
      --set model.image_heads=0 --set model.vision_fan_in=false --set model.vision_layers=1)

# A few steps from the seeded init: a model still far from writing [EOS]
# first, so every draft has all gen_len tokens to compare (a longer-trained
# tiny model writes empty drafts at first; so does one with image heads and
# a fan-in vision init after these few steps, hence the model keys below).
"$REDIFF" data synth "${args[@]}" --run-dir "$tmp/one" >/dev/null
"$REDIFF" base "${args[@]}" --run-dir "$tmp/one" --set base.steps=4 2>/dev/null
"$REDIFF" stage1 "${args[@]}" --run-dir "$tmp/one" --set stage1.steps=2 2>/dev/null
cp -r "$tmp/one" "$tmp/two"

"$REDIFF" draft --round 1 "${args[@]}" --run-dir "$tmp/one" 2>"$tmp/one.err" || { cat "$tmp/one.err"; fail "draft, 1 process"; }
timeout 120 mpirun --oversubscribe -np 2 "$REDIFF" draft --round 1 "${args[@]}" --run-dir "$tmp/two" 2>"$tmp/two.err" \
  || { cat "$tmp/two.err"; fail "draft, 2 ranks"; }
grep -q "2 ranks" "$tmp/two.err" || { cat "$tmp/two.err"; fail "the dp 2 draft did not run on 2 ranks"; }
[ -f "$tmp/two/drafts/r1/rank1.h5" ] || fail "no rank1.h5 from the dp 2 draft"
[ ! -f "$tmp/one/drafts/r1/rank1.h5" ] || fail "a rank1.h5 from one process"

"$py" - "$tmp/one/drafts/r1" "$tmp/two/drafts/r1" <<'PY'
import glob, sys
import h5py
import numpy as np

def load(folder):
    """{(sample_id, steps): tokens} over every rank<k>.h5 of a round."""
    rows, per_file = {}, []
    for path in sorted(glob.glob(folder + "/rank*.h5")):
        with h5py.File(path, "r") as f:
            ids, steps, tokens = f["sample_id"][:], f["steps"][:], f["tokens"][:]
        per_file.append(set(int(i) for i in ids))
        for i, s, t in zip(ids, steps, tokens):
            key = (int(i), int(s))
            assert key not in rows, "%s: sample %d at %d steps twice" % (path, *key)
            rows[key] = t
    return rows, per_file

one, _ = load(sys.argv[1])
two, files = load(sys.argv[2])
assert len(one) == 14 * 3, len(one)
assert set(one) == set(two), sorted(set(one) ^ set(two))
# The two ranks drafted disjoint halves.
assert len(files) == 2 and not (files[0] & files[1]) and len(files[0]) == len(files[1]) == 7, files
differ = [k for k in sorted(one) if not np.array_equal(one[k], two[k])]
for k in differ[:5]:
    print("sample %d, %d steps:\n  dp 1 %s\n  dp 2 %s" % (k[0], k[1], one[k].tolist(), two[k].tolist()))
assert not differ, "%d of %d drafts differ between dp 1 and dp 2" % (len(differ), len(one))
# Not a comparison of empty drafts: the tokens vary within and across drafts.
toks = np.stack([one[k] for k in sorted(one)])
assert (toks != 1).sum(axis=1).min() > 0, "an empty draft"
n_distinct = len(np.unique(toks, axis=0))
assert len(np.unique(toks)) > 5 and 2 * n_distinct >= len(toks), "drafts repeat (%d distinct)" % n_distinct
print("drafts: %d drafts (%d samples x 3 step counts, %d distinct, %d non-[EOS] tokens) equal at dp 1 and dp 2"
      % (len(one), len(one) // 3, n_distinct, int((toks != 1).sum())))
PY
echo "drafts_dp.sh: all passed"
