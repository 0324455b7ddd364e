#!/usr/bin/python3
"""The communication model of rediff's dp x tp training (docs/scaling.md).

Predicted step times on 1 to 64 nodes for a config's model:

    bench/scaling_model.py -c configs/cluster-gpu.yaml
    bench/scaling_model.py -c configs/bench-cpu.yaml --set train.batch_size=512 --vocab 53 \
        --step-s 0.650 --step-batch 2 --intra-gbs 5 --intra-lat-us 1 --inter-gbs 25,12.5

Measured against predicted bytes, for the JSON that bench/scaling.sh writes:

    bench/scaling_model.py --measured scaling.json

The payload of one grid, as JSON (tests/mpi/comm_log.sh):

    bench/scaling_model.py -c CONFIG --vocab 53 --bytes 2,1

Bytes are the payload each rank hands to the collectives in one optimizer
step (what rd_comm_stats counts, mpi/coll.h); the wire bytes and times use a
ring all-reduce. Standard library only.
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULTS = os.path.join(HERE, "..", "configs", "tiny.yaml")  # every key at its default
ALIGN = 16          # floats: model/vlm.c starts every tensor on a 64-byte boundary
NODES = [1, 2, 4, 8, 16, 32, 64]


# ---- config ----------------------------------------------------------------

def parse_yaml(text, into=None):
    """The two-level `section: / key: value` YAML of rediff's configs (and of
    `rediff config show`) into {"section.key": "value"}; lists stay text."""
    out = {} if into is None else into
    section = ""
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip() or line.lstrip().startswith("#") or line.lstrip().startswith("-"):
            continue
        indent = len(line) - len(line.lstrip())
        key, _, rest = line.strip().partition(":")
        rest = rest.strip()
        if rest.startswith('"'):
            end = rest.find('"', 1)
            value = rest[1:end]
        else:
            value = rest.split(" #")[0].strip()
        if indent == 0:
            section = key if value == "" else ""
            if value != "":
                out[key] = value
        else:
            out[f"{section}.{key}" if section else key] = value
    return out


def load_config(path=None, text=None, sets=()):
    cfg = parse_yaml(open(DEFAULTS).read())
    if path:
        parse_yaml(open(path).read(), cfg)
    if text:
        parse_yaml(text, cfg)
    for s in sets:
        k, _, v = s.partition("=")
        if k not in cfg:
            sys.exit(f"scaling_model.py: --set {s}: no key {k} in the config")
        cfg[k] = v
    return cfg


class Dims:
    """The sizes the model needs, from a resolved config and the vocabulary."""

    def __init__(self, cfg, vocab, prompt_len=None):
        g = lambda k: int(float(cfg[k]))
        self.d, self.nl, self.heads, self.ff = g("model.d_model"), g("model.n_layers"), g("model.n_heads"), g("model.d_ff")
        self.nv, self.cv, self.fv = g("model.vision_layers"), g("model.vision_d"), g("model.vision_d_ff")
        self.image, self.patch, self.L = g("model.image_size"), g("model.patch"), g("model.gen_len")
        self.V = vocab
        m = g("model.vocab_multiple")
        self.Vp = (vocab + m - 1) // m * m
        self.Np = (self.image // self.patch) ** 2
        # The vocabulary is word-level: one token per word of the prompt.
        self.Tp = prompt_len if prompt_len is not None else len(cfg["data.prompt"].split())
        self.T = self.Np + self.Tp + self.L
        self.batch, self.accum = g("train.batch_size"), g("train.grad_accum")
        self.grid_pos = cfg.get("model.grid_pos", "false") == "true"
        self.K = g("model.cell_classes") if "model.cell_classes" in cfg else 0

    def tensors(self):
        """(numel, split) per tensor in model/vlm.c's table; split: None
        replicated, else the axis divided by tp (always divisible here)."""
        d, cv, pd = self.d, self.cv, self.patch * self.patch * 3
        block = lambda c, f: [(c, None), (3 * c * c, 0), (c * c, 1), (c, None), (f * c, 0), (f * c, 0), (c * f, 1)]
        t = [(cv * pd, None), (cv, None), (self.Np * cv, None)]  # patch w, b, positions: replicated
        for _ in range(self.nv):  # Megatron: qkv, gate, up by rows; wo, down by columns
            t += block(cv, self.fv)
        t += [(cv, None)]  # vision norm
        t += [(d * cv, None), (d, None), (d * d, None), (d, None)]  # projector, replicated
        if self.grid_pos:
            t += [(d, None), (self.Np * d, None)]  # image-token norm and grid-cell table
        if self.K > 0:
            t += [(self.K * d, None), (self.K, None)]  # perception head
        t += [(self.Vp * d, None)]  # token embedding, replicated
        for _ in range(self.nl):
            t += block(d, self.ff)
        t += [(d, None), (self.Vp * d, 0)]  # final norm, vocab-parallel head
        return t

    def n_params(self):
        return sum(n for n, _ in self.tensors())

    def grad_floats(self, tp):
        """Floats of one rank's gradient buffer (rd_vlm.n_floats): split
        tensors / tp, every tensor padded to ALIGN floats."""
        a = lambda n: (n + ALIGN - 1) // ALIGN * ALIGN
        return sum(a(n // tp if s is not None else n) for n, s in self.tensors())

    def flops_per_sample(self):
        """Forward + backward FLOPs of one sample: 6 per weight per token for
        the matmuls, 12 T^2 C per attention layer (QK^T and AV)."""
        d, cv, pd = self.d, self.cv, self.patch * self.patch * 3
        vis = self.Np * (cv * pd + self.nv * (4 * cv * cv + 3 * cv * self.fv) + d * cv + d * d + self.K * d)
        lm = self.T * self.nl * (4 * d * d + 3 * d * self.ff)
        head = self.L * self.Vp * d
        attn = self.nl * self.T ** 2 * d + self.nv * self.Np ** 2 * cv
        return 6 * (vis + lm + head) + 12 * attn


# ---- bytes -----------------------------------------------------------------

def dp_bytes(dims, dp, tp):
    """Payload on the dp group per optimizer step and rank: the local
    gradient buffer in fp32 (bucketed all-reduce) and the step's two
    losses, caption and perception (two doubles). Nothing on one rank."""
    if dp == 1:
        return {}
    return {"gradients": 4 * dims.grad_floats(tp), "loss": 16}


def tp_bytes(dims, tp, micro, accum):
    """Payload on the tp group per optimizer step and rank (Megatron), for
    accum micro-batches of micro samples; N = micro * T rows of the LM,
    Nv = micro * Np of the vision tower, R = micro * L response rows; and
    once a step the gradient norm's sum of squares of the split tensors."""
    if tp == 1:
        return {}
    N, Nv, R, d, cv = micro * dims.T, micro * dims.Np, micro * dims.L, dims.d, dims.cv
    b = {
        "LM blocks": 4 * dims.nl * N * d * 4,        # fwd: after wo, wdown; bwd: d(normed input) of qkv, gate/up
        "vision blocks": 4 * dims.nv * Nv * cv * 4,  # the same in the vision tower
        "cross-entropy forward": R * 4 + 2 * R * 8,  # row max (fp32); sum of exp, target logit (fp64)
        "cross-entropy backward": R * d * 4,         # d(final norm output)
    }
    b = {k: v * accum for k, v in b.items()}
    b["gradient norm"] = 8
    return b


