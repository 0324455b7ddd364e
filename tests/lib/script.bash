# The set-up and helpers shared by the script tests (tests/e2e/*.sh and
# tests/mpi/*.sh). A test sources it before anything else:
#
#   # shellcheck source=tests/lib/script.bash
#   source "${RD_SOURCE_DIR:?set by ctest}/tests/lib/script.bash"
#
# (the first line lets `shellcheck -x`, run from the repository root, read
# this file with the test).
# ctest sets RD_SOURCE_DIR, RD_BINARY_DIR and REDIFF (the built binary); a
# test started by hand needs the same variables. Sourcing turns on
# `set -euo pipefail`, lets Open MPI run as root and makes $tmp, a new folder
# removed when the test ends. The file is not named *.sh, so the globs of
# tests/CMakeLists.txt do not take it for a test.

# shellcheck disable=SC2034 # the variables are for the tests that source this file
set -euo pipefail
# Open MPI refuses root without these; CI and many containers run as root.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

test_name=$(basename "$0" .sh)
py=/usr/bin/python3 # Debian's python3, the one with numpy, h5py and torch
cfg="$RD_SOURCE_DIR/configs/tiny.yaml"

# ---------------------------------------------------------------- failing

# Files that fail prints before its message (a job's logs, say).
fail_logs=()

