#!/usr/bin/env bash
# The per-step communication fields of the training log (stages/train/train.c)
# against the communication model (bench/scaling_model.py): every step of a
# dp 2 run of base logs exactly the predicted payload on the dp group (the
# gradient buffer and the loss) and none on the tp group, with seconds
# inside the step's; a one-rank run logs no communication at all. A vision
# width of 40 leaves tensors that are not a multiple of 16 floats, so the
# gradient buffer holds alignment padding, all-reduced with it.
# shellcheck source=tests/lib/script.bash
source "${RD_SOURCE_DIR:?set by ctest}/tests/lib/script.bash"
need_env REDIFF
common=(-c "$cfg" --set data.n_train=256 --set data.n_eval=128 --set data.shard_size=256
        --set eval.n_samples=64 --set draft.n_samples=64 "${small_model[@]}" --set model.vision_d=40
        --set train.batch_size=4 --set train.eval_batches=1 --set base.steps=3)

synth_data "${common[@]}"
seed_data "$tmp/one" "$tmp/dp2"
"$REDIFF" base "${common[@]}" --run-dir "$tmp/one" 2>"$tmp/one.err" || { cat "$tmp/one.err"; fail "base, 1 process"; }
timeout 120 mpirun -np 2 --oversubscribe "$REDIFF" base "${common[@]}" --run-dir "$tmp/dp2" \
  --set parallel.ranks=2 2>"$tmp/dp2.err" || { cat "$tmp/dp2.err"; fail "base, dp 2"; }

"$REDIFF" config show "${common[@]}" >"$tmp/config.yaml"
vocab=$(wc -l <"$tmp/one/data/vocab.txt")
want=$("$py" "$RD_SOURCE_DIR/bench/scaling_model.py" -c "$tmp/config.yaml" --vocab "$vocab" --bytes 2,1)
echo "model: $want"

"$py" - "$tmp" "$want" <<'PY'
import json, re, sys
tmp, want = sys.argv[1], json.loads(sys.argv[2])
fails = []
m = re.search(r"base: (\d+) parameters", open(f"{tmp}/dp2.err").read())
if not m or int(m.group(1)) != want["n_params"]:
    fails.append(f"the log says {m and m.group(1)} parameters, the model {want['n_params']}")
for run, dp_bytes in (("one", 0), ("dp2", want["dp_bytes"])):
    lines = [json.loads(l) for l in open(f"{tmp}/{run}/logs/base.jsonl")]
    train = [l for l in lines if l["kind"] == "train"]
    if len(train) != 3:
        fails.append(f"{run}: {len(train)} train lines, want 3")
    for l in train:
        got = (l["comm_dp_bytes"], l["comm_tp_bytes"], l["comm_tp_s"])
        if got != (dp_bytes, 0, 0):
            fails.append(f"{run} step {l['step']}: dp bytes, tp bytes, tp s = {got}, want ({dp_bytes}, 0, 0)")
        ok_s = (0 < l["comm_dp_s"] < l["step_s"]) if dp_bytes else l["comm_dp_s"] == 0
        if not ok_s:
            fails.append(f"{run} step {l['step']}: comm_dp_s {l['comm_dp_s']} with step_s {l['step_s']}")
    print(f"{run}: {len(train)} steps, comm_dp_bytes {[l['comm_dp_bytes'] for l in train]}")
for f in fails:
    print("FAIL:", f)
sys.exit(1 if fails else 0)
PY
echo "comm_log.sh: all passed"
