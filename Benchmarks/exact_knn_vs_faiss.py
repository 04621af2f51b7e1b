#!/usr/bin/env python3
"""Exact all-pairs k-NN graph: simjob against FAISS on the same data, threads and machine.

Runs in one go, so the ratio is measured under the same conditions (these machines are noisy):
  1. `simjob info --system`: BLAS core in use and the sgemm ceiling (GFLOP/s, all threads);
  2. `simjob generate` a clustered set (default 200,000 x 128, euclidean);
  3. `simjob knn-graph --k K` (self excluded), timed end to end, peak memory from the tool;
  4. FAISS IndexFlat search of the set against itself with k + 1, dropping self, timed;
  5. agreement of the two graphs, and the ratios.

FAISS's wheel bundles its own OpenBLAS, which on AVX-512 CPUs falls back to very old kernels
unless told otherwise; it runs here with OPENBLAS_CORETYPE=SKYLAKEX (its best on the reference
machine), stated in the output. simjob picks its own kernels (see `simjob info --system`).

Usage: python3 Benchmarks/exact_knn_vs_faiss.py [--n 200000] [--dim 128] [--k 10] [--threads 2]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import FAISS_SELF_SEARCH as FAISS_SCRIPT, run, simjob_binary  # noqa: E402






def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--metric", default="euclidean", choices=["euclidean", "angular", "ip"])
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()

    import h5py
    import numpy as np

    simjob = simjob_binary()
    work = args.workdir or tempfile.mkdtemp(prefix="simjob-bench-")
    os.makedirs(work, exist_ok=True)
    data = os.path.join(work, "data.hdf5")
    graph = os.path.join(work, "graph.hdf5")

    system = subprocess.run([simjob, "info", "--system"], capture_output=True, text=True, check=True).stdout
    print(system.strip())
    ceiling = float(re.search(r"([0-9.]+) GFLOP/s on \d+ threads", system).group(1)) if args.threads > 1 else \
        float(re.search(r"([0-9.]+) GFLOP/s on 1 thread", system).group(1))

    subprocess.run([simjob, "generate", data, "--n", str(args.n), "--queries", "1", "--dim", str(args.dim),
                    "--metric", args.metric, "--k", "0", "--quiet"], check=True)

    started = time.perf_counter()
    out = subprocess.run([simjob, "knn-graph", data, "--k", str(args.k), "--output", graph, "--threads",
                          str(args.threads), "--quiet"], capture_output=True, text=True, check=True).stdout
    simjob_seconds = time.perf_counter() - started
    print(out.strip())
    peak = re.search(r"peak memory ([0-9.]+) MiB", out)
    peak_mib = float(peak.group(1)) if peak else float("nan")

    # The process's fixed cost (Swift runtime, Foundation, HDF5, OpenBLAS), measured on a tiny set.
    tiny = os.path.join(work, "tiny.hdf5")
    subprocess.run([simjob, "generate", tiny, "--n", "200", "--queries", "1", "--dim", str(args.dim), "--k", "0",
                    "--quiet"], check=True)
    tiny_out = subprocess.run([simjob, "knn-graph", tiny, "--k", str(args.k), "--output", os.path.join(work, "tiny-graph.hdf5"),
                               "--threads", str(args.threads), "--quiet"], capture_output=True, text=True, check=True).stdout
    baseline_mib = float(re.search(r"peak memory ([0-9.]+) MiB", tiny_out).group(1))

    faiss_env = dict(os.environ, OPENBLAS_CORETYPE="SKYLAKEX", OMP_NUM_THREADS=str(args.threads))
    ids_path = os.path.join(work, "faiss_ids.npy")
    result = subprocess.run([sys.executable, "-c", FAISS_SCRIPT, data, str(args.k), str(args.threads), args.metric,
                             ids_path], capture_output=True, text=True, env=faiss_env, check=True)
    faiss_seconds = json.loads(result.stdout.strip().splitlines()[-1])["seconds"]

    ours = h5py.File(graph, "r")["knn_graph/neighbors"][:]
    theirs = np.load(ids_path)
    overlap = np.mean([len(set(a) & set(b)) / args.k for a, b in zip(ours, theirs)])

    useful_flops = float(args.n) * args.n * args.dim  # each unordered pair once: n^2/2 * 2d
    dataset_mib = args.n * args.dim * 4 / 2**20
    output_mib = args.n * args.k * 8 / 2**20
    print()
    print(f"data: {args.n} x {args.dim} {args.metric}, k={args.k}, threads={args.threads}")
    print(f"FAISS ran with OPENBLAS_CORETYPE=SKYLAKEX; its search time excludes reading the file")
    print(f"simjob knn-graph (whole command, read + compute + write): {simjob_seconds:8.2f} s")
    print(f"FAISS IndexFlat search k+1, drop self (compute only):    {faiss_seconds:8.2f} s")
    print(f"time ratio simjob / FAISS: {simjob_seconds / faiss_seconds:.3f}  (target <= 0.5)")
    print(f"simjob useful GEMM rate: {useful_flops / simjob_seconds / 1e9:.0f} GFLOP/s = "
          f"{100 * useful_flops / simjob_seconds / 1e9 / ceiling:.0f} % of the measured sgemm ceiling "
          f"({ceiling:.0f} GFLOP/s, {args.threads} threads)")
    print(f"peak memory {peak_mib:.1f} MiB; dataset + output {dataset_mib + output_mib:.1f} MiB "
          f"(ratio {peak_mib / (dataset_mib + output_mib):.2f}); the process's fixed cost on a {200}-row set is "
          f"{baseline_mib:.1f} MiB, so the working set is {peak_mib - baseline_mib:.1f} MiB "
          f"(ratio {(peak_mib - baseline_mib) / (dataset_mib + output_mib):.2f}, target <= 1.2)")
    print(f"neighbour-set agreement with FAISS: {overlap:.5f}")


if __name__ == "__main__":
    main()
