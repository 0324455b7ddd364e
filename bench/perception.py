"""Where a trained rediff model stands on reading its image: the checks that
tell a bug from a model that has not learned to look.

Usage: /usr/bin/python3 bench/perception.py RUN_DIR [STAGE] [--n N]

Loads the latest checkpoint of RUN_DIR/ckpt/STAGE (default base) into the
PyTorch reference model (tests/reference/vlm_ref.py, the model the C code
is tested against) and the first N (default 256) eval samples of
RUN_DIR/data, then prints:

1. scale: the RMS of the image tokens and of the text token embeddings at
   the LM input (image tokens that are tiny or huge next to the text are a
   wiring bug or a dead projector);
2. gradient: the norm of the Eq. 1 gradient (the eval masks of the held-out
   loss, t = 0.5) per part of the model, the patch embedding included
   (zero there means the image does not reach the loss);
3. vision: how well a linear read-out of the image tokens tells each
   cell's colour, shape and size (and empty cells), fit by ridge
   regression on half the samples and scored on the other half; high here
   and low in the probe means the LM does not read what the tower encodes;
4. attention: per LM layer, the share of the attention of each object
   sentence's attribute words (colour, shape, size) that falls on the image
   token of the sentence's cell, on the other 8 image tokens, and on text,
   with the caption given and the attribute word masked;
5. collapse: along the image path (pixels, patch embedding, each vision
   block, the vision norm, the projector, the LM's first norm), the RMS of
   the part every image token shares, the part set by the token's grid
   place, and the part that varies with the image. Only the last can tell
   images apart; a model whose content share falls towards 0 has made its
   image tokens alike, and no read-out in 3 makes up for that at the LM.
"""
import argparse
import glob
import math
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "reference"))
import vlm_ref  # noqa: E402

GRID = 3


def latest(run_dir, stage):
    d = os.path.join(run_dir, "ckpt", stage)
    with open(os.path.join(d, "LATEST")) as f:
        return os.path.join(d, f.read().strip())


def load_model(path):
    with h5py.File(path, "r") as f:
        p = {k: torch.tensor(f["params"][k][()], dtype=torch.float64) for k in f["params"]}
        attrs = dict(f.attrs)
    return p, attrs


def cfg_from(p, attrs):
    """The model's shape: sizes from the tensors, the rest from the config
    the checkpoint embeds (root attribute config_yaml)."""
    import yaml  # python3-yaml, beside h5py in Debian

    y = attrs.get("config_yaml", b"")
    m = yaml.safe_load(y.decode() if isinstance(y, bytes) else str(y)).get("model", {})
    c = Cfg()
    c.image_size = int(m.get("image_size", 48))
    c.patch = int(m.get("patch", 16))
    c.vision_layers = int(m.get("vision_layers", 1))
    c.image_heads = int(m.get("image_heads", 0))
    c.grid_pos = int(bool(m.get("grid_pos", False)))
    c.vision_d = p["vis.patch.w"].shape[0]
    c.vision_heads = int(m.get("vision_heads", 4))
    c.d_model = p["tok_emb"].shape[1]
    c.n_layers = int(m.get("n_layers", 4))
    c.n_heads = int(m.get("n_heads", 4))
    c.rope_theta = float(m.get("rope_theta", 10000.0))
    c.norm_eps = float(m.get("norm_eps", 1e-5))
    c.prompt = yaml.safe_load(y.decode() if isinstance(y, bytes) else str(y)).get("data", {}).get(
        "prompt", "describe the image in detail .")
    return c


class Cfg:
    pass


def image_tokens(p, c, images, stages=None):
    """Image tokens [B, Np, d] at the LM input (the reference model's image
    path); with a list `stages`, also appends (name, tensor) after each step
    of the path, the LM's first norm included."""
    keep = (lambda name, t: stages.append((name, t))) if stages is not None else None
    out = vlm_ref.image_tokens(p, c, images, keep)
    if stages is not None:
        stages.append(("LM block 0 input norm", vlm_ref.rmsnorm(out, p["lm.0.attn_norm"], c.norm_eps)))
    return out


