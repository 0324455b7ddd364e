#!/usr/bin/env bash
# The process grid and the collectives under mpirun (tests/mpi/grid_coll.c):
# 4 ranks as dp x tp = 4x1, 2x2 and 1x4, and a singleton; then a rank that
# calls rd_mpi_fatal while the others wait in a barrier must end the whole
# job quickly, non-zero, with its message shown.
set -euo pipefail
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
BIN="${RD_BINARY_DIR:?set RD_BINARY_DIR to the build folder}/tests/grid_coll"
[ -x "$BIN" ] || { echo "grid_coll.sh: $BIN is not built (cmake --build <build> --target grid_coll)" >&2; exit 1; }

for tp in 1 2 4; do
  echo "== 4 ranks, tp $tp"
  timeout 120 mpirun -np 4 --oversubscribe --tag-output "$BIN" "$tp"
done
echo "== singleton"
timeout 60 "$BIN" 1

# expect_fatal LABEL CMD...: CMD must end within the timeout, exit non-zero,
# and print the failing rank's message.
expect_fatal() {
  local label=$1 want=$2; shift 2
  local out rc start=$SECONDS
  set +e
  out=$(timeout 30 "$@" 2>&1)
  rc=$?
  set -e
  local took=$((SECONDS - start))
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "FAIL $label: still running after 30 s (a rank hangs)" >&2; echo "$out" >&2; exit 1
  fi
  if [ "$rc" -eq 0 ]; then
    echo "FAIL $label: exited 0 after a fatal error" >&2; echo "$out" >&2; exit 1
  fi
  if ! grep -qF "$want" <<<"$out"; then
    echo "FAIL $label: the output lacks \"$want\"" >&2; echo "$out" >&2; exit 1
  fi
  if [ "$took" -gt 15 ]; then
    echo "FAIL $label: took $took s to end" >&2; exit 1
  fi
  echo "ok   $label: exit $rc after ${took} s"
}
echo "== fatal error on one rank"
expect_fatal "fatal on rank 3 of 4" "rediff: rank 3: deliberate failure for the test" \
  mpirun -np 4 --oversubscribe "$BIN" fatal
# mpirun by default kills the job when any rank exits non-zero, which would
# hide a rank that merely exit()s. Launchers that do not (srun without
# --kill-on-bad-exit) leave the others in their barrier forever; with this
# setting mpirun behaves the same, so only MPI_Abort can end the job in time.
expect_fatal "fatal on rank 3 of 4, launcher not killing on exit" \
  "rediff: rank 3: deliberate failure for the test" \
  mpirun --mca orte_abort_on_non_zero_status 0 -np 4 --oversubscribe "$BIN" fatal
expect_fatal "fatal in a singleton" "rediff: rank 0: deliberate failure for the test" \
  "$BIN" fatal
echo "grid_coll.sh: all passed"
