"""The rediff VLM written in PyTorch, as a parity reference for model/.

Usage: vlm_ref.py FILE.h5   compare against the outputs the C model wrote
       vlm_ref.py --bench   time one training step of the default config

The C test (tests/unit/test_parity.c) writes FILE.h5: the config as root
attributes, every parameter under /params/<tensor name> (attributes split
and decay), the batch under /batch, and the C results under /c. This script
runs the same model in float64 and checks logits, every parameter gradient
and the losses of 5 AdamW steps. Relative error of a tensor:
max|c - ref| / max(max|ref|, 1e-30). Exit status 1 and a table of the worst
errors when any exceeds 1e-4.
"""
import math
import sys
import time

import h5py
import numpy as np
import torch
import torch.nn.functional as F

TOL = 1e-4


def rmsnorm(x, w, eps):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w


def rope_tables(T, hd, theta, dtype):
    inv = theta ** (-2.0 * torch.arange(hd // 2, dtype=torch.float64) / hd)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    return torch.cos(ang).to(dtype), torch.sin(ang).to(dtype)


def rope(x, cos, sin):
    """x [B, H, T, hd]; pairs feature i with i + hd/2 ("rotate half")."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)


def block(x, p, pre, H, cos, sin, eps, img_heads=0, img_keys=0, atts=None, rope_h0=0):
    """Pre-norm block: bidirectional attention with RoPE, then SwiGLU.
    Heads [0, img_heads) attend to keys [0, img_keys) only (the image
    tokens); heads [0, rope_h0) are not rotated; atts, a list, gets the
    probabilities [B, H, T, T]."""
    B, T, C = x.shape
    hd = C // H
    h = rmsnorm(x, p[pre + "attn_norm"], eps)
    qkv = (h @ p[pre + "attn.wqkv"].T).view(B, T, H, 3, hd)  # rows [head][q|k|v][hd]
    q, k, v = (qkv[:, :, :, i].transpose(1, 2) for i in range(3))  # [B, H, T, hd]
    qr, kr = rope(q, cos, sin), rope(k, cos, sin)
    q = torch.cat([q[:, :rope_h0], qr[:, rope_h0:]], 1)
    k = torch.cat([k[:, :rope_h0], kr[:, rope_h0:]], 1)
    s = q @ k.transpose(-1, -2) / math.sqrt(hd)
    if img_heads > 0 and 0 < img_keys < T:
        s = s.clone()
        s[:, :img_heads, :, img_keys:] = float("-inf")
    att = torch.softmax(s, -1)
    if atts is not None:
        atts.append(att)
    y = (att @ v).transpose(1, 2).reshape(B, T, C)
    x = x + y @ p[pre + "attn.wo"].T
    h = rmsnorm(x, p[pre + "mlp_norm"], eps)
    return x + (F.silu(h @ p[pre + "mlp.wgate"].T) * (h @ p[pre + "mlp.wup"].T)) @ p[pre + "mlp.wdown"].T


class Cfg:
    def __init__(self, attrs):
        for k, v in attrs.items():
            setattr(self, k, v.item() if hasattr(v, "item") else v)


def image_tokens(p, c, images, keep=None):
    """Image tokens [B, Np, d] at the LM input. keep(name, tensor), when
    given, sees the tokens after each step of the image path."""
    B, P, g = images.shape[0], c.patch, c.image_size // c.patch
    eps, dt = c.norm_eps, p["proj.w1"].dtype
    Np = g * g
    keep = keep or (lambda name, t: None)
    # patches in row-major grid order, (row, column, channel) inside a patch
    pt = images.to(dt).reshape(B, g, P, g, P, 3).permute(0, 1, 3, 2, 4, 5).reshape(B, Np, P * P * 3) / 255.0 - 0.5
    keep("patch pixels", pt)
    h = pt @ p["vis.patch.w"].T + p["vis.patch.b"] + p["vis.pos"]
    keep("patch embedding", h)
    cos, sin = rope_tables(Np, c.vision_d // c.vision_heads, c.rope_theta, dt)
    for l in range(c.vision_layers):
        h = block(h, p, f"vis.{l}.", c.vision_heads, cos, sin, eps)
        keep("vision block %d" % l, h)
    h = rmsnorm(h, p["vis.norm"], eps)
    keep("vision norm", h)
    img = F.gelu(h @ p["proj.w1"].T + p["proj.b1"], approximate="tanh") @ p["proj.w2"].T + p["proj.b2"]
    if "img.pos" in p:  # model.grid_pos: normed content plus a learned vector per grid cell
        img = rmsnorm(img, p["img.norm"], eps)
        keep("content", img)
        img = img + p["img.pos"]
    keep("projector", img)
    return img


def lm_rope(c, Np, T, dt):
    """The LM's RoPE tables [T, hd/2]: positions 0..T-1, or with
    model.grid_pos the image rows at angle 0 and the text from 0."""
    hd = c.d_model // c.n_heads
    if not getattr(c, "grid_pos", 0):
        return rope_tables(T, hd, c.rope_theta, dt)
    cos, sin = rope_tables(T - Np, hd, c.rope_theta, dt)
    return (torch.cat([torch.ones(Np, hd // 2, dtype=dt), cos]),
            torch.cat([torch.zeros(Np, hd // 2, dtype=dt), sin]))


def lm_blocks(s, p, c, Np, atts=None):
    """The LM's blocks over the sequence s [B, T, d]."""
    cos, sin = lm_rope(c, Np, s.shape[1], s.dtype)
    ih = getattr(c, "image_heads", 0)
    h0 = ih if getattr(c, "grid_pos", 0) else 0
    for l in range(c.n_layers):
        s = block(s, p, f"lm.{l}.", c.n_heads, cos, sin, c.norm_eps, ih, Np, atts, h0)
    return s


def forward(p, c, prompt, images, x, content=None):
    """Logits [B, L, Vp] at the response positions. content, a list, gets
    the image tokens before their grid cell is added (what the perception
    head reads)."""
    B, eps, dt = images.shape[0], c.norm_eps, p["proj.w1"].dtype
    seen = {}
    img = image_tokens(p, c, images, lambda name, t: seen.__setitem__(name, t))
    if content is not None:
        content.append(seen.get("content", img))
    tokens = torch.cat([prompt.expand(B, -1), x], 1)
    s = torch.cat([img, p["tok_emb"][tokens]], 1)
    T = s.shape[1]
    s = lm_blocks(s, p, c, img.shape[1])
    r = s[:, T - x.shape[1]:]
    return rmsnorm(r, p["lm.norm"], eps) @ p["lm_head"].T


def weighted_ce(logits, y, w, V):
    """sum_i w_i CE(logits_i, y_i) over the real vocabulary columns."""
    ce = F.cross_entropy(logits[..., :V].reshape(-1, V), y.reshape(-1).long(), reduction="none")
    return (w.reshape(-1) * ce).sum()


def objective(p, c, prompt, images, x, y, w, cells=None, cell_w=0.0):
    """(caption loss, perception loss): what the C model minimises, the sum
    of the two."""
    content = []
    loss = weighted_ce(forward(p, c, prompt, images, x, content), y, w, c.vocab)
    if cells is None:
        return loss, torch.zeros((), dtype=loss.dtype)
    logits = content[0] @ p["cell.w"].T + p["cell.b"]
    K = logits.shape[-1]
    return loss, cell_w * F.cross_entropy(logits.reshape(-1, K), cells.reshape(-1).long(), reduction="sum")


def lr_at(step, lr, warmup, total, min_frac):
    if step < warmup:
        return lr * step / warmup
    if total <= warmup:
        return lr
    prog = min(1.0, (step - warmup) / (total - warmup))
    lo = lr * min_frac
    return lo + (lr - lo) * 0.5 * (1 + math.cos(math.pi * prog))


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-30))


