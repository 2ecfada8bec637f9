#!/usr/bin/env python3
"""Per-image top-5 of two `edgeresnet eval --json` reports: how many photos have the same five classes in the same order.

Usage: tools/scripts/top5-agree.py A.json B.json   (exit code 1 if any photo differs or is missing from one of them)
"""
import json
import sys

if len(sys.argv) != 3:
    sys.exit(__doc__.strip())
a, b = ({p["file"]: p["top5"] for p in json.load(open(path))["predictions"]} for path in sys.argv[1:])
same = sum(1 for f in a if a[f] == b.get(f))
print(f"{same} of {len(a)} photos have the same top-5 ({len(b)} in the second report)")
sys.exit(0 if same == len(a) == len(b) else 1)
