#!/usr/bin/env python3
"""The approximate k-NN graph from 1M to 10M rows of one distribution: time per row, peak
memory and the sampled recall simjob reports, one size after another.

The sets come from `simjob generate --anisotropy 1 --clusters 1000 --dim 128` (the hard
synthetic case: overlapping anisotropic components in the full dimension), written once into
--folder and reused. Every run is the whole command (read, build, write), wall clock, and its
peak resident memory (/usr/bin/time).

With --cgroup SIZE each run is confined to a Linux memory cgroup (v1, /sys/fs/cgroup/memory; root
needed) whose hard limit is SIZE, page cache included: a run that finishes has stayed within it
(the kernel reclaims spill-file pages; anonymous memory above the limit would be killed). The
table then also shows the cgroup's peak charge. Pair it with `--options "--memory-limit ..."`
below the set's size to measure the spilled path.

With --dedup THRESHOLD the same sizes run `simjob dedup --mode fast` instead, on the same
distribution with 5 % of the rows planted as near-duplicates (`generate --duplicates 0.05`), and
the table shows the pairs found and the pair recall simjob measures on its sample.

Usage: python3 Benchmarks/graph_scale.py [--sizes 1000000,3000000,10000000] [--folder DIR]
       [--threads 2] [--options "--nprobe 2 --rounds 2"] [--cgroup 7G] [--dedup 0.2]
"""
import argparse
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import run, simjob_binary  # noqa: E402


def parse_size(text):
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    return int(float(text[:-1]) * units[text[-1].upper()]) if text[-1].upper() in units else int(text)


def make_cgroup(limit):
    group = f"/sys/fs/cgroup/memory/simjob-scale-{os.getpid()}"
    os.makedirs(group, exist_ok=True)
    with open(os.path.join(group, "memory.limit_in_bytes"), "w") as handle:
        handle.write(str(parse_size(limit)))
    return group


def enter_cgroup(group):
    with open(os.path.join(group, "cgroup.procs"), "w") as handle:
        handle.write(str(os.getpid()))


def read_cgroup(group, name):
    with open(os.path.join(group, name)) as handle:
        return int(handle.read().split()[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000000,3000000,10000000")
    parser.add_argument("--folder", default="/tmp/simjob-scale")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--options", default="--nprobe 2 --rounds 2")
    parser.add_argument("--cgroup", default=None, help="hard memory limit of a cgroup each run is confined to, e.g. 7G")
    parser.add_argument("--dedup", type=float, default=None, help="run fast dedup at this threshold instead of the graph")
    args = parser.parse_args()
    simjob = simjob_binary()
    os.makedirs(args.folder, exist_ok=True)
    system = run([simjob, "info", "--system", "--sgemm-seconds", "0.2"]).splitlines()
    print(system[0])
    print(next(line for line in system if line.startswith("OpenBLAS")))
    what = f"fast dedup, threshold {args.dedup}" if args.dedup is not None else "approximate graph, k=10"
    print(f"{what}, {args.threads} threads, options: {args.options}"
          + (f", confined to a memory cgroup of {args.cgroup} (page cache included)" if args.cgroup else ""))
    print("| rows | seconds | microseconds per row | peak MiB | " + ("pairs | sampled pair recall |" if args.dedup is not None else "sampled recall |")
          + (" cgroup peak MiB |" if args.cgroup else ""))
    print("|---:|---:|---:|---:|" + ("---:|---|" if args.dedup is not None else "---|") + ("---:|" if args.cgroup else ""))
    for size in map(int, args.sizes.split(",")):
        data = os.path.join(args.folder, f"hard-{size}" + ("-dup" if args.dedup is not None else "") + ".hdf5")
        if not os.path.exists(data):
            subprocess.run([simjob, "generate", data, "--n", str(size), "--queries", "100", "--dim", "128", "--clusters", "1000",
                            "--anisotropy", "1", "--k", "0", "--quiet"] + (["--duplicates", "0.05"] if args.dedup is not None else []), check=True)
        output = os.path.join(args.folder, f"graph-{size}.hdf5")
        group = make_cgroup(args.cgroup) if args.cgroup else None
        started = time.perf_counter()
        command = (["dedup", data, "--threshold", str(args.dedup), "--mode", "fast"] if args.dedup is not None
                   else ["knn-graph", data, "--k", "10", "--method", "approx"])
        result = subprocess.run(["/usr/bin/time", "-f", "peak %M", simjob] + command
                                + ["--threads", str(args.threads), "--output", output, "--quiet"] + args.options.split(),
                                capture_output=True, text=True, preexec_fn=(lambda: enter_cgroup(group)) if group else None)
        seconds = time.perf_counter() - started
        charged = read_cgroup(group, "memory.max_usage_in_bytes") / 2**20 if group else None
        if group:
            os.rmdir(group)
        if result.returncode != 0:
            lines = result.stderr.strip().splitlines()
            print(f"| {size:,} | failed (status {result.returncode}): {lines[-1] if lines else 'killed'} | | | |")
            continue
        peak = int(re.search(r"peak (\d+)", result.stderr).group(1)) / 1024
        if args.dedup is not None:
            recall = re.search(r"pair recall against exact on a sample: ([0-9.]+)", result.stdout)
            pairs = re.search(r"^\s+[0-9.e+-]+\s+(\d+)", result.stdout, re.M)
            measured = f"{pairs.group(1) if pairs else '-'} | {recall.group(1) if recall else '-'}"
        else:
            recall = re.search(r"sampled recall ([0-9.]+ \[[0-9.]+, [0-9.]+\])", result.stdout)
            measured = recall.group(1) if recall else "-"
        print(f"| {size:,} | {seconds:.1f} | {seconds / size * 1e6:.1f} | {peak:.0f} | {measured} |"
              + (f" {charged:.0f} |" if charged is not None else ""), flush=True)
        os.remove(output)


if __name__ == "__main__":
    main()
