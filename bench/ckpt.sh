#!/usr/bin/env bash
# Checkpoint save and load times of the bench-cpu model (27.9 M parameters;
# a checkpoint holds parameters and both AdamW moments, ~335 MB) on the
# grids of this machine: saved by (dp, tp) = (1,1), (2,1), (1,2), each file
# then loaded by (1,1) and (1,2). Times are what the trainer reports: the
# save includes the replica check and the atomic rename, the load reads
# every slab with its checksum.
#
#   bench/ckpt.sh [path/to/rediff]
set -euo pipefail
[ -n "${RD_BENCH_DEBUG:-}" ] && set -x
here=$(cd "$(dirname "$0")/.." && pwd)
rediff=${1:-$here/build/rediff}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cfg=(-c "$here/configs/bench-cpu.yaml" --set data.n_train=256 --set data.n_eval=64 --set eval.n_samples=64 --set draft.n_samples=64 --set data.shard_size=256
     --set train.batch_size=4 --set train.eval_every=1000 --set train.threads=1)
"$rediff" data synth "${cfg[@]}" --run-dir "$tmp/data0" >/dev/null
launch() { local n=$1; shift; if [ "$n" -gt 1 ]; then mpirun -np "$n" --oversubscribe "$@"; else "$@"; fi; }
printf '%-10s %-10s %10s %10s %10s\n' saved_by loaded_by save_s load_s file_MB
for save in 1x1 2x1 1x2; do
  sdp=${save%x*} stp=${save#*x}
  run="$tmp/s$save"
  mkdir -p "$run" && cp -r "$tmp/data0/data" "$tmp/data0/done" "$run/"
  launch $((sdp * stp)) "$rediff" base "${cfg[@]}" --run-dir "$run" --set parallel.tp="$stp" --set parallel.ranks=$((sdp * stp)) \
    --set base.steps=1 --set train.ckpt_every=1 2>"$run.err" || { cat "$run.err"; exit 1; }
  save_s=$(sed -n 's/.*step 1: checkpoint .* (\([0-9.]*\) s)$/\1/p' "$run.err")
  mb=$(du -m "$run/ckpt/base/step-00000001.h5" | cut -f1)
  for load in 1x1 1x2; do
    ldp=${load%x*} ltp=${load#*x}
    cp -r "$run" "$run.$load"
    rm -f "$run.$load/done/base"
    launch $((ldp * ltp)) "$rediff" base "${cfg[@]}" --run-dir "$run.$load" --set parallel.tp="$ltp" --set parallel.ranks=$((ldp * ltp)) \
      --set train.ckpt_every=1 --set base.steps=2 2>"$run.$load.err" || { cat "$run.$load.err"; exit 1; }
    load_s=$(sed -n 's/.*resuming from .* at step 1 (\([0-9.]*\) s)$/\1/p' "$run.$load.err")
    printf '%-10s %-10s %10s %10s %10s\n' "($sdp,$stp)" "($ldp,$ltp)" "$save_s" "$load_s" "$mb"
    rm -rf "$run.$load"
  done
done
