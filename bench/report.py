"""Turns the key=value lines of bench/train_step.c and bench/torch_step.py
(collected by bench/run.sh) into the tables of docs/RESULTS.md.

Usage: /usr/bin/python3 bench/report.py RESULTS.txt
"""
import collections
import sys


def parse(path):
    rows = []
    for line in open(path):
        if "=" in line:
            rows.append(dict(kv.split("=", 1) for kv in line.split()))
    return rows


def main(path):
    rows = parse(path)
    peak = collections.defaultdict(float)  # threads -> best sgemm GFLOP/s over sizes and runs
    for r in rows:
        if r["impl"] == "sgemm":
            peak[int(r["threads"])] = max(peak[int(r["threads"])], float(r["gflops"]))
    runs = collections.defaultdict(list)  # (impl, threads) -> per-run best ms
    info = {}
    for r in rows:
        if r["impl"] in ("rediff", "pytorch"):
            runs[(r["impl"], int(r["threads"]))].append(float(r["ms"]))
            if r["impl"] == "rediff":
                info = r
    if not info:
        sys.exit("report.py: no rediff result in " + path)
    flops, tokens = float(info["flops"]), int(info["tokens"])
    print(f"Training step of {info['config']}: batch {info['B']} x {info['T']} tokens, "
          f"{int(info['params']) / 1e6:.1f} M parameters, {flops / 1e9:.1f} GFLOP per step; "
          f"best of {len(runs[('rediff', 1)])} runs x {info['steps']} steps")
    print()
    print("| run | ms/step | tokens/s | GFLOP/s | % of sgemm peak | speedup vs PyTorch |")
    print("|---|---:|---:|---:|---:|---:|")
    spread = []
    for t in sorted({k[1] for k in runs}):
        for impl in ("rediff", "pytorch"):
            ms_all = runs.get((impl, t))
            if not ms_all:
                continue
            ms = min(ms_all)
            ref = min(runs[("pytorch", t)]) if ("pytorch", t) in runs else float("nan")
            gf = flops / (ms * 1e-3) / 1e9
            pk = 100.0 * gf / peak[t] if peak[t] else float("nan")
            print(f"| {impl} {t} thread{'s' if t > 1 else ''} | {ms:.0f} | {tokens / (ms * 1e-3):.0f} "
                  f"| {gf:.1f} | {pk:.0f}% | {ref / ms:.2f}x |")
            spread.append(f"{impl} {t}t {100.0 * (max(ms_all) / ms - 1):.0f}%")
    print()
    print("sgemm peak (cblas_sgemm, square 1024 and 2048, best): " +
          ", ".join(f"{t} thread{'s' if t > 1 else ''} {peak[t]:.1f} GFLOP/s" for t in sorted(peak)))
    print("spread of the per-run bests (slowest over fastest): " + ", ".join(spread))
    print()
    print("| memory (MB) | params | grads | optimizer | activations | batch |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        if r["impl"] == "memory":
            mb = [int(r[k]) / 1e6 for k in ("bytes_params", "bytes_grads", "bytes_opt", "bytes_acts")]
            print(f"| {r['config']} | " + " | ".join(f"{x:.1f}" for x in mb) + f" | {r['B']} |")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
