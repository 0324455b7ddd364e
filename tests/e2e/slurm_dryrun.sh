#!/usr/bin/env bash
# rediff submit --dry-run and rediff status without Slurm: the batch scripts
# of configs/cluster-gpu.yaml (4 nodes x 4 GPUs, srun, modules) equal the
# committed tests/e2e/expected/cluster-gpu.dryrun.txt; done stages are
# skipped and the chain starts at the first one not done; every script
# passes shellcheck; nothing is written;
# bad shapes and options are refused; status reads markers, checkpoints and
# chain.json, and says so when Slurm cannot answer.
# RD_UPDATE_EXPECTED=1 rewrites the expected file from this build.
# shellcheck source=tests/lib/script.bash
source "${RD_SOURCE_DIR:?set by ctest}/tests/lib/script.bash"
need_env REDIFF
cfg="$RD_SOURCE_DIR/configs/cluster-gpu.yaml"
expected="$RD_SOURCE_DIR/tests/e2e/expected/cluster-gpu.dryrun.txt"
run="$tmp/runs/cluster-gpu"
# The scripts hold absolute paths: the run folder and the binary (as the
# kernel names it) become fixed words.
bin=$(readlink -f "$REDIFF")
normalise() { sed -e "s|$run|RUN_DIR|g" -e "s|$bin|REDIFF|g"; }

# 1. The whole chain of the GPU config, nothing on disk.
"$REDIFF" submit -c "$cfg" --run-dir "$run" --dry-run | normalise >"$tmp/dry.txt"
if [ "${RD_UPDATE_EXPECTED:-0}" = 1 ]; then
  cp "$tmp/dry.txt" "$expected"
  echo "wrote $expected"
fi
diff -u "$expected" "$tmp/dry.txt" || fail "dry-run output differs from tests/e2e/expected/cluster-gpu.dryrun.txt"
[ ! -e "$run" ] || fail "--dry-run wrote into the run folder"
[ "$(grep -c '^#!/bin/bash' "$tmp/dry.txt")" = 11 ] || fail "want 11 jobs (data, base, mask, stage1, 2 rounds x 3, eval)"
# Every batch script, as written, passes shellcheck (they come from
# slurm/job.sh; the config's setup lines are part of them).
mkdir -p "$tmp/scripts"
awk -v d="$tmp/scripts" '/^# ==> .* <==$/ { f = d "/" ++n ".sh"; next } /^# the sbatch commands/ { f = "" }
  f { print > f }' "$tmp/dry.txt"
