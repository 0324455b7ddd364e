#!/usr/bin/env bash
# The test command: installs and builds (tests/setup.sh, warnings as errors),
# then runs every test: unit (ctest), MPI (mpirun), reference (PyTorch and
# h5py parity) and end-to-end.
set -euo pipefail
cd "$(dirname "$0")/.."
RD_CMAKE_ARGS="-DRD_WERROR=ON ${RD_CMAKE_ARGS:-}" bash tests/setup.sh

# Open MPI refuses root without these; CI and many containers run as root.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cd build
ctest --output-on-failure -j 2 "$@"