def tp_calls(dims):
    """All-reduces on the tp group per micro-batch."""
    return 4 * dims.nl + 4 * dims.nv + 3


def ring_wire(payload, p):
    """Bytes a rank sends (and receives) in a ring all-reduce of payload."""
    return 2 * (p - 1) / p * payload if p > 1 else 0.0


# ---- time ------------------------------------------------------------------

class Cluster:
    def __init__(self, a):
        self.rpn = a.ranks_per_node
        self.intra_bw, self.intra_lat = a.intra_gbs * 1e9, a.intra_lat_us * 1e-6
        self.inter_lat = a.inter_lat_us * 1e-6


def allreduce_s(payload, p, bw, lat, calls=1):
    """Ring all-reduce: 2 (p - 1) latency-bound steps per call, and the wire
    bytes at the link's bandwidth."""
    if p == 1:
        return 0.0
    return calls * 2 * (p - 1) * lat + ring_wire(payload, p) / bw


def predict(dims, cl, inter_bw, nodes, tp, compute_1):
    """One row: ranks = nodes x ranks per node, tp inside a node, dp the rest;
    fixed global batch (strong scaling); no overlap of communication with
    compute (an upper bound: the code starts the gradient all-reduce during
    the last micro-batch's backward)."""
    ranks = nodes * cl.rpn
    dp = ranks // tp
    micro = dims.batch // (dp * dims.accum)
    if micro < 1 or micro * dp * dims.accum != dims.batch:
        return None
    compute = compute_1 / (dp * tp)
    tb = sum(tp_bytes(dims, tp, micro, dims.accum).values())
    t_tp = allreduce_s(tb, tp, cl.intra_bw, cl.intra_lat, tp_calls(dims) * dims.accum)
    db = sum(dp_bytes(dims, dp, tp).values())
    if nodes == 1:
        t_dp = allreduce_s(db, dp, cl.intra_bw, cl.intra_lat, 2)
    else:
        # A dp ring ordered by node leaves each node once; the tp rings of the
        # node (one per tp rank) share its link: tp x the wire bytes per rank.
        wire = ring_wire(db, dp)
        t_dp = 2 * 2 * (dp - 1) * cl.inter_lat + max(tp * wire / inter_bw, wire / cl.intra_bw)
    return dict(nodes=nodes, ranks=ranks, tp=tp, dp=dp, micro=micro, compute=compute, dp_s=t_dp,
                tp_s=t_tp, step=compute + t_dp + t_tp, dp_bytes=db, tp_bytes=tb)


