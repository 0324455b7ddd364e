"""Compares two rediff checkpoints dataset by dataset.

usage: compare_ckpt.py A.h5 B.h5 [--tol REL]
Without --tol every dataset must be bitwise equal; with it, the largest
|a-b| / max|b| of each dataset must stay below REL. Exits 1 on a difference,
printing the worst datasets.
"""
import sys

import h5py
import numpy as np


def datasets(f):
    out = {}
    f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def main():
    a_path, b_path = sys.argv[1], sys.argv[2]
    tol = float(sys.argv[sys.argv.index("--tol") + 1]) if "--tol" in sys.argv else None
    with h5py.File(a_path, "r") as fa, h5py.File(b_path, "r") as fb:
        a, b = datasets(fa), datasets(fb)
        step_a, step_b = int(fa.attrs["step"]), int(fb.attrs["step"])
    bad = []
    if step_a != step_b:
        bad.append("step %d != %d" % (step_a, step_b))
    if sorted(a) != sorted(b):
        bad.append("different datasets: %s" % sorted(set(a) ^ set(b)))
    worst = 0.0
    for name in sorted(set(a) & set(b)):
        x, y = np.asarray(a[name]), np.asarray(b[name])
        if x.shape != y.shape:
            bad.append("%s: shape %s != %s" % (name, x.shape, y.shape))
            continue
        if tol is None:
            if x.tobytes() != y.tobytes():
                n = int(np.sum(x != y))
                bad.append("%s: %d of %d values differ" % (name, n, x.size))
        else:
            scale = max(float(np.max(np.abs(y))) if y.size else 0.0, 1e-30)
            rel = float(np.max(np.abs(x.astype(np.float64) - y))) / scale if x.size else 0.0
            worst = max(worst, rel)
            if rel > tol:
                bad.append("%s: relative difference %.3g > %.3g" % (name, rel, tol))
    for line in bad[:20]:
        print("compare_ckpt: " + line)
    if not bad:
        what = "bitwise equal" if tol is None else "equal within %.3g (worst %.3g)" % (tol, worst)
        print("compare_ckpt: %d datasets %s at step %d" % (len(a), what, step_a))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
