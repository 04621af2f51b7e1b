#!/usr/bin/env python3
"""Fashion-MNIST from Debian's `dataset-fashion-mnist` package in the ann-benchmarks layout:
`train` 60,000 x 784 and `test` 10,000 x 784 float32 pixel values (0-255), root attribute
`distance` = euclidean (as ann-benchmarks' fashion-mnist-784-euclidean). Nothing is downloaded.

Usage: python3 Benchmarks/make_fashion_mnist.py OUT.hdf5
       (apt-get install dataset-fashion-mnist first)
"""
import gzip
import os
import sys

import h5py
import numpy as np

SOURCE = "/usr/share/datasets/fashion-mnist"


def images(name):
    path = os.path.join(SOURCE, name)
    if not os.path.exists(path):
        sys.exit(f"{path}: missing (apt-get install dataset-fashion-mnist)")
    with gzip.open(path) as f:
        data = f.read()
    count, rows, columns = (int.from_bytes(data[i:i + 4], "big") for i in (4, 8, 12))
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(count, rows * columns).astype(np.float32)


def main():
    # An option-like argument (--help) is not taken as the output's name.
    if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
        sys.exit(__doc__)
    out = sys.argv[1]
    partial = out + ".partial"
    with h5py.File(partial, "w") as f:
        f["train"] = images("train-images-idx3-ubyte.gz")
        f["test"] = images("t10k-images-idx3-ubyte.gz")
        f.attrs["distance"] = "euclidean"
    os.replace(partial, out)


if __name__ == "__main__":
    main()
