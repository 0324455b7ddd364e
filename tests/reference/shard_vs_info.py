"""Checks that h5py reads a shard the way `rediff data info --index I` does.

usage: shard_vs_info.py SHARD INDEX INFO_OUTPUT_FILE
Exits 1 with the differences listed, 0 when the tokens, lengths, ids and
image bytes agree.
"""
import re
import sys

import h5py
import numpy as np


def fnv1a64(data: bytes) -> int:
    h = 1469598103934665603
    for b in data:
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def main() -> int:
    shard, index, info_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    text = open(info_path).read()
    ours = {}
    for key in ("caption", "halluc"):
        m = re.search(r"^%s ids: (.*)$" % key, text, re.M)
        ours[key] = [int(x) for x in m.group(1).split()] if m else None
    m = re.search(r"sample_id (\d+), caption_len (\d+)", text)
    ours["sample_id"], ours["caption_len"] = int(m.group(1)), int(m.group(2))
    m = re.search(r"byte sum (\d+), fnv1a64 ([0-9a-f]{16})", text)
    ours["sum"], ours["fnv"] = int(m.group(1)), int(m.group(2), 16)
    m = re.search(r"^samples: (\d+)$", text, re.M)
    ours["n"] = int(m.group(1))

    bad = []
    with h5py.File(shard, "r") as f:
        if f["/captions"].shape[0] != ours["n"]:
            bad.append("sample count %d != %d" % (f["/captions"].shape[0], ours["n"]))
        cap = f["/captions"][index].tolist()
        if cap != ours["caption"]:
            bad.append("caption ids differ: h5py %s" % cap)
        if "/halluc" in f and f["/halluc"][index].tolist() != ours["halluc"]:
            bad.append("halluc ids differ")
        if int(f["/caption_len"][index]) != ours["caption_len"]:
            bad.append("caption_len differs")
        if int(f["/sample_id"][index]) != ours["sample_id"]:
            bad.append("sample_id differs")
        img = np.asarray(f["/images"][index], dtype=np.uint8)
        if img.shape != (f.attrs["image_size"], f.attrs["image_size"], 3):
            bad.append("image shape %s" % (img.shape,))
        if int(img.astype(np.uint64).sum()) != ours["sum"]:
            bad.append("image byte sum differs")
        if fnv1a64(img.tobytes()) != ours["fnv"]:
            bad.append("image bytes differ (fnv1a64)")
    for b in bad:
        print("shard_vs_info: " + b)
    if not bad:
        print("shard_vs_info: h5py agrees with rediff data info on sample %d" % index)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
