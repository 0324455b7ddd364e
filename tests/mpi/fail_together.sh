#!/usr/bin/env bash
# Failing together with the real rediff binary under mpirun: a problem that
# one rank or every rank meets must end ALL ranks within seconds, exit
# non-zero and print the message naming the problem.
#  1. ranks started with different configs (MPMD launch);
#  2. parallel.tp that does not split the model or the job;
#  3. a training shard whose /images chunk is corrupt: the one rank that
#     reads it fails mid-run while the other waits in the gradient all-reduce.
# Every case also runs with mpirun told not to kill the job when a rank exits
# non-zero (as srun without --kill-on-bad-exit behaves), so the job must end
# by rediff's own doing. mpirun then exits 0 unless a rank aborted, so each
# rank is started through a wrapper that prints its exit status.
# shellcheck source=tests/lib/script.bash
source "${RD_SOURCE_DIR:?set by ctest}/tests/lib/script.bash"
need_env REDIFF
# 130 samples in two shards of 65: the last HDF5 chunk (64 samples) of each
# shard holds one sample, so corrupting it breaks exactly one sample.
data=(--set data.n_train=130 --set data.shard_size=65 --set data.n_eval=64
      --set eval.n_samples=64 --set draft.n_samples=16)
small=("${small_model[@]}" --set train.eval_every=1000 --set train.ckpt_every=1000)
mpi=(mpirun --oversubscribe)
no_kill=(--mca orte_abort_on_non_zero_status 0)
cat >"$tmp/each.sh" <<'SH'
"$@"
rc=$?
echo "rank ${OMPI_COMM_WORLD_RANK:-0} exited $rc"
exit $rc
SH
each=(bash "$tmp/each.sh")

"$REDIFF" data synth -c "$cfg" --run-dir "$tmp/run" "${data[@]}" >/dev/null
run=(base -c "$cfg" --run-dir "$tmp/run" "${data[@]}" "${small[@]}" --set base.steps=10)

echo "== 1. a config that differs on one rank"
sed 's/^\( *lr: \)0.001 /\10.002 /' "$cfg" >"$tmp/other.yaml"
cmp -s "$cfg" "$tmp/other.yaml" && fail "could not change train.lr in a copy of $cfg"
other=("${run[@]}")
other[2]="$tmp/other.yaml"
for launch in default no_kill; do
  opts=()
  [ $launch = no_kill ] && opts=("${no_kill[@]}")
  expect_fatal 20 "3 ranks with one config, 1 with another ($launch)" \
    "^rediff: config differs between ranks: rank 3 has hash [0-9a-f]{16}, rank 0 has [0-9a-f]{16}.*; first difference: train\.lr is 0\.002 on rank 3, 0\.001 on rank 0$" \
    "${mpi[@]}" "${opts[@]}" -np 3 "${each[@]}" "$REDIFF" "${run[@]}" : -np 1 "${each[@]}" "$REDIFF" "${other[@]}"
  expect_fatal 20 "one rank with another --set ($launch)" \
    "^rediff: config differs between ranks: rank 1 has hash .*; first difference: train\.seed is 2 on rank 1, 1 on rank 0$" \
    "${mpi[@]}" "${opts[@]}" -np 1 "${each[@]}" "$REDIFF" "${run[@]}" : -np 1 "${each[@]}" "$REDIFF" "${run[@]}" \
    --set train.seed=2
done

echo "== 2. parallel.tp that does not divide"
# The config check (io/config_check.c) refuses it before any MPI work; the grid's
# own check (mpi/check.c) says it in other words. Either is right.
heads=(--set model.d_model=96 --set model.n_heads=3 --set parallel.tp=2)
for launch in default no_kill; do
  opts=()
  [ $launch = no_kill ] && opts=("${no_kill[@]}")
  expect_fatal 20 "tp 2, 3 heads, 2 ranks ($launch)" \
    "^rediff: .*parallel\.tp( \(2\) must divide| = 2 does not divide) model\.n_heads( \(3\)| = 3)" \
    "${mpi[@]}" "${opts[@]}" -np 2 "${each[@]}" "$REDIFF" "${run[@]}" "${heads[@]}"
  expect_fatal 20 "tp 2 on 3 ranks ($launch)" "^rediff: parallel\.tp = 2 does not divide the 3 MPI ranks of the job" \
    "${mpi[@]}" "${opts[@]}" -np 3 "${each[@]}" "$REDIFF" "${run[@]}" --set parallel.tp=2
