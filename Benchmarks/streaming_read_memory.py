#!/usr/bin/env python3
"""Peak memory of reading a large dataset by blocks.

Writes a float32 dataset of --gib GiB with h5py (default 1 GiB, 128 dimensions, in 64 MiB
slices), then runs `simjob info FILE --check`, which reads every row by blocks and checks it
for NaN and infinities, and reports simjob's peak resident memory as the kernel measured it
(VmHWM of the simjob process, which it reads from /proc when done; a getrusage of the child from
here would also count this Python process, which the child shares until exec), against the
dataset's size.

Usage: python3 Benchmarks/streaming_read_memory.py [--gib 1] [--block-rows 32768]
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import simjob_binary  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--block-rows", type=int, default=32768)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()

    import h5py
    import numpy as np

    simjob = simjob_binary()
    work = args.workdir or tempfile.mkdtemp(prefix="simjob-bench-")
    os.makedirs(work, exist_ok=True)
    path = os.path.join(work, "large.hdf5")
    rows = int(args.gib * (1 << 30)) // (4 * args.dim)
    step = max(1, (64 << 20) // (4 * args.dim))
    with h5py.File(path, "w") as f:
        data = f.create_dataset("train", (rows, args.dim), dtype="f4")
        rng = np.random.default_rng(1)
        for start in range(0, rows, step):
            count = min(step, rows - start)
            data[start:start + count] = rng.standard_normal((count, args.dim), dtype="f4")
        f.attrs["distance"] = "euclidean"
    size = os.path.getsize(path)
    started = time.perf_counter()
    out = subprocess.run([simjob, "info", path, "--check", "--block-rows", str(args.block_rows)], check=True,
                         capture_output=True, text=True).stdout
    seconds = time.perf_counter() - started
    peak = int(re.search(r"peak_rss_bytes=(\d+)", out).group(1))
    os.remove(path)
    print(f"dataset: {rows} x {args.dim} float32 = {size / 2**20:.0f} MiB on disk; blocks of {args.block_rows} rows "
          f"({args.block_rows * args.dim * 4 / 2**20:.0f} MiB)")
    print(f"simjob info --check read and checked it in {seconds:.2f} s with a peak of {peak / 2**20:.1f} MiB "
          f"({100 * peak / size:.1f} % of the dataset)")


if __name__ == "__main__":
    main()
