"""One training step of the PyTorch reference model, timed like bench/train_step.c.

Usage: /usr/bin/python3 bench/torch_step.py -c CONFIG [--threads N] [--steps N]
           [--warmup N] [--batch B] [--vocab V]

The model is tests/reference/vlm_ref.py's (imported, in float32); the shapes
come from the config's model section and the prompt's word count, the batch
is random, and a step is zero_grad, forward, weighted cross-entropy,
backward, clip_grad_norm_ and torch.optim.AdamW with the same decay groups
as rediff. Prints one key=value line for bench/report.py.
"""
import argparse
import os
import sys
import time

import torch
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
import vlm_ref  # noqa: E402


def param_shapes(m, Vp, Np):
    """(name, shape, decay) in the order of rediff's tensor table (docs/model.md)."""
    d, Cv, P = m["d_model"], m["vision_d"], m["patch"]
    out = [("vis.patch.w", (Cv, P * P * 3), 1), ("vis.patch.b", (Cv,), 0), ("vis.pos", (Np, Cv), 0)]

    def tower(pre, n, C, ff):
        for l in range(n):
            out.extend([(f"{pre}.{l}.attn_norm", (C,), 0), (f"{pre}.{l}.attn.wqkv", (3 * C, C), 1),
                        (f"{pre}.{l}.attn.wo", (C, C), 1), (f"{pre}.{l}.mlp_norm", (C,), 0),
                        (f"{pre}.{l}.mlp.wgate", (ff, C), 1), (f"{pre}.{l}.mlp.wup", (ff, C), 1),
                        (f"{pre}.{l}.mlp.wdown", (C, ff), 1)])

    tower("vis", m["vision_layers"], Cv, m["vision_d_ff"])
    out += [("vis.norm", (Cv,), 0), ("proj.w1", (d, Cv), 1), ("proj.b1", (d,), 0),
            ("proj.w2", (d, d), 1), ("proj.b2", (d,), 0), ("tok_emb", (Vp, d), 0)]
    tower("lm", m["n_layers"], d, m["d_ff"])
    out += [("lm.norm", (d,), 0), ("lm_head", (Vp, d), 1)]
    return out


def num(v):
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return v
    return v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-c", "--config", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--batch", type=int, default=0)
    ap.add_argument("--vocab", type=int, default=60)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg = yaml.safe_load(open(a.config))
    # YAML 1.1 reads "1e-05" (no dot) as a string: numbers are converted here.
    m, tr = ({k: num(v) for k, v in cfg[s].items()} for s in ("model", "train"))
    c = vlm_ref.Cfg(m)
    B = a.batch or tr["batch_size"]
    V = a.vocab
    Vp = (V + m["vocab_multiple"] - 1) // m["vocab_multiple"] * m["vocab_multiple"]
    S, L = m["image_size"], m["gen_len"]
    Np = (S // m["patch"]) ** 2
    Tp = len(cfg["data"]["prompt"].split())

    p, groups = {}, ([], [])
    for name, shape, decay in param_shapes(m, Vp, Np):
        t = torch.randn(shape) * m["init_std"] if len(shape) == 2 else torch.ones(shape)
        p[name] = t.requires_grad_()
        groups[0 if decay else 1].append(p[name])
    opt = torch.optim.AdamW([{"params": groups[0], "weight_decay": tr["weight_decay"]},
                             {"params": groups[1], "weight_decay": 0.0}],
                            lr=tr["lr"], betas=(tr["beta1"], tr["beta2"]), eps=tr["adam_eps"])
    prompt = 4 + torch.arange(Tp) % (V - 4)
    images = torch.randint(0, 256, (B, S, S, 3), dtype=torch.uint8)
    x = torch.randint(0, V, (B, L))
    y = torch.randint(0, V, (B, L))
    w = torch.full((B, L), 1.0 / (B * L))

    times = []
    for s in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = vlm_ref.weighted_ce(vlm_ref.forward(p, c, prompt, images, x), y, w, V)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(p.values(), tr["grad_clip"])
        opt.step()
        if s >= a.warmup:
            times.append(time.perf_counter() - t0)
    times.sort()
    T = Np + Tp + L
    print(f"impl=pytorch config={a.config} threads={a.threads} B={B} T={T} tokens={B * T} "
          f"ms={times[0] * 1e3:.3f} ms_median={times[len(times) // 2] * 1e3:.3f} "
          f"steps={a.steps} loss={loss.item():.5f} torch={torch.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