[ "$(find "$tmp/scripts" -name '*.sh' | wc -l)" = 11 ] || fail "could not split the dry-run output into 11 scripts"
shellcheck "$tmp/scripts"/*.sh || fail "a batch script does not pass shellcheck"
grep -q '^j1=$(sbatch --parsable RUN_DIR/slurm/01-data.sbatch)$' "$tmp/dry.txt" || fail "first sbatch"
grep -q '^j11=$(sbatch --parsable --dependency=afterok:$j10 --kill-on-invalid-dep=yes RUN_DIR/slurm/11-eval.sbatch)$' \
  "$tmp/dry.txt" || fail "last sbatch"

# 2. Done stages are skipped; the first job left waits for nothing.
mkdir -p "$run/done"
touch "$run/done/data" "$run/done/base" "$run/done/mask"
"$REDIFF" submit -c "$cfg" --run-dir "$run" --dry-run | normalise >"$tmp/dry2.txt"
grep -q '^# data: done already, not submitted$' "$tmp/dry2.txt" || fail "data not skipped"
grep -q '^# base: done already, not submitted$' "$tmp/dry2.txt" || fail "base not skipped"
grep -q '^j4=$(sbatch --parsable RUN_DIR/slurm/04-stage1.sbatch)$' "$tmp/dry2.txt" || fail "stage1 should start the chain"
[ "$(grep -c '^#!/bin/bash' "$tmp/dry2.txt")" = 8 ] || fail "want 8 jobs left"
[ ! -e "$run/slurm" ] || fail "--dry-run wrote slurm/"

# 3. The launcher and per-stage shapes: mpirun with the job's rank count,
# the expert on fewer ranks, the data job on one task without GPUs.
"$REDIFF" submit -c "$cfg" --run-dir "$tmp/m" --dry-run --set slurm.launcher=mpirun \
  --set slurm.ranks_expert=2 | normalise >"$tmp/mpirun.txt"
grep -q "^mpirun -np 16 $bin base " <(sed "s|REDIFF|$bin|" "$tmp/mpirun.txt") || fail "mpirun line of base"
grep -A60 "expert.r1.sbatch <==" "$tmp/mpirun.txt" | grep -q "^mpirun -np 2 " || fail "expert on 2 ranks"
grep -A30 '01-data.sbatch <==' "$tmp/mpirun.txt" | grep -q '^#SBATCH --gpus-per-node' && fail "data job asks for GPUs"

# 4. Refusals: exit 1 with a message naming the keys, exit 2 for usage.
expect_exit 1 "slurm.nodes x slurm.tasks_per_node = 4 x 4 = 16 ranks per job, but parallel.ranks is 8" \
  "$REDIFF" submit -c "$cfg" --run-dir "$tmp/x" --dry-run --set parallel.ranks=8
expect_exit 2 "" "$REDIFF" submit -c "$cfg" --run-dir "$tmp/x" --dry-run --cancel
expect_exit 1 "slurm.ranks_expert (6) must be at most slurm.tasks_per_node (4) or a multiple of it" \
  "$REDIFF" submit -c "$cfg" --run-dir "$tmp/x" --dry-run --set slurm.ranks_expert=6
expect_exit 1 "cannot carry" "$REDIFF" submit -c "$cfg" --run-dir "$tmp/with space" --dry-run

# 5. status without Slurm: markers, a partial checkpoint, a chain whose
# states cannot be asked.
mkdir -p "$run/ckpt/stage1" "$run/ckpt/mask" "$run/slurm"
echo "step-00000500.h5" >"$run/ckpt/stage1/LATEST"
rm -f "$run/done/mask"
echo "step-00000100.h5" >"$run/ckpt/mask/LATEST"
cat >"$run/slurm/chain.json" <<JSON
{
  "run_dir": "$run",
  "submitted": "2026-01-02T03:04:05Z",
  "jobs": [
    {"stage": "data", "round": 0, "name": "01-data", "job_id": ""},
    {"stage": "base", "round": 0, "name": "02-base", "job_id": ""},
    {"stage": "stage1", "round": 0, "name": "03-stage1", "job_id": "4242"},
    {"stage": "draft", "round": 1, "name": "04-draft.r1", "job_id": "4243"}
  ]
}
JSON
PATH=/nonexistent "$REDIFF" status -c "$cfg" --run-dir "$run" >"$tmp/status.txt"
cat "$tmp/status.txt"
grep -q "^chain: submitted 2026-01-02T03:04:05Z" "$tmp/status.txt" || fail "status: chain line"
grep -q "Slurm did not answer: cannot run scontrol: not found in PATH" "$tmp/status.txt" || fail "status: no-Slurm note"
grep -Eq '^data +yes +- +-$' "$tmp/status.txt" || fail "status: data row"
grep -Eq '^stage1 +no +4242 +\? +partial: checkpoint step-00000500.h5$' "$tmp/status.txt" || fail "status: stage1 row"
grep -Eq '^draft r1 +no +4243 +\?$' "$tmp/status.txt" || fail "status: draft row"
grep -Eq '^mask +no +- +- +partial: checkpoint step-00000100.h5$' "$tmp/status.txt" || fail "status: an interrupted mask stage"
grep -Eq '^eval +no +- +-$' "$tmp/status.txt" || fail "status: eval row"
echo "slurm dry-run and status: ok"
