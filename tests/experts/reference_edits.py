#!/usr/bin/python3
"""A command expert that answers well: it aligns the draft's words to the
reference caption (difflib) and proposes one edit per differing run, widening
each `org` with neighbouring words until it occurs exactly once in the draft.

Test switches (argv): --crash-after K (exit after K replies), --hang-every K
(sleep past any timeout on every K-th request), --malformed-every K (answer
every K-th request with broken JSON)."""
import difflib
import json
import sys
import time

args = sys.argv[1:]
opt = {a: int(b) for a, b in zip(args[::2], args[1::2])}


def count(words, seg):
    n = len(seg)
    return sum(words[i:i + n] == seg for i in range(len(words) - n + 1))


def edits_for(draft, ref):
    out = []
    sm = difflib.SequenceMatcher(a=draft, b=ref, autojunk=False)
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag == "equal":
            continue
        a, b, ta, tb = i1, i2, j1, j2
        # Widen until org is non-empty and unique; the target widens alike.
        while b - a == 0 or count(draft, draft[a:b]) != 1:
            if a > 0 and (out == [] or a > out[-1][1]):
                a, ta = a - 1, ta - 1
            elif b < len(draft):
                b, tb = b + 1, tb + 1
            else:
                break
        if out and a < out[-1][1]:
            return None  # overlapping after widening: give up on this draft
        out.append((a, b, ta, tb))
    return [{"org": " ".join(draft[a:b]), "target": " ".join(ref[ta:tb])} for a, b, ta, tb in out]


served = 0
for line in sys.stdin:
    req = json.loads(line)
    served += 1
    if "--hang-every" in opt and served % opt["--hang-every"] == 0:
        time.sleep(30)
    if "--malformed-every" in opt and served % opt["--malformed-every"] == 0:
        print('{"id": %d, "edits": [' % req["id"], flush=True)
        continue
    draft, ref = req["draft"].split(), req["reference"].split()
    ed = edits_for(draft, ref)
    if ed is None:
        ed = [{"org": "no such words here", "target": "x"}]  # invalid on purpose: counted, not fatal
    reply = {"id": req["id"], "right": True} if not ed else {"id": req["id"], "edits": ed}
    print(json.dumps(reply), flush=True)
    if "--crash-after" in opt and served >= opt["--crash-after"]:
        sys.exit(3)
