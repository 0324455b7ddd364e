#!/usr/bin/python3
"""Reads a rediff shard with h5py and compares it with what the C side wrote.

    check_shard.py SHARD EXPECTED.json

EXPECTED.json holds "attrs" (the root attributes), any of the datasets
"captions", "caption_len", "halluc", "halluc_span", "scenes", "images",
"features", "sample_id" as nested lists (images may be flat per sample),
and optionally "vocab" (a vocab.txt path) with "words": the tokens of each
caption up to its length, decoded here through vocab.txt. The vocab_hash
attribute is checked against FNV-1a 64 of the vocab.txt bytes, an
implementation independent of io/vocab.c.

Exit status: 0 when everything matches, 1 on the first difference (printed),
2 on a usage error.
"""
import json
import sys

import h5py
import numpy as np

DTYPES = {
    "images": np.uint8,
    "features": np.float32,
    "captions": np.int32,
    "caption_len": np.int32,
    "halluc": np.int32,
    "halluc_span": np.int32,
    "scenes": np.int32,
    "sample_id": np.int64,
}


def fail(msg):
    print("check_shard: " + msg, file=sys.stderr)
    sys.exit(1)


def fnv1a64(data):
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    shard, expected_path = sys.argv[1], sys.argv[2]
    with open(expected_path) as f:
        want = json.load(f)

    with h5py.File(shard, "r") as f:
        attrs = {k: f.attrs[k] for k in f.attrs}
        for key, value in want.get("attrs", {}).items():
            if key not in attrs:
                fail(f"{shard}: attribute {key} is missing")
            got = attrs[key]
            got = text(got) if isinstance(value, str) else int(got)
            if got != value:
                fail(f"{shard}: attribute {key} is {got!r}, expected {value!r}")
        n = int(attrs["n_samples"])
        gen_len = int(attrs["gen_len"])

        data = {}
        for name, dtype in DTYPES.items():
            if name not in f:
                if name in want:
                    fail(f"{shard}: dataset /{name} is missing")
                continue
            ds = f[name]
            if ds.dtype != dtype:
                fail(f"{shard}: dataset /{name} is {ds.dtype}, expected {np.dtype(dtype)}")
            if ds.shape[0] != n:
                fail(f"{shard}: dataset /{name} has {ds.shape[0]} rows, n_samples is {n}")
            data[name] = ds[...]
        if data["captions"].shape != (n, gen_len):
            fail(f"{shard}: /captions is {data['captions'].shape}, expected {(n, gen_len)}")

    for name in DTYPES:
        if name not in want:
            continue
        expected = np.asarray(want[name], dtype=DTYPES[name])
        got = data[name]
        if expected.size == got.size and expected.shape != got.shape:
            expected = expected.reshape(got.shape)  # flat images per sample
        if expected.shape != got.shape:
            fail(f"{shard}: /{name} is {got.shape}, expected {expected.shape}")
        if not np.array_equal(got, expected):
            where = np.argwhere(got != expected)[0]
            fail(f"{shard}: /{name}{list(where)} is {got[tuple(where)]}, "
                 f"expected {expected[tuple(where)]}")

    # Padding: every position from caption_len on is [EOS] (id 1).
    caps, lens = data["captions"], data["caption_len"]
    for i in range(n):
        if lens[i] < 0 or lens[i] > gen_len:
            fail(f"{shard}: sample {i}: caption_len {lens[i]} outside [0, {gen_len}]")
        if np.any(caps[i, lens[i]:] != 1):
            fail(f"{shard}: sample {i}: caption not [EOS]-padded after {lens[i]} tokens")

    if "vocab" in want:
        with open(want["vocab"], "rb") as f:
            raw = f.read()
        tokens = raw.decode().split("\n")
        if tokens and tokens[-1] == "":
            tokens.pop()
        if tokens[:4] != ["[MASK]", "[EOS]", "[BOS]", "[UNK]"]:
            fail(f"{want['vocab']}: special tokens are {tokens[:4]}")
        hex_hash = "%016x" % fnv1a64(raw)
        if text(attrs["vocab_hash"]) != hex_hash:
            fail(f"{shard}: vocab_hash {text(attrs['vocab_hash'])}, "
                 f"FNV-1a of {want['vocab']} is {hex_hash}")
        for i, words in enumerate(want.get("words", [])):
            got = [tokens[t] for t in caps[i, : lens[i]]]
            if got != words:
                fail(f"{shard}: sample {i} decodes to {got}, expected {words}")

    print(f"check_shard: {shard}: {n} samples match")


if __name__ == "__main__":
    main()
