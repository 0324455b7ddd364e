#!/usr/bin/python3
"""Compares two revisions files dataset by dataset and attribute by attribute
(they must be equal), and checks one file's internal consistency:
rows sorted by (sample_id, steps), mistake positions exactly the edits'
target spans, draft equal to refined outside them, right rows unedited.

  compare_revisions.py A.h5 [B.h5]"""
import sys

import h5py
import numpy as np


def check(path):
    with h5py.File(path, "r") as f:
        sid, steps, right = f["sample_id"][...], f["steps"][...], f["right"][...]
        orig, x, y, m = (f[k][...] for k in ("original", "draft", "refined", "mistake"))
        edits, kind = f["edits"][...], f["edit_kind"][...]
        assert h5py.check_enum_dtype(f["edit_kind"].dtype) is not None, "edit_kind is not an enum"
    keys = list(zip(sid.tolist(), steps.tolist()))
    assert keys == sorted(keys), "rows are not sorted by (sample_id, steps)"
    want = np.zeros_like(m)
    for row, ds, dl, ts, tl in edits:
        want[row, ts:ts + tl] = 1
        assert not right[row], "an edit on a row judged right"
    assert np.array_equal(want, m), "mistake mask differs from the edits' target spans"
    assert np.all((x == y) | (m == 1)), "draft and refined differ outside the mistake positions"
    for r in np.nonzero(right)[0]:
        assert np.array_equal(orig[r], y[r]) and np.array_equal(x[r], y[r]) and not m[r].any()
    same_len = np.array([all(e[2] == e[4] for e in edits[edits[:, 0] == r]) for r in range(len(sid))], dtype=bool)
    if len(sid):
        assert np.array_equal(orig[same_len], x[same_len]), "same-length revisions must keep the draft as input"
    return len(sid), len(edits)


def compare(a, b):
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        assert sorted(fa.keys()) == sorted(fb.keys()), (list(fa.keys()), list(fb.keys()))
        for k in fa.keys():
            da, db = fa[k][...], fb[k][...]
            assert da.dtype == db.dtype and da.shape == db.shape and np.array_equal(da, db), "dataset /%s differs" % k
        assert dict(fa.attrs) == dict(fb.attrs), "attributes differ"


n, e = check(sys.argv[1])
if len(sys.argv) > 2:
    check(sys.argv[2])
    compare(sys.argv[1], sys.argv[2])
    print("compare_revisions: %d rows, %d edits, equal" % (n, e))
else:
    print("compare_revisions: %d rows, %d edits, consistent" % (n, e))
