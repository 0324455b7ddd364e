#!/usr/bin/env bash
# A build without a CUDA model backend (every build of this version) refuses
# runtime.device: cuda, and runtime.precision: bf16 with device cpu, in
# every command that reads a config: exit 1, one line naming the key with
# its file, line and column, and nothing written to the run folder (no
# data, no logs, no Slurm scripts, no job queued). `config doc` and the
# defaults need no device and still work; --version says what was built.
# shellcheck source=tests/lib/script.bash
source "${RD_SOURCE_DIR:?set by ctest}/tests/lib/script.bash"
need_env REDIFF

"$REDIFF" --version >"$tmp/version.txt"
cat "$tmp/version.txt"
grep -q '; model backends: cpu' "$tmp/version.txt" || fail "--version does not name the model backends"
if grep -q 'model backends: cpu, cuda' "$tmp/version.txt"; then
  echo "skipped: this build has a CUDA backend, which takes runtime.device: cuda"
  exit 0
fi

no_cuda="runtime.device is cuda, but this build of rediff runs the model on the CPU only: the CUDA path is not built; set runtime.device: cpu"
no_bf16="runtime.precision is bf16, but bf16 storage needs runtime.device: cuda, and this build of rediff runs the model on the CPU only (fp32); set runtime.precision: fp32"
printf 'runtime:\n  device: cuda\n' >"$tmp/cuda.yaml"
printf 'runtime:\n  device: cpu\n  precision: bf16\n' >"$tmp/bf16.yaml"
# The GPU-cluster example as it read before it said device cpu.
sed -e 's/^  device: cpu .*/  device: cuda/' -e 's/^  precision: fp32 .*/  precision: bf16/' \
  "$RD_SOURCE_DIR/configs/cluster-gpu.yaml" >"$tmp/cluster-cuda.yaml"
line=$(grep -n '^  device: cuda$' "$tmp/cluster-cuda.yaml" | cut -d: -f1)
[ -n "$line" ] || fail "could not make the cuda variant of configs/cluster-gpu.yaml"

# sbatch, if ever run, leaves a mark: a refused submit must queue nothing.
mkdir -p "$tmp/bin"
printf '#!/bin/sh\ntouch "%s/sbatch-ran"\necho 1\n' "$tmp" >"$tmp/bin/sbatch"
chmod +x "$tmp/bin/sbatch"

# refused WANT_LINE CMD...: CMD exits 1, its stderr is the one line
# WANT_LINE, and $tmp/run does not exist.
refused() {
  local want=$1
  shift
  expect_exit 1 "" "$@"
  [ "$(cat "$tmp/err.txt")" = "$want" ] || { cat "$tmp/err.txt" >&2; fail "$*: want the one line: $want"; }
  [ ! -e "$tmp/run" ] || fail "$*: wrote $(find "$tmp/run" | head -5)"
  [ ! -e "$tmp/sbatch-ran" ] || fail "$*: ran sbatch"
}

c="$tmp/cuda.yaml"
want="rediff: $c:2:3: $no_cuda"
refused "$want" "$REDIFF" config show -c "$c"
refused "$want" "$REDIFF" data synth -c "$c" --run-dir "$tmp/run"
refused "$want" "$REDIFF" base -c "$c" --run-dir "$tmp/run"
refused "$want" "$REDIFF" pipeline -c "$c" --run-dir "$tmp/run"
refused "$want" "$REDIFF" submit -c "$c" --run-dir "$tmp/run" --dry-run
refused "$want" env PATH="$tmp/bin:$PATH" "$REDIFF" submit -c "$c" --run-dir "$tmp/run"
refused "$want" "$REDIFF" status -c "$c" --run-dir "$tmp/run"
refused "rediff: --set runtime.device=cuda: $no_cuda" "$REDIFF" data synth --run-dir "$tmp/run" --set runtime.device=cuda

# The old GPU example: both keys to change are named, at the device's line.
c="$tmp/cluster-cuda.yaml"
want="rediff: $c:$line:3: $no_cuda and runtime.precision: fp32"
refused "$want" "$REDIFF" submit -c "$c" --run-dir "$tmp/run" --dry-run
refused "$want" env PATH="$tmp/bin:$PATH" "$REDIFF" submit -c "$c" --run-dir "$tmp/run"

c="$tmp/bf16.yaml"
want="rediff: $c:3:3: $no_bf16"
refused "$want" "$REDIFF" data synth -c "$c" --run-dir "$tmp/run"
refused "$want" "$REDIFF" stage1 -c "$c" --run-dir "$tmp/run"
refused "$want" env PATH="$tmp/bin:$PATH" "$REDIFF" submit -c "$c" --run-dir "$tmp/run"

# Under MPI every rank refuses before any collective work; rank 0 says so.
rc=0
timeout 120 mpirun -np 2 --oversubscribe "$REDIFF" base -c "$tmp/cuda.yaml" --run-dir "$tmp/run" \
  >"$tmp/mpi.out" 2>"$tmp/mpi.err" || rc=$?
if [ "$rc" = 0 ] || [ "$rc" = 124 ]; then
  cat "$tmp/mpi.err" >&2
  fail "mpirun -np 2 base exited $rc"
fi
if [ "$(grep -c '^rediff: ' "$tmp/mpi.err")" != 1 ] || ! grep -qxF "rediff: $tmp/cuda.yaml:2:3: $no_cuda" "$tmp/mpi.err"; then
  cat "$tmp/mpi.err" >&2
  fail "mpirun -np 2 base: want rank 0's one refusal"
fi
[ ! -e "$tmp/run" ] || fail "mpirun -np 2 base wrote into the run folder"

# What needs no device still works.
"$REDIFF" config doc >"$tmp/doc.md" || fail "config doc"
grep -qF "| \`runtime.device\` |" "$tmp/doc.md" || fail "config doc lacks runtime.device"
"$REDIFF" config show >"$tmp/defaults.yaml" || fail "config show of the defaults"
grep -q '^  device: cpu ' "$tmp/defaults.yaml" || fail "the default device is not cpu"
"$REDIFF" config show -c "$RD_SOURCE_DIR/configs/cluster-gpu.yaml" >/dev/null || fail "configs/cluster-gpu.yaml is refused"
echo "device refusals: ok"
