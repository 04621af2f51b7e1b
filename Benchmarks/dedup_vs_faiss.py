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

With --data FILE (an ann-benchmarks file, euclidean or angular) the set is that file's `train`
instead of a generated one; for angular the threshold is 1 - cos (FAISS searches the unit
vectors with the L2 radius 2 T). --fast adds options to the fast mode (e.g. "--nprobe 4").

Usage: python3 Benchmarks/dedup_vs_faiss.py [--n 200000] [--dim 96] [--threshold 0.2] [--threads 2]
       [--data FILE.hdf5] [--fast "--nprobe 4"] [--nlist 1024]
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
from common import load_train, run, simjob_binary  # noqa: E402

FAISS_SCRIPT = r"""
import json, sys, time
import faiss, numpy as np
path, threshold, threads, pairs_path, nlist, here = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), sys.argv[6]
faiss.omp_set_num_threads(threads)
sys.path.insert(0, here)
from common import load_train
x, metric = load_train(path)
angular = metric == "angular"
radius = 2 * threshold if angular else threshold * threshold  # FAISS's L2 radius is squared
truth = set(map(tuple, np.load(pairs_path)))
out = []
for nprobe in (1, 2, 4, 8, 16, 32):
    t = time.perf_counter()
    quantizer = faiss.IndexFlatL2(x.shape[1])
    index = faiss.IndexIVFFlat(quantizer, x.shape[1], nlist)
    index.train(x)
    index.add(x)
    index.nprobe = nprobe
    lims, distances, ids = index.range_search(x, radius)
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
    import numpy as np
    x, metric = load_train(path)
    angular = metric == "angular"
    radius = 2 * threshold if angular else threshold * threshold
    norms = (x * x).sum(1)
    pairs = []
    block = 4096
    for start in range(0, len(x), block):
        end = min(start + block, len(x))
        # squared distances by GEMM; candidates within a generous margin are checked exactly
        d2 = norms[start:end, None] + norms[None, start:] - 2 * (x[start:end] @ x[start:].T)
        rows, cols = np.nonzero(d2 <= radius * 1.01 + 1e-3)
        rows, cols = rows + start, cols + start
        keep = rows < cols
        rows, cols = rows[keep], cols[keep]
        a, b = x[rows].astype("f8"), x[cols].astype("f8")
        if angular:
            exact = 1 - (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        else:
            exact = np.linalg.norm(a - b, axis=1)
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
    parser.add_argument("--data", default=None, help="an ann-benchmarks file to use instead of generated data")
    parser.add_argument("--fast", default="", help="extra options of the fast mode, e.g. '--nprobe 4'")
    parser.add_argument("--nlist", type=int, default=1024)
    args = parser.parse_args()

    import h5py
    import numpy as np

    simjob = simjob_binary()
    work = args.workdir or tempfile.mkdtemp(prefix="simjob-bench-")
    os.makedirs(work, exist_ok=True)
    threads = ["--threads", str(args.threads), "--quiet"]
    if args.data:
        data = args.data
    else:
        data = os.path.join(work, f"dedup-{args.n}-{args.dim}.hdf5")
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
        extra = args.fast.split() if mode == "fast" else []
        out = run([simjob, "dedup", data, "--threshold", str(args.threshold), "--mode", mode, "--write-pairs",
                   "--output", out_path] + extra + threads)
        command_seconds = time.perf_counter() - started
        join_seconds = float(re.search(r"rows in ([0-9.]+) s", out).group(1))
        pairs = set(map(tuple, h5py.File(out_path, "r")["dedup/pairs"][:].tolist()))
        results[mode] = {"join": join_seconds, "command": command_seconds,
                         "recall": len(pairs & truth_set) / max(len(truth_set), 1), "extra": len(pairs - truth_set)}

    env = dict(os.environ, OPENBLAS_CORETYPE="SKYLAKEX", OMP_NUM_THREADS=str(args.threads))
    faiss_runs = json.loads(run([sys.executable, "-c", FAISS_SCRIPT, data, str(args.threshold), str(args.threads), truth_path, str(args.nlist),
                                 os.path.dirname(os.path.abspath(__file__))],
                                env=env).strip().splitlines()[-1])
    reached = [r for r in faiss_runs if r["recall"] >= 0.9995]

    system = run([simjob, "info", "--system", "--sgemm-seconds", "0.2"]).splitlines()
    print(system[0])
    print(next(line for line in system if line.startswith("OpenBLAS")))
    with h5py.File(data, "r") as f:
        shape, metric = f["train"].shape, f.attrs.get("distance", "euclidean")
        planted = int((f["dup_group"][:] >= 0).sum()) if "dup_group" in f else None
    what = f"{planted} planted rows in groups" if planted is not None else os.path.basename(data)
    print(f"data: {shape[0]} x {shape[1]} ({what}), threshold {args.threshold} ({metric}), threads={args.threads}; "
          f"fast mode options '{args.fast}'; FAISS IVF{args.nlist} with OPENBLAS_CORETYPE=SKYLAKEX")
    print(f"numpy brute force: {len(truth_set)} pairs in {numpy_seconds:.1f} s")
    for mode in ("exact", "fast"):
        r = results[mode]
        print(f"simjob {mode:5}: pair recall {r['recall']:.5f} ({r['extra']} pairs numpy did not find), "
              f"join {r['join']:.2f} s, whole command {r['command']:.2f} s")
    for r in faiss_runs:
        print(f"FAISS IVF{args.nlist} nprobe={r['nprobe']:>2}: pair recall {r['recall']:.5f}, train + add + range_search {r['seconds']:.2f} s")
    if reached:
        best = reached[0]
        print(f"fast mode vs FAISS at recall >= 0.9995 (nprobe={best['nprobe']}): "
              f"time ratio {results['fast']['join'] / best['seconds']:.3f} (target <= 0.5); "
              f"whole command {results['fast']['command'] / best['seconds']:.3f}")
    else:
        print("FAISS did not reach pair recall 0.9995 up to nprobe 32")


if __name__ == "__main__":
    main()
