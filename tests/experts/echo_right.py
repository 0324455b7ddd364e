#!/usr/bin/python3
"""The smallest command expert: judges every draft right (docs/expert-protocol.md)."""
import json
import sys

for line in sys.stdin:
    req = json.loads(line)
    print(json.dumps({"id": req["id"], "right": True}), flush=True)