def split_parts(x):
    """RMS of the three parts of x [B, Np, C]: the vector shared by every
    token of every image, the part set by the token's place in the grid (the
    same in every image), and the rest, which is all that can tell one image
    from another."""
    shared = x.mean((0, 1))
    place = x.mean(0) - shared
    content = x - x.mean(0, keepdim=True)
    rms = lambda t: float(t.pow(2).mean().sqrt())
    return rms(shared), rms(place), rms(content)


def lm(p, c, img, prompt, x):
    B = x.shape[0]
    tokens = torch.cat([prompt.expand(B, -1), x], 1)
    s = torch.cat([img, p["tok_emb"][tokens]], 1)
    T = s.shape[1]
    atts = []
    s = vlm_ref.lm_blocks(s, p, c, img.shape[1], atts)
    r = s[:, T - x.shape[1]:]
    return vlm_ref.rmsnorm(r, p["lm.norm"], c.norm_eps) @ p["lm_head"].T, atts


def read_eval(run_dir, n):
    imgs, caps, scenes = [], [], []
    for path in sorted(glob.glob(os.path.join(run_dir, "data", "eval-*.h5"))):
        with h5py.File(path, "r") as f:
            imgs.append(f["images"][()])
            caps.append(f["captions"][()])
            scenes.append(f["scenes"][()])
    return np.concatenate(imgs)[:n], np.concatenate(caps)[:n], np.concatenate(scenes)[:n]


def read_vocab(run_dir):
    with open(os.path.join(run_dir, "data", "vocab.txt")) as f:
        return [line.rstrip("\n") for line in f]


def cell_labels(scenes):
    """Per (sample, cell): colour, shape, size of its object, or -1 (empty)."""
    n = scenes.shape[0]
    lab = -np.ones((n, GRID * GRID, 3), dtype=np.int64)
    for i in range(n):
        k = scenes[i, 0, 0]
        for o in scenes[i, 1:1 + k]:
            shape, colour, size, row, col = o[:5]
            lab[i, row * GRID + col] = (colour, shape, size)
    return lab