def fmt_ms(seconds):
    ms = seconds * 1e3
    return f"{ms:.0f}" if ms >= 100 else f"{ms:.3g}"


def fmt_bytes(n):
    for unit, k in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= k:
            return f"{n / k:.3g} {unit}"
    return f"{n:.0f} B"


def one_rank_compute(dims, a):
    """Seconds of one step of the global batch on one rank, and how it was had."""
    flops = dims.flops_per_sample() * dims.batch
    if a.step_s:
        t = a.step_s * dims.batch / a.step_batch
        return t, (f"measured {a.step_s:.3g} s for {a.step_batch} samples on one rank, times "
                   f"{dims.batch / a.step_batch:g}: {t:.3g} s ({flops / t / 1e9:.3g} GFLOP/s)")
    t = flops / (a.rank_tflops * 1e12)
    return t, f"{flops:.3g} FLOP at {a.rank_tflops:g} TFLOP/s: {t:.3g} s"


def print_predictions(dims, a):
    cl = Cluster(a)
    compute_1, how = one_rank_compute(dims, a)
    print(f"model: d_model {dims.d}, {dims.nl} blocks, d_ff {dims.ff}, {dims.heads} heads, "
          f"vision {dims.nv} x {dims.cv}, T = {dims.Np} + {dims.Tp} + {dims.L} = {dims.T}, "
          f"vocab {dims.V} (padded {dims.Vp}), {dims.n_params():,} parameters")
    print(f"global batch {dims.batch}, fixed (strong scaling), grad_accum {dims.accum}; "
          f"one-rank compute per step: {how}")
    print(f"{cl.rpn} ranks per node; tp inside a node at {a.intra_gbs:g} GB/s per rank, "
          f"{a.intra_lat_us:g} us per ring step; dp across nodes at "
          f"{' / '.join(f'{b:g}' for b in a.inter_gbs)} GB/s per node, {a.inter_lat_us:g} us per ring step")
    print()
    print("predicted step time in ms (share of it in communication)")
    cols = [(tp, bw) for tp in a.tp for bw in a.inter_gbs]
    print("| nodes | ranks | " + " | ".join(f"tp {tp}, {bw:g} GB/s" for tp, bw in cols) + " |")
    print("|---|---|" + "---|" * len(cols))
    for n in NODES:
        cells = []
        for tp, bw in cols:
            r = predict(dims, cl, bw * 1e9, n, tp, compute_1)
            cells.append("-" if r is None else
                         f"{fmt_ms(r['step'])} ({(r['dp_s'] + r['tp_s']) / r['step']:.0%})")
        print(f"| {n} | {n * cl.rpn} | " + " | ".join(cells) + " |")
    print()
    tp, bw = a.tp[0], a.inter_gbs[0]
    print(f"the parts, tp {tp}, {bw:g} GB/s per node")
    print("| nodes | dp | micro | compute ms | dp comm ms | tp comm ms | dp bytes/rank | tp bytes/rank "
          "| speed-up vs 1 node |")
    print("|---|---|---|---|---|---|---|---|---|")
    first = None
    for n in NODES:
        r = predict(dims, cl, bw * 1e9, n, tp, compute_1)
        if r is None:
            continue
        first = first or r["step"]
        print(f"| {n} | {r['dp']} | {r['micro']} | {fmt_ms(r['compute'])} | {fmt_ms(r['dp_s'])} "
              f"| {fmt_ms(r['tp_s'])} | {fmt_bytes(r['dp_bytes'])} | {fmt_bytes(r['tp_bytes'])} "
              f"| {first / r['step']:.3g}x |")


