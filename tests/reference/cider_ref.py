"""CIDEr-D as coco-caption's CiderD scorer computes it, in plain Python.

Reference for data/textmetrics.c. Input (file named on the command line):
one caption per line, "c <words>" starts a candidate, each following
"r <words>" line is one of its references; words are separated by spaces.
Output: the corpus mean, then one score per candidate, one per line.

The steps follow the published scorer: count n-grams (n = 1..4) per caption;
document frequency = in how many candidates' reference sets an n-gram occurs;
weight = tf * (log(N) - log(max(1, df))) with N the number of candidates;
per order, cosine similarity with the candidate's weights clipped by the
reference's (min(h, r) * r), times exp(-delta^2 / (2 sigma^2)) with delta the
difference of the captions' bigram counts (the scorer's "length"); mean over
orders and references, times 10.
"""
import math
import sys
from collections import Counter

N_MAX = 4
SIGMA = 6.0


def read_corpus(path):
    cands, refs = [], []
    with open(path) as f:
        for line in f:
            kind, _, text = line.rstrip("\n").partition(" ")
            if kind == "c":
                cands.append(text.split())
                refs.append([])
            elif kind == "r":
                refs[-1].append(text.split())
            else:
                raise ValueError("%s: bad line %r" % (path, line))
    return cands, refs


def ngram_counts(words):
    return Counter(tuple(words[i:i + n]) for n in range(1, N_MAX + 1)
                   for i in range(len(words) - n + 1))


def cider_d(cands, refs):
    cand_counts = [ngram_counts(c) for c in cands]
    ref_counts = [[ngram_counts(r) for r in rs] for rs in refs]
    df = Counter()
    for rs in ref_counts:
        for g in set(g for r in rs for g in r):
            df[g] += 1
    log_n = math.log(float(len(cands)))

    def vec(counts):
        v = [dict() for _ in range(N_MAX)]
        norm = [0.0] * N_MAX
        length = 0
        for g, tf in counts.items():
            w = float(tf) * (log_n - math.log(max(1.0, df[g])))
            v[len(g) - 1][g] = w
            norm[len(g) - 1] += w * w
            if len(g) == 2:
                length += tf
        return v, [math.sqrt(x) for x in norm], length

    def sim(h, r):
        (vh, nh, lh), (vr, nr, lr) = h, r
        delta = float(lh - lr)
        val = [0.0] * N_MAX
        for n in range(N_MAX):
            for g, w in vh[n].items():
                wr = vr[n].get(g, 0.0)
                val[n] += min(w, wr) * wr
            if nh[n] != 0 and nr[n] != 0:
                val[n] /= nh[n] * nr[n]
            val[n] *= math.exp(-(delta ** 2) / (2 * SIGMA ** 2))
        return val

    scores = []
    for hc, rcs in zip(cand_counts, ref_counts):
        h = vec(hc)
        total = [0.0] * N_MAX
        for rc in rcs:
            total = [a + b for a, b in zip(total, sim(h, vec(rc)))]
        scores.append(sum(total) / N_MAX / len(rcs) * 10.0)
    return sum(scores) / len(scores), scores


if __name__ == "__main__":
    mean, scores = cider_d(*read_corpus(sys.argv[1]))
    print(repr(mean))
    for s in scores:
        print(repr(s))
