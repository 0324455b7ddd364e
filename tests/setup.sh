#!/usr/bin/env bash
# Installs what rediff needs from Debian's archive (only what is missing),
# then configures and builds into build/. Safe to run again: a second run
# installs nothing and rebuilds only what changed.
#
#   bash tests/setup.sh            # Release build in build/
#   RD_CMAKE_ARGS="-DRD_SANITIZE=ON" bash tests/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  gcc make cmake pkg-config
  openmpi-bin libopenmpi-dev libhdf5-openmpi-dev libhdf5-dev hdf5-tools
  libyaml-dev libopenblas-dev libpng-dev libjansson-dev
  python3 python3-numpy python3-h5py python3-torch python3-yaml
  slurm-wlm munge shellcheck
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# shellcheck disable=SC2086
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release ${RD_CMAKE_ARGS:-} >build.log 2>&1 || { cat build.log; exit 1; }
cmake --build build -j "$(nproc)" >>build.log 2>&1 || { tail -50 build.log; exit 1; }
echo "setup: built build/rediff"