def check(path):
    torch.set_default_dtype(torch.float64)
    f = h5py.File(path, "r")
    c = Cfg(dict(f.attrs))
    names = list(f["params"].keys())
    p = {n: torch.tensor(f["params"][n][()], dtype=torch.float64, requires_grad=True) for n in names}
    decay = {n: int(f["params"][n].attrs["decay"]) for n in names}
    prompt = torch.tensor(f["prompt"][()]).long()
    images = torch.tensor(f["batch/images"][()])
    x = torch.tensor(f["batch/x"][()]).long()
    y = torch.tensor(f["batch/y"][()]).long()
    w = torch.tensor(f["batch/w"][()], dtype=torch.float64)
    cells = torch.tensor(f["batch/cells"][()]).long() if "batch/cells" in f else None
    cell_w = float(f.attrs.get("cell_w", 0.0))
    V = c.vocab

    rows = []  # (what, relative error)
    logits = forward(p, c, prompt, images, x)
    loss, closs = objective(p, c, prompt, images, x, y, w, cells, cell_w)
    (loss + closs).backward()
    rows.append(("logits", rel_err(f["c/logits"][()][..., :V], logits.detach().numpy()[..., :V])))
    rows.append(("loss", rel_err(f["c/loss"][()], loss.item())))
    if cells is not None:
        rows.append(("perception loss", rel_err(f["c/cell_loss"][()], closs.item())))
    for n in names:
        rows.append(("grad " + n, rel_err(f["c/grad/" + n][()], p[n].grad.numpy())))

    # 5 AdamW steps: lr schedule, global-norm clipping, decay on flagged tensors
    groups = [{"params": [p[n] for n in names if decay[n]], "weight_decay": c.weight_decay},
              {"params": [p[n] for n in names if not decay[n]], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=c.lr, betas=(c.beta1, c.beta2), eps=c.adam_eps)
    losses = []
    for step in range(1, 6):
        opt.zero_grad()
        loss, closs = objective(p, c, prompt, images, x, y, w, cells, cell_w)
        (loss + closs).backward()
        norm = math.sqrt(sum(float((p[n].grad ** 2).sum()) for n in names))
        if c.grad_clip > 0 and norm > c.grad_clip:
            for n in names:
                p[n].grad.mul_(c.grad_clip / norm)
        for gr in opt.param_groups:
            gr["lr"] = lr_at(step, c.lr, c.warmup, c.total_steps, c.min_lr_frac)
        opt.step()
        losses.append(loss.item() + closs.item())
    c_losses = f["c/losses_adamw"][()]
    for i in range(5):
        rows.append((f"adamw loss step {i + 1}", rel_err(c_losses[i], losses[i])))

    bad = [r for r in rows if not r[1] <= TOL]
    if bad:
        print(f"PARITY FAILED: {len(bad)} of {len(rows)} comparisons above {TOL:g} relative")
        for what, e in sorted(bad, key=lambda r: -r[1])[:20]:
            print(f"  {what:32s} {e:.3e}")
        return 1
    for what, e in rows:
        print(f"  {what:32s} {e:.2e}")
    print(f"parity ok: {len(rows)} comparisons within {TOL:g} relative "
          f"(worst {max(r[1] for r in rows):.2e})")
    return 0


def bench(B=32, steps=4):
    """One training step of the default tiny config (io/config.h), float32."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    c = Cfg(dict(d_model=128, n_layers=4, n_heads=4, d_ff=384, vision_layers=1, vision_d=128,
                 vision_heads=4, vision_d_ff=256, image_size=48, patch=16, gen_len=64,
                 rope_theta=10000.0, norm_eps=1e-5))
    V, Vp, d, Cv, Np = 60, 64, 128, 128, 9
    shapes = {"vis.patch.w": (Cv, 768), "vis.patch.b": (Cv,), "vis.pos": (Np, Cv), "vis.norm": (Cv,),
              "proj.w1": (d, Cv), "proj.b1": (d,), "proj.w2": (d, d), "proj.b2": (d,),
              "tok_emb": (Vp, d), "lm.norm": (d,), "lm_head": (Vp, d)}
    for pre, n, C, ff in (("vis", 1, Cv, 256), ("lm", 4, d, 384)):
        for l in range(n):
            for k, s in (("attn_norm", (C,)), ("attn.wqkv", (3 * C, C)), ("attn.wo", (C, C)),
                         ("mlp_norm", (C,)), ("mlp.wgate", (ff, C)), ("mlp.wup", (ff, C)),
                         ("mlp.wdown", (C, ff))):
                shapes[f"{pre}.{l}.{k}"] = s
    p = {n: (0.02 * torch.randn(s)).requires_grad_() for n, s in shapes.items()}
    opt = torch.optim.AdamW(p.values(), lr=1e-3)
    images = torch.randint(0, 256, (B, 48, 48, 3), dtype=torch.uint8)
    prompt = torch.arange(5, 11)
    x = torch.randint(0, V, (B, 64))
    y = torch.randint(0, V, (B, 64))
    w = torch.full((B, 64), 1 / 64)
    best = 1e9
    for _ in range(steps):
        t0 = time.perf_counter()
        opt.zero_grad()
        weighted_ce(forward(p, c, prompt, images, x), y, w, V).backward()
        torch.nn.utils.clip_grad_norm_(p.values(), 1.0)
        opt.step()
        best = min(best, time.perf_counter() - t0)
    print(f"pytorch {torch.__version__}, 1 thread, batch {B}: {best:.3f} s per step (best of {steps})")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "--bench":
        sys.exit(bench())
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    sys.exit(check(sys.argv[1]))
