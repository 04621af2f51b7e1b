#!/usr/bin/env python3
"""Deduplication: simjob's exact and fast modes against a numpy brute force and FAISS, in one run.

  1. `simjob generate` 200,000 x 96 with 5 % planted near-duplicates (`--duplicates 0.05`);
  2. numpy brute force (float32 GEMM by blocks, then exact float64 distances for the candidates):
     every pair within the threshold;
  3. `simjob dedup --mode exact`: must find every numpy pair;
  4. `simjob dedup --mode fast`: pair recall against the numpy pairs, and time;
  5. FAISS IndexIVFFlat (nlist = 1024) + range_search with nprobe 1, 2, 4, ...: the fastest
     setting whose pair recall reaches 0.9995, timed train + add + range_search.

Times compare the joins: simjob's own `dedup ... in X s` (vectors in memory, as FAISS's are),
and its whole command for reference. FAISS runs with OPENBLAS_CORETYPE=SKYLAKEX, same threads.

Usage: python3 Benchmarks/dedup_vs_faiss.py [--n 200000] [--dim 96] [--threshold 0.2] [--threads 2]
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
from common import run, simjob_binary  # noqa: E402

FAISS_SCRIPT = r"""
import json, sys, time
import faiss, h5py, numpy as np
path, threshold, threads, pairs_path = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
faiss.omp_set_num_threads(threads)
x = h5py.File(path, "r")["train"][:].astype("float32")
truth = set(map(tuple, np.load(pairs_path)))
out = []
for nprobe in (1, 2, 4, 8, 16, 32):
    t = time.perf_counter()
    quantizer = faiss.IndexFlatL2(x.shape[1])
    index = faiss.IndexIVFFlat(quantizer, x.shape[1], 1024)
    index.train(x)
    index.add(x)
    index.nprobe = nprobe
    lims, distances, ids = index.range_search(x, threshold * threshold)  # FAISS L2 radius is squared
    seconds = time.perf_counter() - t
    rows = np.repeat(np.arange(len(x)), np.diff(lims).astype(np.int64))
    keep = rows < ids
    found = set(zip(rows[keep].tolist(), ids[keep].tolist()))
    recall = len(found & truth) / max(len(truth), 1)
    out.append({"nprobe": nprobe, "seconds": seconds, "recall": recall})
    if recall >= 0.9995:
        break
print(json.dumps(out))
"""



def numpy_pairs(path, threshold):
    import h5py
    import numpy as np
    x = h5py.File(path, "r")["train"][:].astype("float32")
    norms = (x * x).sum(1)
    pairs = []
    block = 4096
    for start in range(0, len(x), block):
        end = min(start + block, len(x))
        # squared distances by GEMM; candidates within a generous margin are checked exactly
        d2 = norms[start:end, None] + norms[None, start:] - 2 * (x[start:end] @ x[start:].T)
        rows, cols = np.nonzero(d2 <= threshold * threshold * 1.01 + 1e-3)
        rows, cols = rows + start, cols + start
        keep = rows < cols
        rows, cols = rows[keep], cols[keep]
        exact = np.linalg.norm(x[rows].astype("f8") - x[cols].astype("f8"), axis=1)
        sel = exact <= threshold
        pairs.append(np.stack([rows[sel], cols[sel]], 1))
    return np.concatenate(pairs) if pairs else np.zeros((0, 2), dtype=int)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=96)
    parser.add_argument("--duplicates", type=float, default=0.05)
    parser.add_argument("--threshold", type=float, default=0.2)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()

    import h5py
    import numpy as np

    simjob = simjob_binary()
    work = args.workdir or tempfile.mkdtemp(prefix="simjob-bench-")
    os.makedirs(work, exist_ok=True)
    data = os.path.join(work, f"dedup-{args.n}-{args.dim}.hdf5")
    threads = ["--threads", str(args.threads), "--quiet"]
    run([simjob, "generate", data, "--n", str(args.n), "--queries", "1", "--dim", str(args.dim),
         "--duplicates", str(args.duplicates), "--k", "0", "--seed", "5"] + threads)

    started = time.perf_counter()
    truth = numpy_pairs(data, args.threshold)
    numpy_seconds = time.perf_counter() - started
    truth_path = os.path.join(work, "numpy-pairs.npy")
    np.save(truth_path, truth)
    truth_set = set(map(tuple, truth.tolist()))

    results = {}
    for mode in ("exact", "fast"):
        out_path = os.path.join(work, f"dedup-{mode}.hdf5")
        started = time.perf_counter()
        out = run([simjob, "dedup", data, "--threshold", str(args.threshold), "--mode", mode, "--write-pairs",
                   "--output", out_path] + threads)
        command_seconds = time.perf_counter() - started
        join_seconds = float(re.search(r"rows in ([0-9.]+) s", out).group(1))
        pairs = set(map(tuple, h5py.File(out_path, "r")["dedup/pairs"][:].tolist()))
        results[mode] = {"join": join_seconds, "command": command_seconds,
                         "recall": len(pairs & truth_set) / max(len(truth_set), 1), "extra": len(pairs - truth_set)}

    env = dict(os.environ, OPENBLAS_CORETYPE="SKYLAKEX", OMP_NUM_THREADS=str(args.threads))
    faiss_runs = json.loads(run([sys.executable, "-c", FAISS_SCRIPT, data, str(args.threshold), str(args.threads), truth_path],
                                env=env).strip().splitlines()[-1])
    reached = [r for r in faiss_runs if r["recall"] >= 0.9995]

    planted = int((h5py.File(data, "r")["dup_group"][:] >= 0).sum())
    print(f"data: {args.n} x {args.dim}, {args.duplicates:.0%} planted near-duplicates ({planted} rows in groups), "
          f"threshold {args.threshold} (euclidean), threads={args.threads}; FAISS with OPENBLAS_CORETYPE=SKYLAKEX")
    print(f"numpy brute force: {len(truth_set)} pairs in {numpy_seconds:.1f} s")
    for mode in ("exact", "fast"):
        r = results[mode]
        print(f"simjob {mode:5}: pair recall {r['recall']:.5f} ({r['extra']} pairs numpy did not find), "
              f"join {r['join']:.2f} s, whole command {r['command']:.2f} s")
    for r in faiss_runs:
        print(f"FAISS IVF1024 nprobe={r['nprobe']:>2}: pair recall {r['recall']:.5f}, train + add + range_search {r['seconds']:.2f} s")
    if reached:
        best = reached[0]
        print(f"fast mode vs FAISS at recall >= 0.9995 (nprobe={best['nprobe']}): "
              f"time ratio {results['fast']['join'] / best['seconds']:.3f} (target <= 0.5); "
              f"whole command {results['fast']['command'] / best['seconds']:.3f}")
    else:
        print("FAISS did not reach pair recall 0.9995 up to nprobe 32")


if __name__ == "__main__":
    main()
