#!/usr/bin/env bash
# Checkpoints across process grids: a file saved by 2 ranks (each holding
# half of the split tensors) loads whole on 1 rank, a 1-rank file loads as
# slabs on 2 ranks, a dp x tp = 2 x 2 save writes each slab once, and a
# corrupted newest file makes all ranks fall back together.
set -euo pipefail
: "${RD_BINARY_DIR:?set by ctest}"
prog="$RD_BINARY_DIR/tests/ckpt_mpi"
[ -x "$prog" ] || { echo "ckpt_slabs: $prog is not built" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
mpi() { local np=$1; shift; mpirun -np "$np" --oversubscribe "$prog" "$@"; }

work=$(mktemp -d "${TMPDIR:-/tmp}/rd_ckpt_slabs.XXXXXX")
trap 'rm -rf "$work"' EXIT

# 2 ranks write halves; 1 rank reads it all; 2 ranks read their halves back.
mpi 2 save "$work/a" 2 100
"$prog" load "$work/a" 1 100
mpi 2 load "$work/a" 2 100

# 1 rank writes it all; 2 ranks read their slabs.
"$prog" save "$work/b" 1 200
mpi 2 load "$work/b" 2 200

# dp 2 x tp 2: replicas hold the same slabs; the file must still be exact.
mpi 4 save "$work/c" 2 300
"$prog" load "$work/c" 1 300
mpi 4 load "$work/c" 2 300

# A corrupted chunk in the newest file: both ranks fall back to step 100.
mpi 2 save "$work/a" 2 150
"$prog" corrupt "$work/a/step-00000150.h5"
mpi 2 load "$work/a" 2 100 2> "$work/err.txt" || { cat "$work/err.txt" >&2; exit 1; }
grep -q "Fletcher32 checksum" "$work/err.txt" || { echo "ckpt_slabs: no checksum warning:" >&2; cat "$work/err.txt" >&2; exit 1; }
echo "ckpt_slabs: ok"
