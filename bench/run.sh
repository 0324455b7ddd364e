#!/usr/bin/env bash
# The training-step benchmark: rediff's CPU step against the PyTorch reference
# of the same model, at 1 and 2 threads, interleaved in one run, plus the
# machine's cblas_sgemm rate; prints the table of docs/RESULTS.md.
#
# usage: bash bench/run.sh
# env:   REPS (3) runs of each program, STEPS (3) timed steps per run after
#        one warm-up step, CONFIG (configs/bench-cpu.yaml), BUILD_DIR (build).
# Every number is the best over all runs; the spread line says how much the
# per-run bests moved (a shared machine is noisy).
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-3}
STEPS=${STEPS:-3}
CONFIG=${CONFIG:-configs/bench-cpu.yaml}
BUILD=${BUILD_DIR:-build}
PY=/usr/bin/python3 # Debian's python3-torch lives here

if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD" -DRD_WERROR=ON >/dev/null
fi
cmake --build "$BUILD" -j2 --target train_step >/dev/null
TS=$BUILD/bench/train_step

out=$(mktemp)
trap 'rm -f "$out"' EXIT
for rep in $(seq "$REPS"); do
  echo "run $rep of $REPS ..." >&2
  for t in 1 2; do
    for n in 1024 2048; do
      OMP_NUM_THREADS=$t "$TS" --sgemm "$n" --threads "$t" --reps 3 >>"$out"
    done
    # alternate who goes first, so neither always meets the same background load
    if [ $((rep % 2)) = 1 ]; then order="rediff pytorch"; else order="pytorch rediff"; fi
    for impl in $order; do
      if [ "$impl" = rediff ]; then
        OMP_NUM_THREADS=$t "$TS" -c "$CONFIG" --threads "$t" --steps "$STEPS" >>"$out"
      else
        OMP_NUM_THREADS=$t "$PY" bench/torch_step.py -c "$CONFIG" --threads "$t" --steps "$STEPS" >>"$out"
      fi
    done
  done
done
"$TS" -c configs/tiny.yaml --memory >>"$out"
"$TS" -c "$CONFIG" --memory >>"$out"
"$PY" bench/report.py "$out"