def ridge_accuracy(X, y, classes, lam=1e-2):
    """Ridge regression onto one-hot classes, fit on the first half, accuracy on the second."""
    h = len(X) // 2
    Y = np.eye(classes)[y]
    A = X[:h]
    W = np.linalg.solve(A.T @ A + lam * np.eye(A.shape[1]), A.T @ Y[:h])
    return float(((X[h:] @ W).argmax(1) == y[h:]).mean())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir")
    ap.add_argument("stage", nargs="?", default="base")
    ap.add_argument("--n", type=int, default=256)
    a = ap.parse_args()
    ck = latest(a.run_dir, a.stage)
    p, attrs = load_model(ck)
    c = cfg_from(p, attrs)
    vocab = read_vocab(a.run_dir)
    ids = {w: i for i, w in enumerate(vocab)}
    images, caps, scenes = read_eval(a.run_dir, a.n)
    n = len(images)
    prompt = torch.tensor([[ids[w] for w in c.prompt.split()]])
    print("checkpoint %s, %d eval samples" % (ck, n))

    stages = []
    img = image_tokens(p, c, torch.tensor(images), stages)
    txt = p["tok_emb"][torch.tensor(caps).long()]
    print("1. scale at the LM input: image tokens RMS %.4f, text embeddings RMS %.4f"
          % (img.pow(2).mean().sqrt(), txt.pow(2).mean().sqrt()))

    # 2. gradient of Eq. 1 at t = 0.5 per part
    g = torch.Generator().manual_seed(0)
    x = torch.tensor(caps).long().clone()
    m = torch.rand(x.shape, generator=g) < 0.5
    y = x.clone()
    x[m] = ids["[MASK]"]
    for k in p:
        p[k].requires_grad_(True)
    logits, _ = lm(p, c, image_tokens(p, c, torch.tensor(images)), prompt, x)
    V = len(vocab)
    loss = (F.cross_entropy(logits[..., :V].reshape(-1, V), y.reshape(-1), reduction="none") * m.reshape(-1)).sum() / m.sum()
    loss.backward()
    parts = {"vis.patch": [], "vis.pos": [], "vis blocks": [], "proj": [], "tok_emb": [], "lm blocks": [], "lm_head": []}
    for k, t in p.items():
        key = ("vis.patch" if k.startswith("vis.patch") else "vis.pos" if k == "vis.pos" else
               "vis blocks" if k.startswith("vis.") else "proj" if k.startswith("proj") else
               "tok_emb" if k == "tok_emb" else "lm_head" if k == "lm_head" else "lm blocks")
        parts[key].append(t.grad.pow(2).sum())
    print("2. gradient norm of Eq. 1 (t = 0.5, loss %.4f): " % loss.item()
          + ", ".join("%s %.3g" % (k, math.sqrt(sum(v))) for k, v in parts.items() if v))
    for k in p:
        p[k].requires_grad_(False)

    # 3. linear read-out of the image tokens
    lab = cell_labels(scenes).reshape(-1, 3)
    X = np.concatenate([img.detach().reshape(-1, img.shape[-1]).numpy(), np.ones((lab.shape[0], 1))], 1)
    occ = lab[:, 0] >= 0
    res = ["occupied %.3f" % ridge_accuracy(X, occ.astype(np.int64), 2)]
    for j, (name, k) in enumerate((("colour", 6), ("shape", 3), ("size", 2))):
        res.append("%s %.3f (chance %.3f)" % (name, ridge_accuracy(X[occ], lab[occ, j], k), 1.0 / k))
    print("3. linear read-out of the image tokens, per cell: " + ", ".join(res))

    # 4. attention of attribute words to their cell's image token
    words = {"colour": {"red", "green", "blue", "yellow", "purple", "orange"},
             "shape": {"circle", "square", "triangle"}, "size": {"large", "big", "small", "little"}}
    rows = {"top": 0, "middle": 1, "bottom": 2}
    cols = {"left": 0, "centre": 1, "right": 2}
    Np = img.shape[1]
    Tp = prompt.shape[1]
    sums = np.zeros((c.n_layers, 3))
    count = 0
    for kind, ws in words.items():
        xs = torch.tensor(caps).long().clone()
        targets = []  # (sample, response position, cell)
        for i in range(n):
            toks = [vocab[t] for t in caps[i]]
            # sentences: split at "."; the cell is the row, col words in it
            start = 0
            for e, w in enumerate(toks):
                if w != ".":
                    continue
                sent = list(range(start, e))
                start = e + 1
                r = [rows[toks[j]] for j in sent if toks[j] in rows]
                cc = [cols[toks[j]] for j in sent if toks[j] in cols]
                if len(r) != 1 or len(cc) != 1:
                    continue  # not an object sentence
                for j in sent:
                    if toks[j] in ws:
                        targets.append((i, j, r[0] * GRID + cc[0]))
                        xs[i, j] = ids["[MASK]"]
        _, atts = lm(p, c, img, prompt, xs)
        for (i, j, cell) in targets:
            q = Np + Tp + j
            for layer, att in enumerate(atts):
                a = att[i, :, q, :].mean(0)  # over heads
                own = a[cell].item()
                other = a[:Np].sum().item() - own
                sums[layer] += (own, other / (Np - 1), 1 - a[:Np].sum().item())
            count += 1
    print("4. attention of masked attribute words (mean over heads and %d words), per LM layer:" % count)
    for layer in range(c.n_layers):
        own, other, text = sums[layer] / max(count, 1)
        print("   layer %d: own cell's image token %.3f, each other image token %.3f, text %.3f"
              % (layer, own, other, text))

    # 5. what is left of the image along its path: a content part that
    # shrinks next to the shared part is an image path that has collapsed
    # (every image looks alike to the LM, whatever the read-out of 3 finds)
    print("5. RMS of the parts of the image tokens along the image path (shared by all / set by the grid"
          " place / varying with the image), and content as a share of the whole:")
    for name, t in stages:
        sh, pl, ct = split_parts(t.detach())
        print("   %-22s %8.4f %8.4f %8.4f   %.3f" % (name, sh, pl, ct, ct / math.sqrt(sh * sh + pl * pl + ct * ct)))


if __name__ == "__main__":
    main()