# fail MESSAGE...: prints the fail_logs files and "FAIL: MESSAGE" on stderr
# and ends the test with exit 1.
fail() {
  if [ ${#fail_logs[@]} -gt 0 ]; then cat "${fail_logs[@]}" >&2 || true; fi
  echo "FAIL: $*" >&2
  exit 1
}

# need_env NAME...: ends the test unless every variable named is set.
need_env() {
  local v
  for v; do
    [ -n "${!v:-}" ] || { echo "$test_name: $v is not set (ctest sets it)" >&2; exit 1; }
  done
}

# test_program NAME: prints the path of tests/mpi/NAME.c built as
# RD_BINARY_DIR/tests/NAME; fails when it is not built.
#   prog=$(test_program grid_coll)
test_program() {
  local p="${RD_BINARY_DIR:?set by ctest}/tests/$1"
  [ -x "$p" ] || { echo "$test_name: $p is not built (cmake --build <build> --target $1)" >&2; exit 1; }
  echo "$p"
}

# ---------------------------------------------------------- temporary folder

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rd_$test_name.XXXXXX")
rd_exit_cmds=()

# on_exit CMD [ARG...]: runs CMD when the test ends, whether it passed or
# not, before $tmp is removed; the latest registered runs first.
on_exit() { rd_exit_cmds=("$(printf '%q ' "$@")" "${rd_exit_cmds[@]}"); }

rd_cleanup() {
  local c
  for c in "${rd_exit_cmds[@]}"; do eval "$c" || true; done
  rm -rf "$tmp"
}
trap rd_cleanup EXIT

# ----------------------------------------------------------- config overrides
# A later --set of the same key wins, so a test can take one of these and
# change a key or two.

# A model small enough for runs where exactness matters more than learning.
small_model=(--set model.d_model=64 --set model.n_layers=2 --set model.d_ff=128 --set model.vision_d=64
             --set model.vision_d_ff=128 --set train.batch_size=16 --set train.eval_batches=2)

# Data for short training runs: 2000 training samples in 4 shards, 128
# held out; 64 samples evaluated and 64 drafted.
small_data=(--set data.n_train=2000 --set data.n_eval=128 --set data.shard_size=512
            --set eval.n_samples=64 --set draft.n_samples=64)

# A whole pipeline in miniature, with the small model: 1500 training
# samples, 48 drafted at 64 and 8 steps, 32 evaluated at 1 and 8 tokens per
# step. The test adds the steps of each stage.
short_pipeline=(--set data.n_train=1500 --set data.n_eval=96 --set data.shard_size=512 "${small_model[@]}"
                --set train.eval_every=40 --set train.ckpt_every=20
                --set draft.n_samples=48 --set "draft.step_counts=[64,8]" --set eval.n_samples=32 --set eval.batch=16
                --set "eval.tokens_per_step=[1,8]")

# ------------------------------------------------------------- run folders

# synth_data ARG...: `rediff data synth ARG...` into $tmp/data0, the data
# that seed_data copies.
synth_data() { "$REDIFF" data synth --run-dir "$tmp/data0" "$@" >/dev/null; }

# seed_data DIR...: new run folders holding synth_data's data, marked done,
# so a stage starts there without synthesizing it again.
seed_data() {
  local d
  for d; do
    mkdir -p "$d/done"
    cp -r "$tmp/data0/data" "$d/"
    cp "$tmp/data0/done/data" "$d/done/"
  done
}

# train_losses LOG: "step loss" of every training line of a
# RUN_DIR/logs/<stage>.jsonl.
train_losses() { grep '"kind":"train"' "$1" | sed 's/.*"step":\([0-9]*\),.*"loss":\([^,}]*\).*/\1 \2/'; }

# eval_losses LOG: the held-out loss of every eval line, one a line.
eval_losses() { grep '"kind":"eval"' "$1" | sed 's/.*"loss":\([^,}]*\).*/\1/'; }

# latest_ckpt RUN_DIR [STAGE]: the path of the stage's newest checkpoint
# (the one its LATEST names); STAGE is base unless given.
latest_ckpt() {
  local d="$1/ckpt/${2:-base}"
  echo "$d/$(cat "$d/LATEST")"
}

# compare_ckpt A.h5 B.h5 [--tol REL]: fails unless the two checkpoints are
# bitwise equal (within REL relative with --tol), dataset by dataset.
compare_ckpt() { "$py" "$RD_SOURCE_DIR/tests/reference/compare_ckpt.py" "$@"; }

# same_results A B WHAT: fails unless the rows of the two eval results.json
# files are equal but for the speeds (captions and forward passes per
# second), printing the rows that differ; else prints "WHAT (N rows)".
same_results() {
  "$py" - "$@" <<'PY'
import json, sys
a, b = (json.load(open(p))["rows"] for p in sys.argv[1:3])
strip = lambda rows: [{k: v for k, v in r.items() if k not in ("captions_per_s", "forward_passes_per_s")} for r in rows]
if strip(a) != strip(b):
    for x, y in zip(strip(a), strip(b)):
        if x != y: print("differs:", x, y)
    sys.exit(1)
print("%s (%d rows)" % (sys.argv[3], len(a)))
PY
}

# ------------------------------------------------------- expected failures

# expect_exit CODE TEXT CMD...: CMD must exit with CODE and, where TEXT is
# not empty, say TEXT (a fixed string) on stderr. CMD's stdout and stderr
# are left in $tmp/out.txt and $tmp/err.txt for further checks.
expect_exit() {
  local want=$1 text=$2 got=0
  shift 2
  "$@" >"$tmp/out.txt" 2>"$tmp/err.txt" || got=$?
  [ "$got" = "$want" ] || { cat "$tmp/err.txt" >&2; fail "$* exited $got, want $want"; }
  [ -z "$text" ] || grep -qF -- "$text" "$tmp/err.txt" || { cat "$tmp/err.txt" >&2; fail "$* did not say: $text"; }
}

# expect_fatal WITHIN_S LABEL ERE CMD...: CMD (typically an MPI job with a
# fatal error on some rank) must end within WITHIN_S seconds (it is killed
# at twice that), fail, and print a line matching the extended regular
# expression ERE. It fails by exiting non-zero, or by exiting 0 where every
# rank printed "rank N exited M" with M not 0: mpirun told not to kill the
# job on a bad exit (--mca orte_abort_on_non_zero_status 0) exits 0 unless a
# rank aborted, so such tests start each rank through a wrapper that prints
# that line. Prints the time taken and the rediff and rank lines.
expect_fatal() {
  local within=$1 label=$2 want=$3
  shift 3
  local out rc=0 start=$SECONDS took
  out=$(timeout $((2 * within)) "$@" 2>&1) || rc=$?
  took=$((SECONDS - start))
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "$out" >&2
    fail "$label: still running after $((2 * within)) s (a rank hangs)"
  fi
  if [ "$rc" -eq 0 ] && { grep -q "^rank [0-9]* exited 0$" <<<"$out" || ! grep -q "^rank [0-9]* exited" <<<"$out"; }; then
    echo "$out" >&2
    fail "$label: exited 0 after a fatal error"
  fi
  grep -qE -- "$want" <<<"$out" || { echo "$out" >&2; fail "$label: the output lacks /$want/"; }
  [ "$took" -le "$within" ] || { echo "$out" >&2; fail "$label: took $took s to end"; }
  echo "ok   $label: exit $rc after ${took} s"
  grep -E "^(rediff: |rank [0-9]+ exited)" <<<"$out" | sed 's/^/     /' || true
}

# ------------------------------------------------------------------- Slurm

# slurm_cluster_up: starts a local single-node Slurm cluster
# (slurm/local-cluster.sh) in $tmp/cluster and exports SLURM_CONF for it;
# the cluster stops when the test ends. Without slurm-wlm installed the test
# ends here and passes as skipped.
slurm_cluster_up() {
  if ! command -v sbatch >/dev/null 2>&1 || ! [ -x /usr/sbin/slurmctld ]; then
    echo "skipped: slurm-wlm is not installed (apt-get install slurm-wlm munge)"
    exit 0
  fi
  on_exit slurm_cluster_down
  eval "$("$RD_SOURCE_DIR/slurm/local-cluster.sh" up "$tmp/cluster")"
}

# slurm_cluster_down: stops the cluster of slurm_cluster_up.
slurm_cluster_down() { "$RD_SOURCE_DIR/slurm/local-cluster.sh" down "$tmp/cluster" >/dev/null 2>&1; }

# The --set of a chain whose jobs are 2 MPI ranks on the one node, with the
# pre-timeout warning 30 s before a 10-minute limit.
slurm_sets=(--set parallel.ranks=2 --set slurm.tasks_per_node=2 --set slurm.time=00:10:00 --set slurm.signal_lead_s=30)

# mark_later_done RUN_DIR: marks the stages after base done, so a chain
# submitted there is data and base only (the others are skipped).
mark_later_done() {
  local m
  mkdir -p "$1/done"
  for m in mask stage1 draft.r1 expert.r1 stage2.r1 eval; do echo "skipped by the test" >"$1/done/$m"; done
}

# job_of RUN_DIR NAME: the job id of the chain's job NAME (like 02-base),
# from RUN_DIR/slurm/chain.json; empty when it was not submitted.
job_of() {
  "$py" -c 'import json, sys
print("".join(j["job_id"] for j in json.load(open(sys.argv[1]))["jobs"] if j["name"] == sys.argv[2]))' \
    "$1/slurm/chain.json" "$2"
}

# chain_ids RUN_DIR: the job ids of the chain's submitted jobs in chain
# order, one a line.
chain_ids() {
  "$py" -c 'import json, sys
for j in json.load(open(sys.argv[1]))["jobs"]:
    if j["job_id"]: print(j["job_id"])' "$1/slurm/chain.json"
}

# state_of ID: the job's state as scontrol shows it; empty when unknown.
state_of() { scontrol show job -o "$1" | sed -n 's/.* JobState=\([A-Z_]*\) .*/\1/p'; }

# final_state ID [SECONDS]: waits until the job has ended (at most SECONDS,
# 300 unless given) and prints its state; STILL-<state> when it has not.
final_state() {
  local st t
  for ((t = 0; t < ${2:-300} * 4; t++)); do
    st=$(state_of "$1") || true
    case "$st" in PENDING | RUNNING | CONFIGURING | COMPLETING | REQUEUED | "") sleep 0.25 ;; *) echo "$st"; return ;; esac
  done
  echo "STILL-$st"
}
