#!/usr/bin/env bash
# The tensor-parallel model against the whole model (tests/mpi/tp_model.c),
# split over 2 and over 4 ranks.
set -euo pipefail
: "${RD_BINARY_DIR:?set by ctest}"
prog="$RD_BINARY_DIR/tests/tp_model"
[ -x "$prog" ] || { echo "tp_model: $prog is not built" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
for np in 2 4; do timeout 120 mpirun -np "$np" --oversubscribe "$prog"; done
echo "tp_model: ok"
