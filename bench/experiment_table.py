"""Merges the results.json of a pipeline run and its bench/experiment.sh
variants into one Markdown table (F1, factuality, coverage, syntax and
repetition at each tokens-per-step)."""
import json
import os
import sys

run = sys.argv[1]
sources = [
    (run, {"base": "base", "mask": "mask-trained", "stage1": "stage1 (syntax + halluc)", "stage2_r1": "stage1 + stage2 r1"}),
    (run + "-stage1-syntax", {"stage1": "stage1 syntax only"}),
    (run + "-stage1-halluc", {"stage1": "stage1 halluc only"}),
    (run + "-stage2-only", {"stage2_r1": "stage2 only (from base)"}),
    (run + "-rounds", {"stage2_r2": "stage1 + stage2 r2"}),
]
metrics = ["f1", "factuality", "coverage", "syntax", "repetition"]
rows = {}
tps_all = set()
for d, names in sources:
    path = os.path.join(d, "eval", "results.json")
    if not os.path.exists(path):
        continue
    for r in json.load(open(path))["rows"]:
        if r["model"] not in names:
            continue
        key = (names[r["model"]], r["mode"])
        rows.setdefault(key, {})[r["tokens_per_step"]] = r
        tps_all.add(r["tokens_per_step"])
tps = sorted(tps_all)
order = [n for _, names in sources for n in names.values()]
print("Each cell: the value at %s tokens per step.\n" % " / ".join(map(str, tps)))
print("| model | mode | " + " | ".join(metrics) + " |")
print("|---|---|" + "---|" * len(metrics))
for name in order:
    for mode in ("refine", "remask"):
        if (name, mode) not in rows:
            continue
        cells = []
        for m in metrics:
            cells.append(" / ".join("%.3f" % rows[(name, mode)][t][m] if t in rows[(name, mode)] else "-" for t in tps))
        print("| %s | %s | %s |" % (name, mode, " | ".join(cells)))
