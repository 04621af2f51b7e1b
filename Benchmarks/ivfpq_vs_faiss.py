#!/usr/bin/env python3
"""k-means and IVF-PQ: simjob against FAISS on the same data, threads and machine, in one run.

  1. k-means alone: 262,144 x 128 (the 1M set's first 256k rows), k = 1024, 20 iterations,
     random initialisation, both on every point: time and final objective, each the mean over
     seeds 1, 2 and 3 (one seed's objective differs from another's by about 1 %, for both tools).
  2. IVF-PQ on 1,000,000 x 128 with 10,000 queries (256 clusters, each varying mostly in a random
     16-dimensional subspace, as real embeddings do), nlist = 1024, M = 16, nbits = 8: training
     time (train + encode), recall@10 at nprobe 1, 4, 16, 64, with and without refinement
     (`--refine R` against FAISS's IndexRefineFlat with k_factor R), queries per second.

FAISS's wheel bundles its own OpenBLAS; it runs here with OPENBLAS_CORETYPE=SKYLAKEX (its best
on the reference machine), stated in the output. recall@10 is |returned ids & true ids| / 10
against exact ground truth that simjob writes with `generate` (checked elsewhere against numpy).

Usage: python3 Benchmarks/ivfpq_vs_faiss.py [--n 1000000] [--queries 10000] [--threads 2] [--refine 10]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import run, simjob_binary  # noqa: E402

FAISS_SCRIPT = r"""
import json, sys, time
import faiss, h5py, numpy as np
path, threads, nlist, m, nbits, kmeans_rows, refine = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
probes = [int(p) for p in sys.argv[8].split(",")]
faiss.omp_set_num_threads(threads)
f = h5py.File(path, "r")
x = f["train"][:].astype("float32"); q = f["test"][:].astype("float32"); truth = f["neighbors"][:, :10]
out = {}
# k-means alone, three seeds (the objective varies by about 1 % from seed to seed)
sample = np.ascontiguousarray(x[:kmeans_rows])
seconds, objectives = [], []
for seed in (1, 2, 3):
    km = faiss.Kmeans(x.shape[1], 1024, niter=20, seed=seed, max_points_per_centroid=256, verbose=False)
    t = time.perf_counter(); km.train(sample); seconds.append(time.perf_counter() - t)
    objectives.append(float(km.obj[-1]))
out["kmeans_seconds"] = sum(seconds) / 3
out["kmeans_objective"] = sum(objectives) / 3
# IVF-PQ
quantizer = faiss.IndexFlatL2(x.shape[1])
index = faiss.IndexIVFPQ(quantizer, x.shape[1], nlist, m, nbits)
t = time.perf_counter(); index.train(x); index.add(x); out["train_seconds"] = time.perf_counter() - t
refined = faiss.IndexRefineFlat(index, faiss.swig_ptr(x))
refined.k_factor = refine
def recall(ids):
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, truth)]))
out["runs"] = []
for nprobe in probes:
    index.nprobe = nprobe
    for name, searcher in [("plain", index), ("refine", refined)]:
        best = None
        for _ in range(3):
            t = time.perf_counter(); _, ids = searcher.search(q, 10); seconds = time.perf_counter() - t
            best = seconds if best is None else min(best, seconds)
        out["runs"].append({"nprobe": nprobe, "mode": name, "recall": recall(ids), "qps": len(q) / best})
