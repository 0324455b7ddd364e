#!/usr/bin/env bash
# The process grid and the collectives under mpirun (tests/mpi/grid_coll.c):
# 4 ranks as dp x tp = 4x1, 2x2 and 1x4, and a singleton; then a rank that
# calls rd_mpi_fatal while the others wait in a barrier must end the whole
# job quickly, non-zero, with its message shown.
# shellcheck source=tests/lib/script.bash
source "${RD_SOURCE_DIR:?set by ctest}/tests/lib/script.bash"
BIN=$(test_program grid_coll)

for tp in 1 2 4; do
  echo "== 4 ranks, tp $tp"
  timeout 120 mpirun -np 4 --oversubscribe --tag-output "$BIN" "$tp"
done
echo "== singleton"
timeout 60 "$BIN" 1

echo "== fatal error on one rank"
# Each job must end within 15 s, non-zero, printing the failing rank's message.
expect_fatal 15 "fatal on rank 3 of 4" "rediff: rank 3: deliberate failure for the test" \
  mpirun -np 4 --oversubscribe "$BIN" fatal
# mpirun by default kills the job when any rank exits non-zero, which would
# hide a rank that merely exit()s. Launchers that do not (srun without
# --kill-on-bad-exit) leave the others in their barrier forever; with this
# setting mpirun behaves the same, so only MPI_Abort can end the job in time.
expect_fatal 15 "fatal on rank 3 of 4, launcher not killing on exit" \
  "rediff: rank 3: deliberate failure for the test" \
  mpirun --mca orte_abort_on_non_zero_status 0 -np 4 --oversubscribe "$BIN" fatal
expect_fatal 15 "fatal in a singleton" "rediff: deliberate failure for the test" \
  "$BIN" fatal
echo "grid_coll.sh: all passed"
