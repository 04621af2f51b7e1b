#!/usr/bin/env python3
"""Exact k-NN graph by product backend: fp32 (OpenBLAS), int8 and bf16 (oneDNN), and FAISS.

For each set, in one run (these machines are noisy, so ratios come from the same minutes):
  1. `simjob info --system`: CPU, BLAS core, and each backend's one-thread rate and auto's choice;
  2. `simjob knn-graph --k K --gemm G` for G in fp32, int8, bf16, whole command timed;
  3. the outputs compared array for array: reduced products must give the fp32 file's ids and
     distances exactly (the run stops with an error otherwise);
  4. FAISS IndexFlat searching the set against itself (k + 1, self dropped), compute only, with
     OPENBLAS_CORETYPE=SKYLAKEX (FAISS's wheel falls back to old kernels otherwise);
  5. ratios to fp32 and to FAISS, pairs re-scored per row, GFLOP/s of useful work (n^2 d: each
     unordered pair once) against each backend's own one-thread rate times the threads;
  6. `simjob kmeans --k 1024 --iterations 5` per backend: seconds per iteration (the median of
     the last four) and whether centroids and assignments are identical to fp32's (objectives
     within 1e-6 relative: fp32 sums the expansion's distances, the others exact ones).

Sets: `synthetic` (200,000 x 128 from `simjob generate`, the issue's set; clustered, easy for
the filter), `hard` (100,000 x 128, 1,000 anisotropic components), and any ann-benchmarks file
given with --file NAME=PATH (Fashion-MNIST 784-d, MiniLM 384-d angular: see make_*.py).

Usage: python3 Benchmarks/gemm_backends.py [--sets synthetic,hard] [--file fashion=/data/f.hdf5]
       [--threads 1,2] [--k 10] [--no-faiss] [--out results.txt]
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
from common import FAISS_SELF_SEARCH as FAISS_SCRIPT, simjob_binary  # noqa: E402




def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="synthetic,hard")
    parser.add_argument("--file", action="append", default=[], help="NAME=PATH of an ann-benchmarks file")
    parser.add_argument("--threads", default="2")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--backends", default="fp32,int8,bf16")
    parser.add_argument("--no-faiss", action="store_true")
    parser.add_argument("--kmeans-k", type=int, default=1024, help="0 skips the k-means runs")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    import h5py
    import numpy as np

    lines = []

    def say(text=""):
        print(text, flush=True)
        lines.append(text)

    simjob = simjob_binary()
    work = args.workdir or tempfile.mkdtemp(prefix="simjob-gemm-")
    os.makedirs(work, exist_ok=True)
    system = subprocess.run([simjob, "info", "--system"], capture_output=True, text=True, check=True).stdout
    for line in system.strip().splitlines():
        say(line)
    rates = {}
    for match in re.finditer(r"d=(\d+): fp32 (\d+), int8 (\d+|unavailable)[^,]*, bf16 (\d+|unavailable|not measured)", system):
        d = int(match.group(1))
        rates[d] = {"fp32": float(match.group(2))}
        for name, value in (("int8", match.group(3)), ("bf16", match.group(4))):
            if value not in ("unavailable", "not measured"):
                rates[d][name] = float(value)

    sets = []
    for name in [s for s in args.sets.split(",") if s]:
        path = os.path.join(work, f"{name}.hdf5")
        if not os.path.exists(path):
            options = ["--n", "200000", "--dim", "128"] if name == "synthetic" else \
                ["--n", "100000", "--dim", "128", "--clusters", "1000", "--anisotropy", "1"]
            subprocess.run([simjob, "generate", path, "--queries", "1", "--k", "0", "--quiet"] + options, check=True)
        sets.append((name, path))
    for item in args.file:
        name, path = item.split("=", 1)
        sets.append((name, path))

    for name, path in sets:
        with h5py.File(path, "r") as f:
            n, d = f["train"].shape
            metric = f.attrs.get("distance", "euclidean")
            metric = metric.decode() if isinstance(metric, bytes) else str(metric)
        metric = {"cosine": "angular", "l2": "euclidean", "dot": "ip"}.get(metric, metric)
        useful = float(n) * n * d
        nearest = min(rates, key=lambda x: abs(x - d)) if rates else None
        for threads in [int(t) for t in args.threads.split(",")]:
            say()
            say(f"{name}: {n} x {d}, {metric}, k={args.k}, {threads} thread(s)")
            say("| backend | seconds | vs fp32 | vs FAISS | re-scored per row | useful GFLOP/s | % of backend rate |")
            say("|---|---:|---:|---:|---:|---:|---:|")
            results = {}
            reference = None
            for backend in args.backends.split(","):
                out_path = os.path.join(work, f"{name}-{backend}.hdf5")
                started = time.perf_counter()
                run = subprocess.run([simjob, "knn-graph", path, "--k", str(args.k), "--output", out_path, "--gemm", backend,
                                      "--threads", str(threads), "--quiet"], capture_output=True, text=True)
                seconds = time.perf_counter() - started
                if run.returncode != 0:
                    say(f"| {backend} | failed: {run.stderr.strip()} | | | | | |")
                    continue
                rescored = float(re.search(r"([0-9.]+) pairs re-scored per row", run.stdout).group(1))
                with h5py.File(out_path, "r") as f:
                    arrays = (f["knn_graph/neighbors"][:], f["knn_graph/distances"][:])
                if reference is None:
                    reference = arrays
                elif not (np.array_equal(arrays[0], reference[0]) and np.array_equal(arrays[1], reference[1])):
                    raise SystemExit(f"{name}: the {backend} graph differs from the fp32 one")
                results[backend] = (seconds, rescored)
            faiss_seconds = None
            if not args.no_faiss:
                env = dict(os.environ, OPENBLAS_CORETYPE="SKYLAKEX", OMP_NUM_THREADS=str(threads))
                done = subprocess.run([sys.executable, "-c", FAISS_SCRIPT, path, str(args.k), str(threads), metric],
                                      capture_output=True, text=True, env=env)
                if done.returncode == 0:
                    faiss_seconds = json.loads(done.stdout.strip().splitlines()[-1])["seconds"]
            base = results.get("fp32", (None,))[0]
            for backend, (seconds, rescored) in results.items():
                rate = useful / seconds / 1e9
                ceiling = rates.get(nearest, {}).get(backend) if nearest else None
                share = f"{100 * rate / (ceiling * threads):.0f} %" if ceiling else "-"
                vs_fp32 = f"{seconds / base:.2f}x" if base else "-"
                vs_faiss = f"{seconds / faiss_seconds:.2f}x" if faiss_seconds else "-"
                say(f"| {backend} | {seconds:.2f} | {vs_fp32} | {vs_faiss} | {rescored:.1f} | {rate:.0f} | {share} |")
            if faiss_seconds:
                say(f"| FAISS IndexFlat (compute only, OPENBLAS_CORETYPE=SKYLAKEX) | {faiss_seconds:.2f} | "
                    f"{faiss_seconds / base:.2f}x | 1.00x | - | {useful * 2 / faiss_seconds / 1e9:.0f} (every pair twice) | - |"
                    if base else f"| FAISS | {faiss_seconds:.2f} | | | | | |")
            say("every backend's graph is identical to fp32's (ids and distances, array for array)")
            if args.kmeans_k <= 0:
                continue
            say()
            say(f"{name}: k-means k={args.kmeans_k}, 5 iterations, {threads} thread(s)")
            say("| backend | s per iteration | vs fp32 | identical to fp32 |")
            say("|---|---:|---:|---|")
            reference_means = None
            base_iteration = None
            for backend in args.backends.split(","):
                out_path = os.path.join(work, f"{name}-kmeans-{backend}.hdf5")
                run = subprocess.run([simjob, "kmeans", path, "--k", str(args.kmeans_k), "--iterations", "5", "--output", out_path,
                                      "--gemm", backend, "--threads", str(threads), "--quiet"], capture_output=True, text=True)
                if run.returncode != 0:
                    say(f"| {backend} | failed: {run.stderr.strip()} | | |")
                    continue
                seconds = sorted(float(line.split()[-1]) for line in run.stdout.splitlines()
                                 if re.match(r"\s+[1-4]\s", line))
                per_iteration = (seconds[1] + seconds[2]) / 2
                with h5py.File(out_path, "r") as f:
                    arrays = [f["kmeans/" + key][:] for key in ("centroids", "assignments", "objective")]
                if reference_means is None:
                    reference_means, base_iteration = arrays, per_iteration
                # Centroids and assignments exactly; fp32 sums the expansion's distances into the
                # objective where int8 and bf16 sum exact ones, so it agrees to 1e-6 relative.
                same = all(np.array_equal(a, b) for a, b in zip(arrays[:2], reference_means[:2]))
                close = np.allclose(arrays[2], reference_means[2], rtol=1e-6, atol=0)
                verdict = "yes" if same and close else ("assignments yes, objective NO" if same else "NO")
                say(f"| {backend} | {per_iteration:.3f} | {per_iteration / base_iteration:.2f}x | {verdict} |")
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
