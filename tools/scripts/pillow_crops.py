#!/usr/bin/env python3
"""Reference crops from Pillow, for checking the C# port of the Keras/Caffe preprocessing.

For each image: Pillow decode, convert to RGB, resize the shorter side to 256 with
Image.BILINEAR (other side round(side*256/shorter)), centre crop 224x224; prints
filename<TAB>SHA-256 of the 224*224*3 RGB bytes. Needs Debian's python3-pil (not used by CI).
Usage: pillow_crops.py IMAGE_DIR [FILE...]   (all files of labels.tsv when none are given)
"""
import hashlib, os, sys
from PIL import Image

def crop(path):
    img = Image.open(path)
    if img.mode != "RGB":
        img = img.convert("RGB")
    w, h = img.size
    s = min(w, h)
    nw, nh = round(w * 256 / s), round(h * 256 / s)
    img = img.resize((nw, nh), Image.BILINEAR)
    left, top = (nw - 224) // 2, (nh - 224) // 2
    return img.crop((left, top, left + 224, top + 224)).tobytes()

def main():
    folder = sys.argv[1]
    files = sys.argv[2:] or [l.split("\t")[0] for l in open(os.path.join(folder, "labels.tsv")) if l.strip() and not l.startswith("#")]
    for f in files:
        print(f"{f}\t{hashlib.sha256(crop(os.path.join(folder, f))).hexdigest()}")

if __name__ == "__main__":
    main()