print(json.dumps(out))
"""



def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--nlist", type=int, default=1024)
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--nbits", type=int, default=8)
    parser.add_argument("--refine", type=int, default=10)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()

    import h5py
    import numpy as np

    simjob = simjob_binary()
    work = args.workdir or tempfile.mkdtemp(prefix="simjob-bench-")
    os.makedirs(work, exist_ok=True)
    data = os.path.join(work, f"ivf-data-{args.n}-{args.queries}-{args.dim}-latent16.hdf5")
    kmeans_rows = min(args.n, 262_144)
    probes = [1, 4, 16, 64]
    threads = ["--threads", str(args.threads), "--quiet"]

    print(run([simjob, "info", "--system"]).strip())
    if not os.path.exists(data):
        run([simjob, "generate", data, "--n", str(args.n), "--queries", str(args.queries), "--dim", str(args.dim),
             "--clusters", "256", "--latent-dim", "16", "--k", "10", "--seed", "3"] + threads)

    # k-means on the first 256k rows: a file of its own so both tools see the same points.
    kmeans_data = os.path.join(work, "kmeans-data.hdf5")
    with h5py.File(data, "r") as source, h5py.File(kmeans_data, "w") as target:
        target["train"] = source["train"][:kmeans_rows]
        target.attrs["distance"] = "euclidean"
    seconds, objectives = [], []
    for seed in (1, 2, 3):
        out = run([simjob, "kmeans", kmeans_data, "--k", "1024", "--iterations", "20", "--seed", str(seed), "--output",
                   os.path.join(work, "kmeans.hdf5")] + threads)
        summary = re.search(r"iterations in ([0-9.]+) s, objective ([0-9.e+]+)", out)
        seconds.append(float(summary.group(1)))
        objectives.append(float(summary.group(2)))
    simjob_kmeans_seconds, simjob_objective = sum(seconds) / 3, sum(objectives) / 3

    index_path = os.path.join(work, "ivf-index.hdf5")
    out = run([simjob, "train", data, "--nlist", str(args.nlist), "--m", str(args.m), "--nbits", str(args.nbits),
               "--output", index_path] + threads)
    print(out.strip())
    timing = re.search(r"in ([0-9.]+) s \(reading ([0-9.]+) s", out)
    simjob_train_seconds, simjob_read_seconds = float(timing.group(1)), float(timing.group(2))

    truth = h5py.File(data, "r")["neighbors"][:, :10]

    def recall(path):
        ids = h5py.File(path, "r")["search/neighbors"][:]
        return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, truth)]))

    ours = []
    result_path = os.path.join(work, "search.hdf5")
    for nprobe in probes:
        for mode, extra in [("plain", []), ("refine", ["--refine", str(args.refine)])]:
            best = None
            for _ in range(3):
                out = run([simjob, "search", index_path, "--queries", data, "--k", "10", "--nprobe", str(nprobe),
                           "--output", result_path] + extra + threads)
                qps = float(re.search(r"([0-9.]+) queries/s", out).group(1))
                best = qps if best is None else max(best, qps)
            ours.append({"nprobe": nprobe, "mode": mode, "recall": recall(result_path), "qps": best})

    env = dict(os.environ, OPENBLAS_CORETYPE="SKYLAKEX", OMP_NUM_THREADS=str(args.threads))
    faiss_out = json.loads(run([sys.executable, "-c", FAISS_SCRIPT, data, str(args.threads), str(args.nlist), str(args.m),
                                str(args.nbits), str(kmeans_rows), str(args.refine), ",".join(map(str, probes))],
                               env=env).strip().splitlines()[-1])

    print()
    print(f"data: {args.n} x {args.dim} euclidean (256 clusters, latent dimension 16), {args.queries} queries; threads={args.threads}; "
          f"FAISS with OPENBLAS_CORETYPE=SKYLAKEX")
    print(f"k-means {kmeans_rows} x {args.dim}, k=1024, 20 iterations, means over seeds 1, 2, 3:")
    print(f"  time      simjob {simjob_kmeans_seconds:7.2f} s   FAISS {faiss_out['kmeans_seconds']:7.2f} s   "
          f"ratio {simjob_kmeans_seconds / faiss_out['kmeans_seconds']:.3f} (target <= 0.9)")
    print(f"  objective simjob {simjob_objective:.6g}   FAISS {faiss_out['kmeans_objective']:.6g}   "
          f"difference {100 * (simjob_objective / faiss_out['kmeans_objective'] - 1):+.3f} % (target within 0.5 %)")
    print(f"IVF-PQ nlist={args.nlist} M={args.m} nbits={args.nbits}:")
    print(f"  train + encode: simjob {simjob_train_seconds:.2f} s including {simjob_read_seconds:.2f} s reading the HDF5 "
          f"file; FAISS {faiss_out['train_seconds']:.2f} s on vectors already in memory")
    print(f"  ratio {simjob_train_seconds / faiss_out['train_seconds']:.3f} whole command, "
          f"{(simjob_train_seconds - simjob_read_seconds) / faiss_out['train_seconds']:.3f} on the same footing "
          f"(target <= 1)")
    print(f"  {'nprobe':>6} {'mode':>7} {'recall simjob':>14} {'recall FAISS':>13} {'diff':>7} {'QPS simjob':>11} {'QPS FAISS':>10} {'QPS ratio':>9}")
    first_refined = None
    for mine, theirs in zip(ours, faiss_out["runs"]):
        ratio = mine["qps"] / theirs["qps"]
        print(f"  {mine['nprobe']:>6} {mine['mode']:>7} {mine['recall']:>14.4f} {theirs['recall']:>13.4f} "
              f"{mine['recall'] - theirs['recall']:>+7.4f} {mine['qps']:>11.0f} {theirs['qps']:>10.0f} {ratio:>9.2f}")
        if mine["mode"] == "refine" and first_refined is None and mine["recall"] >= 0.9:
            first_refined = (mine, theirs)
    if first_refined:
        mine, theirs = first_refined
        print(f"first nprobe with refined recall@10 >= 0.9: {mine['nprobe']}: QPS ratio simjob / FAISS "
              f"{mine['qps'] / theirs['qps']:.2f} (target >= 1.2)")


if __name__ == "__main__":
    main()
