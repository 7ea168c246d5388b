#!/usr/bin/env python3
"""Appendix C's data: Fashion-MNIST (Debian's dataset-fashion-mnist) as one float32 .npy per class.

Writes DIR/<class>.npy of shape (N, 28, 28) with pixel values 0-255: the ten classes (training and
test images together, 7,000 each; aware makes its own split) and `inverted`, the brightness-inverted
(255 - x) test images of the two normal classes of configs/fashion.toml (T-shirt/top and trouser).
Usage: scripts/make_fashion.py [DIR] (default data/fashion); does nothing when DIR is complete.
"""
import gzip
import os
import sys

import numpy as np

SOURCE = "/usr/share/datasets/fashion-mnist"
CLASSES = ["tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]
INVERTED_FROM = ["tshirt", "trouser"]


def read_idx(name, offset):
    path = os.path.join(SOURCE, name)
    if not os.path.exists(path):
        sys.exit(f"make_fashion: {path} is missing: install Debian's dataset-fashion-mnist (scripts/setup.sh)")
    with gzip.open(path) as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


def save(path, array):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        np.save(f, array.astype(np.float32))
    os.replace(tmp, path)  # atomic: a killed run leaves no half file


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "data/fashion"
    names = CLASSES + ["inverted"]
    if all(os.path.exists(os.path.join(out, n + ".npy")) for n in names):
        return
    os.makedirs(out, exist_ok=True)
    parts = []
    for prefix in ("train", "t10k"):
        images = read_idx(f"{prefix}-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)
        labels = read_idx(f"{prefix}-labels-idx1-ubyte.gz", 8)
        parts.append((images, labels))
    for k, name in enumerate(CLASSES):
        save(os.path.join(out, name + ".npy"), np.concatenate([im[lab == k] for im, lab in parts]))
    test_images, test_labels = parts[1]
    inverted = [255 - test_images[test_labels == CLASSES.index(n)] for n in INVERTED_FROM]
    save(os.path.join(out, "inverted.npy"), np.concatenate(inverted))
    print(f"make_fashion: wrote {len(names)} classes to {out}")


if __name__ == "__main__":
    main()