done
expect_fatal 20 "tp 4, 6 heads, 4 ranks" \
  "^rediff: .*parallel\.tp( \(4\) must divide| = 4 does not divide) model\.n_heads( \(6\)| = 6)" \
  "${mpi[@]}" -np 4 "$REDIFF" "${run[@]}" --set model.d_model=96 --set model.n_heads=6 --set parallel.tp=4 \
  --set parallel.ranks=4

echo "== 3. a corrupt chunk of /images read by one rank mid-run"
shard="$tmp/run/data/train-00000.h5"
cp "$shard" "$tmp/good.h5"
# Scramble the deflated bytes of the chunk that holds sample 64 alone: the
# shard still opens (its checks read attributes, shapes and /caption_len),
# but reading that sample fails in inflate().
"$py" - "$shard" <<'PY'
import sys, h5py
path = sys.argv[1]
with h5py.File(path, "r") as f:
    ds = f["/images"]
    assert ds.compression == "gzip" and ds.chunks[0] == 64 and ds.shape[0] == 65, (ds.compression, ds.chunks, ds.shape)
    info = ds.id.get_chunk_info_by_coord((64, 0, 0, 0))
with open(path, "r+b") as fh:
    fh.seek(info.byte_offset + 2)
    body = fh.read(info.size - 2)
    fh.seek(info.byte_offset + 2)
    fh.write(bytes(b ^ 0x5A for b in body))
PY
for launch in default no_kill; do
  opts=()
  [ $launch = no_kill ] && opts=("${no_kill[@]}")
  rm -rf "$tmp/run/ckpt" "$tmp/run/logs"
  expect_fatal 20 "corrupt chunk, 2 ranks ($launch)" \
    "^rediff: rank [01]: .*data/train-00000\.h5: dataset /images: H5Dread failed" \
    "${mpi[@]}" "${opts[@]}" -np 2 "${each[@]}" "$REDIFF" "${run[@]}"
  # Mid-run: steps before the one that reads sample 64 were trained (with
  # train.seed 1 it is in the batch of step 3, on rank 1; should a change of
  # the data order put it in step 1, corrupt sample 129 of train-00001.h5).
  grep -q '"kind":"train"' "$tmp/run/logs/base.jsonl" || fail "the corrupt sample was read before the first step"
  ! grep -q '"step":10,' "$tmp/run/logs/base.jsonl" || fail "training finished over a corrupt sample"
  [ ! -f "$tmp/run/done/base" ] || fail "a failed stage wrote its done marker"
  ! pgrep -f -- "--run-dir $tmp/run" >/dev/null || fail "a rank outlived the job"
done
# One process reads every sample, so it meets the same chunk and says so.
rm -rf "$tmp/run/ckpt" "$tmp/run/logs"
expect_fatal 20 "corrupt chunk, one process" "^rediff: .*data/train-00000\.h5: dataset /images: H5Dread failed" \
  "$REDIFF" "${run[@]}"
# The same run over the intact shard trains to its end.
cp "$tmp/good.h5" "$shard"
rm -rf "$tmp/run/ckpt" "$tmp/run/logs"
timeout 120 "${mpi[@]}" -np 2 "$REDIFF" "${run[@]}" 2>/dev/null || fail "the run over intact shards failed"
[ -f "$tmp/run/done/base" ] || fail "the run over intact shards left no done marker"
echo "fail_together.sh: all passed"