# ---- measured --------------------------------------------------------------

def print_measured(path):
    m = json.load(open(path))
    cfg = load_config(text=m["config_yaml"])
    dims = Dims(cfg, m["vocab"], m.get("prompt_len"))
    print(f"scaling on this machine: {m['config']}, global batch {dims.batch}, "
          f"{m['steps']} steps, the first {m['warmup']} not timed"
          + (f", best of {m['reps']} runs" if m.get("reps", 1) > 1 else "") + f"; T = {dims.T}")
    if m.get("load_avg_1min"):
        lb, la = m["load_avg_1min"]
        print(f"machine: {m.get('cores', '?')} cores, load average (1 min) {lb} before, {la} after")
    for s in m["shapes"]:
        n = s.get("n_params")
        if n is None:
            continue
        local = sum(n_ // s["tp"] if sp is not None else n_ for n_, sp in dims.tensors())
        ok = ("matches the model's" if n == dims.n_params() else
              "matches the model's count per rank" if n == local else "DIFFERS from the model's")
        print(f"parameters: {s['name']}: {n:,} in the run's log, {ok} {dims.n_params():,}"
              + (f" ({local:,} per rank)" if s["tp"] > 1 else ""))
    print("| shape | ms/step (median) | tokens/s | comm share | dp bytes/step measured | predicted "
          "| tp bytes/step measured | predicted |")
    print("|---|---|---|---|---|---|---|---|")
    bad = 0
    notes = []
    for s in m["shapes"]:
        micro = s.get("micro") or dims.batch // (s["dp"] * dims.accum)
        pd = sum(dp_bytes(dims, s["dp"], s["tp"]).values())
        pt = sum(tp_bytes(dims, s["tp"], micro, dims.accum).values())
        if s["tp"] > 1:
            terms = tp_bytes(dims, s["tp"], micro, dims.accum)
            notes.append(f"{s['name']}: predicted tp bytes per step by term: "
                         + ", ".join(f"{k} {v:,}" for k, v in terms.items()))
        if s["status"] != "ok":
            print(f"| {s['name']} | n/a | | | n/a | {pd:,} | n/a | {pt:,} |")
            notes.append(f"{s['name']}: not measured: {s['status']}")
            continue
        cells = []
        for meas, pred in ((s["dp_bytes"], pd), (s["tp_bytes"], pt)):
            same = meas == pred
            bad += not same
            cells.append(f"{meas:,}" + ("" if same else f" (differs by {meas - pred:+,})"))
            cells.append(f"{pred:,}")
        step = s["step_s"]
        print(f"| {s['name']} | {step * 1e3:.0f} | {dims.batch * dims.T / step:.0f} "
              f"| {s['comm_share']:.1%} | {cells[0]} | {cells[1]} | {cells[2]} | {cells[3]} |")
        if s["tokens_per_step"] != dims.batch * dims.T:
            notes.append(f"{s['name']}: the log's rate implies {s['tokens_per_step']} tokens per step, "
                         f"the model {dims.batch} x {dims.T}")
        if len(s.get("step_s_reps", [])) > 1:
            notes.append(f"{s['name']}: median ms/step of each run: "
                         + ", ".join(f"{x * 1e3:.0f}" for x in s["step_s_reps"]))
        if s["bytes_vary"]:
            notes.append(f"{s['name']}: the bytes per step varied between steps (medians shown)")
        if s["dp_bytes"] or s["tp_bytes"]:
            notes.append(f"{s['name']}: median seconds in collectives per step: dp {s['dp_s']:.3g} s, "
                         f"tp {s['tp_s']:.3g} s")
    print("comm share: seconds inside collectives / step seconds, over the timed steps (rank 0)")
    for n in notes:
        print(n)
    if bad:
        print(f"{bad} measured byte counts differ from the model (see docs/scaling.md)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-c", "--config", help="a rediff config (keys it lacks take configs/tiny.yaml's defaults)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    ap.add_argument("--vocab", type=int, default=55,
                    help="vocabulary size (ShapesCap: 53 to 55 words by data.max_objects; default 55)")
    ap.add_argument("--tp", default="1,8", help="tensor-parallel sizes to tabulate (default 1,8)")
    ap.add_argument("--ranks-per-node", type=int, default=8)
    ap.add_argument("--intra-gbs", type=float, default=200.0,
                    help="intra-node all-reduce bandwidth per rank, GB/s (default 200: NVLink-class)")
    ap.add_argument("--intra-lat-us", type=float, default=5.0, help="intra-node latency per ring step, us")
    ap.add_argument("--inter-gbs", default="200,25,12.5",
                    help="inter-node bandwidth per node, GB/s, comma-separated (default 200 = a 25 GB/s "
                         "NIC per rank, 25 = one per node, 12.5 = 100 Gb/s Ethernet per node)")
    ap.add_argument("--inter-lat-us", type=float, default=10.0, help="inter-node latency per ring step, us")
    ap.add_argument("--step-s", type=float, help="measured one-rank step seconds (else FLOPs / --rank-tflops)")
    ap.add_argument("--step-batch", type=int, default=1, help="samples of the step --step-s measured")
    ap.add_argument("--rank-tflops", type=float, default=250.0,
                    help="sustained TFLOP/s of one rank when --step-s is not given (default 250)")
    ap.add_argument("--measured", metavar="JSON", help="compare with the numbers bench/scaling.sh wrote")
    ap.add_argument("--bytes", metavar="DP,TP",
                    help="print, as JSON, the parameters and the payload bytes per step and rank of that grid")
    a = ap.parse_args()
    if a.measured:
        print_measured(a.measured)
        return
    if a.bytes:
        dp, tp = (int(x) for x in a.bytes.split(","))
        dims = Dims(load_config(a.config, sets=a.set), a.vocab)
        micro = dims.batch // (dp * dims.accum)
        print(json.dumps({"n_params": dims.n_params(), "micro": micro,
                          "dp_bytes": sum(dp_bytes(dims, dp, tp).values()),
                          "tp_bytes": sum(tp_bytes(dims, tp, micro, dims.accum).values())}))
        return
    a.tp = [int(x) for x in a.tp.split(",")]
    a.inter_gbs = [float(x) for x in a.inter_gbs.split(",")]
    dims = Dims(load_config(a.config, sets=a.set), a.vocab)
    for tp in a.tp:
        if dims.heads % tp or dims.ff % tp or tp > a.ranks_per_node:
            sys.exit(f"scaling_model.py: tp {tp} must divide n_heads {dims.heads}, d_ff {dims.ff} "
                     f"and fit in a node of {a.ranks_per_node} ranks")
    print_predictions(dims, a)


if __name__ == "__main__":
    main()
