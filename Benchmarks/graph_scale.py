#!/usr/bin/env python3
"""The approximate k-NN graph from 1M to 10M rows of one distribution: time per row, peak
memory and the sampled recall simjob reports, one size after another.

The sets come from `simjob generate --anisotropy 1 --clusters 1000 --dim 128` (the hard
synthetic case: overlapping anisotropic components in the full dimension), written once into
--folder and reused. Every run is the whole command (read, build, write), wall clock, and its
peak resident memory (/usr/bin/time).

Usage: python3 Benchmarks/graph_scale.py [--sizes 1000000,3000000,10000000] [--folder DIR]
       [--threads 2] [--options "--nprobe 2 --rounds 2"]
"""
import argparse
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import run, simjob_binary  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000000,3000000,10000000")
    parser.add_argument("--folder", default="/tmp/simjob-scale")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--options", default="--nprobe 2 --rounds 2")
    args = parser.parse_args()
    simjob = simjob_binary()
    os.makedirs(args.folder, exist_ok=True)
    system = run([simjob, "info", "--system", "--sgemm-seconds", "0.2"]).splitlines()
    print(system[0])
    print(next(line for line in system if line.startswith("OpenBLAS")))
    print(f"approximate graph, k=10, {args.threads} threads, options: {args.options}")
    print("| rows | seconds | microseconds per row | peak MiB | sampled recall |")
    print("|---:|---:|---:|---:|---|")
    for size in map(int, args.sizes.split(",")):
        data = os.path.join(args.folder, f"hard-{size}.hdf5")
        if not os.path.exists(data):
            subprocess.run([simjob, "generate", data, "--n", str(size), "--queries", "100", "--dim", "128", "--clusters", "1000",
                            "--anisotropy", "1", "--k", "0", "--quiet"], check=True)
        output = os.path.join(args.folder, f"graph-{size}.hdf5")
        started = time.perf_counter()
        result = subprocess.run(["/usr/bin/time", "-f", "peak %M", simjob, "knn-graph", data, "--k", "10", "--method", "approx",
                                 "--threads", str(args.threads), "--output", output, "--quiet"] + args.options.split(),
                                capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if result.returncode != 0:
            print(f"| {size:,} | failed: {result.stderr.strip().splitlines()[-1]} | | | |")
            continue
        peak = int(re.search(r"peak (\d+)", result.stderr).group(1)) / 1024
        recall = re.search(r"sampled recall ([0-9.]+ \[[0-9.]+, [0-9.]+\])", result.stdout)
        print(f"| {size:,} | {seconds:.1f} | {seconds / size * 1e6:.1f} | {peak:.0f} | {recall.group(1) if recall else '-'} |", flush=True)
        os.remove(output)


if __name__ == "__main__":
    main()
