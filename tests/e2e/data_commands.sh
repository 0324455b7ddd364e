#!/usr/bin/env bash
# rediff data synth / info / show end to end, h5py reading our shards, and
# the command line's handling of bad input (exit codes, messages, nothing
# written).
# shellcheck source=tests/lib/script.bash
source "${RD_SOURCE_DIR:?set by ctest}/tests/lib/script.bash"
need_env REDIFF
small=(--set data.n_train=600 --set data.n_eval=100 --set data.shard_size=256 --set eval.n_samples=100 --set draft.n_samples=100)

run="$tmp/run"
"$REDIFF" data synth -c "$cfg" --run-dir "$run" "${small[@]}" >"$tmp/synth.txt"
cat "$tmp/synth.txt"
for f in vocab.txt train-00000.h5 train-00001.h5 train-00002.h5 eval-00000.h5; do
  [ -f "$run/data/$f" ] || fail "missing $f"
done
[ ! -e "$run/data/train-00003.h5" ] || fail "an extra shard"
[ -f "$run/done/data" ] || fail "no done marker"
grep -q "600 train + 100 eval samples" "$tmp/synth.txt" || fail "wrong counts"
ls -a "$run" | grep -q tmp && fail "a temporary folder was left"

# A second synth finds the done marker and leaves the files alone.
before=$(stat -c %Y "$run/data/train-00000.h5")
"$REDIFF" data synth --run-dir "$run" "${small[@]}" | grep -q "done already" || fail "synth did not skip"
[ "$(stat -c %Y "$run/data/train-00000.h5")" = "$before" ] || fail "synth rewrote a shard"

"$REDIFF" data info "$run/data/train-00001.h5" --index 17 >"$tmp/info.txt"
grep -q "^samples: 256$" "$tmp/info.txt" || fail "info sample count"
grep -q "vocab.txt matches" "$tmp/info.txt" || fail "info vocab"
grep -q "^sample 17: sample_id 273," "$tmp/info.txt" || fail "info sample id"

# A real client reads our files: h5py sees the same tokens and image bytes.
"$py" "$RD_SOURCE_DIR/tests/reference/shard_vs_info.py" "$run/data/train-00001.h5" 17 "$tmp/info.txt"

"$REDIFF" data show "$run/data/eval-00000.h5" --index 3 --png "$tmp/s3.png" >"$tmp/show.txt"
head -c 8 "$tmp/s3.png" | od -An -tx1 | grep -q "89 50 4e 47 0d 0a 1a 0a" || fail "not a PNG"
grep -q "^caption: " "$tmp/show.txt" && grep -q "^halluc: " "$tmp/show.txt" || fail "show prints captions"
grep -q "^scene: count" "$tmp/show.txt" || fail "show prints the scene"
grep -q "384 x 384" "$tmp/show.txt" || fail "show enlarges 8x"

# Bad input: exit 1 with one message naming the place; usage errors exit 2.
printf 'model:\n  d_modle: 64\n' >"$tmp/bad.yaml"
expect_exit 1 "bad.yaml:2:3: unknown key 'model.d_modle'" "$REDIFF" data synth -c "$tmp/bad.yaml" --run-dir "$tmp/r2"
[ ! -e "$tmp/r2" ] || fail "a bad config wrote files"
expect_exit 1 "data.n_train wants an integer" "$REDIFF" data synth --run-dir "$tmp/r2" --set data.n_train=many
expect_exit 2 "unknown command" "$REDIFF" frobnicate
expect_exit 2 "unknown command 'generat' (did you mean 'generate'?" "$REDIFF" generat
"$REDIFF" --version | grep -Eq '^rediff [0-9]+\.[0-9]+\.[0-9]+ \(commit ([0-9a-f]+|unknown); model backends: cpu[ ,].*, HDF5 ' \
  || fail "rediff --version: version, commit and build options"
expect_exit 2 "does not take --index" "$REDIFF" data synth --index 3
expect_exit 2 "usage: rediff data show" "$REDIFF" data show "$run/data/eval-00000.h5"
expect_exit 2 "is past the 100 samples" "$REDIFF" data info "$run/data/eval-00000.h5" --index 100
head -c 3000 "$run/data/train-00000.h5" >"$tmp/trunc.h5"
expect_exit 1 "trunc.h5" "$REDIFF" data info "$tmp/trunc.h5"
expect_exit 1 "missing.h5: no such file" "$REDIFF" data info "$tmp/missing.h5"
echo "data commands: ok"
