"""Corpus BLEU-4 (Papineni et al. 2002) in plain Python.

Reference for data/textmetrics.c; input format as tests/reference/cider_ref.py.
Output, one per line: BLEU-4, the precisions p1..p4, the brevity penalty.

p_n = sum over candidates of n-gram counts clipped by the most any one of
its references holds, over the sum of candidate n-gram counts (0 when there
are none); r = sum of the reference lengths closest to each candidate's
length (ties to the shorter), c = sum of candidate lengths;
BP = 1 if c > r, 0 if c = 0, else exp(1 - r/c);
BLEU = BP * exp(mean log p_n), 0 when some p_n is 0. No smoothing. Unlike
nltk's corpus_bleu, a candidate with no n-gram of some order adds nothing to
that order's denominator (nltk adds 1).
"""
import math
import sys
from collections import Counter

from cider_ref import read_corpus


def ngrams(words, n):
    return Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def bleu4(cands, refs):
    match, total = [0] * 4, [0] * 4
    c = r = 0
    for cand, rs in zip(cands, refs):
        c += len(cand)
        r += min((abs(len(x) - len(cand)), len(x)) for x in rs)[1]
        for n in range(1, 5):
            counts = ngrams(cand, n)
            most = Counter()
            for x in rs:
                for g, k in ngrams(x, n).items():
                    most[g] = max(most[g], k)
            match[n - 1] += sum(min(k, most[g]) for g, k in counts.items())
            total[n - 1] += sum(counts.values())
    p = [m / t if t else 0.0 for m, t in zip(match, total)]
    bp = 1.0 if c > r else (0.0 if c == 0 else math.exp(1.0 - r / c))
    score = 0.0 if min(p) == 0 else bp * math.exp(sum(math.log(x) for x in p) / 4)
    return score, p, bp


if __name__ == "__main__":
    score, p, bp = bleu4(*read_corpus(sys.argv[1]))
    for x in [score] + p + [bp]:
        print(repr(x))
