#!/usr/bin/env bash
# The tensor-parallel model against the whole model (tests/mpi/tp_model.c),
# split over 2 and over 4 ranks.
# shellcheck source=tests/lib/script.bash
source "${RD_SOURCE_DIR:?set by ctest}/tests/lib/script.bash"
prog=$(test_program tp_model)
export OMP_NUM_THREADS=1
for np in 2 4; do timeout 120 mpirun -np "$np" --oversubscribe "$prog"; done
echo "tp_model: ok"
