#!/usr/bin/env python3
"""Approximate k-NN graph: simjob against PyNNDescent on the same data, threads and machine.

  1. `simjob generate` 200,000 x 128 (256 clusters of latent dimension 16, like real embeddings);
  2. `simjob knn-graph` exact, the truth;
  3. `simjob knn-graph --method approx` at nprobe 2, 4, 8: time and recall (`simjob evaluate
     --graph`, ann-benchmarks' k-nn recall on every row);
  4. PyNNDescent's NNDescent(k + 1) on the same vectors, its neighbor_graph with self dropped:
     time (a first small run compiles numba's code, so the timed run measures the algorithm) and
     recall computed the same way.

Usage: python3 Benchmarks/approx_graph_vs_pynndescent.py [--n 200000] [--dim 128] [--k 10] [--threads 2]
"""
import argparse
import os
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import run, simjob_binary  # noqa: E402

PYNNDESCENT_SCRIPT = r"""
import sys, time
import h5py, numpy as np
import numba
from pynndescent import NNDescent
path, k, threads, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
numba.set_num_threads(threads)
x = h5py.File(path, "r")["train"][:].astype("float32")
NNDescent(x[:2000], n_neighbors=k + 1, random_state=1, n_jobs=threads)  # compile numba code first
t = time.perf_counter()
index = NNDescent(x, n_neighbors=k + 1, random_state=1, n_jobs=threads)
ids, distances = index.neighbor_graph
seconds = time.perf_counter() - t
rows = np.arange(len(x))[:, None]
keep = ids != rows
keep[keep.all(axis=1), k] = False          # self not listed: drop the last column instead
ids = ids[keep].reshape(len(x), k).astype("int32")
distances = distances[keep].reshape(len(x), k).astype("float32")
with h5py.File(out, "w") as f:
    f["knn_graph/neighbors"] = ids
    f["knn_graph/distances"] = distances
    for key, value in h5py.File(sys.argv[5], "r")["knn_graph"].attrs.items():
        f["knn_graph"].attrs[key] = value
print(seconds)
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()

    simjob = simjob_binary()
    work = args.workdir or tempfile.mkdtemp(prefix="simjob-bench-")
    os.makedirs(work, exist_ok=True)
    data = os.path.join(work, f"graph-{args.n}-{args.dim}.hdf5")
    truth = os.path.join(work, "graph-exact.hdf5")
    threads = ["--threads", str(args.threads), "--quiet"]
    run([simjob, "generate", data, "--n", str(args.n), "--queries", "1", "--dim", str(args.dim), "--clusters", "256",
         "--latent-dim", "16", "--k", "0", "--seed", "4"] + threads)
    started = time.perf_counter()
    run([simjob, "knn-graph", data, "--k", str(args.k), "--output", truth] + threads)
    exact_seconds = time.perf_counter() - started

    def recall(graph):
        out = run([simjob, "evaluate", "--graph", graph, "--truth", truth])
        return float(re.search(r": recall ([0-9.]+)", out).group(1))

    rows = []
    for nprobe in (2, 4, 8):
        graph = os.path.join(work, f"graph-approx-{nprobe}.hdf5")
        started = time.perf_counter()
        run([simjob, "knn-graph", data, "--k", str(args.k), "--method", "approx", "--nprobe", str(nprobe), "--output", graph] + threads)
        rows.append((f"simjob approx nprobe={nprobe}", time.perf_counter() - started, recall(graph)))

    graph = os.path.join(work, "graph-pynndescent.hdf5")
    seconds = float(run([sys.executable, "-c", PYNNDESCENT_SCRIPT, data, str(args.k), str(args.threads), graph, truth]).strip().splitlines()[-1])
    rows.append(("PyNNDescent (numba compiled beforehand)", seconds, recall(graph)))

    print(f"data: {args.n} x {args.dim} euclidean (256 clusters, latent dimension 16), k={args.k}, threads={args.threads}")
    print(f"simjob exact graph (the truth): {exact_seconds:.2f} s")
    print(f"{'method':42} {'seconds':>8} {'recall':>8}")
    for name, seconds, value in rows:
        print(f"{name:42} {seconds:8.2f} {value:8.4f}")
    reference = rows[-1]
    for name, seconds, value in rows[:-1]:
        if value >= reference[2]:
            print(f"{name} reaches PyNNDescent's recall in {seconds / reference[1]:.3f} of its time")
            break


if __name__ == "__main__":
    main()
