#!/usr/bin/env python3
"""simjob's HNSW (built from its exact k-NN graph) against hnswlib built from scratch, on one
ann-benchmarks file, same threads, one run.

Build: simjob's whole `train --type hnsw` command (read, its own approximate M-NN graph, layers,
write; with `--graph exact`, an exact 2M-NN graph by `knn-graph` first, timed too)
against hnswlib's `add_items` alone (M = 16, ef_construction = 200). Search: every ef of the
sweep, each tool's own search of its own index, and hnswlib's search of simjob's exported
index (`export --format hnswlib`), which must return simjob's neighbours. Recall is k-nn
recall@10 by ids against the file's ground truth; QPS is the whole query batch, best of 3.

    python3 Benchmarks/hnsw_vs_hnswlib.py DATA.hdf5 [--threads 2] [--m 16] [--ef 16,32,64,128]
"""
import argparse
import os
import platform
import subprocess
import tempfile
import time

import h5py
import numpy as np

from common import simjob_binary


def recall(found, truth, k=10):
    return float(np.mean([len(set(a[:k]) & set(b[:k])) / k for a, b in zip(found, truth)]))


def cpu_name():
    with open("/proc/cpuinfo") as f:
        fields = {k.strip(): v for k, v in (line.split(":", 1) for line in f if ":" in line)}
    return " ".join(fields.get("model name", "?").split()) + f" (family {fields.get('cpu family', '?').strip()} model {fields.get('model', '?').strip()})"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("data")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--ef", default="16,32,64,128")
    parser.add_argument("--graph", choices=["own", "exact"], default="own",
                        help="own: train builds its own graph (approximate M-NN above 4,096 x M rows); exact: knn-graph --k 2M first, timed with the build")
    args = parser.parse_args()
    import hnswlib

    efs = [int(v) for v in args.ef.split(",")]
    simjob = simjob_binary()
    with h5py.File(args.data, "r") as f:
        x = f["train"][:].astype(np.float32)
        q = f["test"][:].astype(np.float32)
        truth = f["neighbors"][:, :10]
        metric = f.attrs.get("distance", "euclidean")
        metric = metric.decode() if isinstance(metric, bytes) else str(metric)
    space = {"euclidean": "l2", "angular": "cosine", "ip": "ip"}[metric]
    print(f"# {os.path.basename(args.data)}: {x.shape[0]} x {x.shape[1]}, {len(q)} queries, {metric}; "
          f"{args.threads} threads, M = {args.m}, simjob's graph {args.graph}; CPU {cpu_name()}; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")

    with tempfile.TemporaryDirectory() as folder:
        index = os.path.join(folder, "hnsw.hdf5")
        started = time.perf_counter()
        extra = []
        if args.graph == "exact":
            graph = os.path.join(folder, "graph.hdf5")
            subprocess.run([simjob, "knn-graph", args.data, "--k", str(2 * args.m), "--threads", str(args.threads),
                            "--output", graph, "--quiet"], check=True, capture_output=True)
            extra = ["--graph", graph]
        subprocess.run([simjob, "train", args.data, "--type", "hnsw", "--m", str(args.m), "--threads", str(args.threads),
                        "--output", index, "--quiet"] + extra, check=True, capture_output=True)
        simjob_build = time.perf_counter() - started
        exported = os.path.join(folder, "hnsw.bin")
        subprocess.run([simjob, "export", index, "--format", "hnswlib", "--output", exported], check=True, capture_output=True)

        reference = hnswlib.Index(space=space, dim=x.shape[1])
        reference.init_index(max_elements=len(x), ef_construction=200, M=args.m, random_seed=100)
        reference.set_num_threads(args.threads)
        started = time.perf_counter()
        reference.add_items(x)
        hnswlib_build = time.perf_counter() - started
        import faiss
        faiss.omp_set_num_threads(args.threads)
        faiss_metric = faiss.METRIC_INNER_PRODUCT if metric == "ip" else faiss.METRIC_L2
        xf = x.copy()
        if metric == "angular":
            faiss.normalize_L2(xf)
        flat = faiss.IndexHNSWFlat(x.shape[1], args.m, faiss_metric)
        flat.hnsw.efConstruction = 200
        started = time.perf_counter()
        flat.add(xf)
        faiss_build = time.perf_counter() - started
        qf = q.copy()
        if metric == "angular":
            faiss.normalize_L2(qf)
        loaded = hnswlib.Index(space=space, dim=x.shape[1])
        loaded.load_index(exported)
        loaded.set_num_threads(args.threads)

        print(f"build: simjob {simjob_build:.2f} s (whole commands), hnswlib {hnswlib_build:.2f} s (add_items): "
              f"ratio {simjob_build / hnswlib_build:.2f}x; FAISS IndexHNSWFlat {faiss_build:.2f} s (add): ratio {simjob_build / faiss_build:.2f}x")
        print("   ef | simjob recall   QPS      | hnswlib recall  QPS      | QPS ratio | export searched by hnswlib: same ids | FAISS HNSWFlat recall  QPS")
        for ef in efs:
            out = os.path.join(folder, f"s{ef}.hdf5")
            best = None
            for _ in range(3):
                result = subprocess.run([simjob, "search", index, "--queries", args.data, "--k", "10", "--ef", str(ef),
                                         "--threads", str(args.threads), "--output", out, "--quiet"], check=True, capture_output=True, text=True)
                with h5py.File(out, "r") as f:
                    qps = float(f["search"].attrs["queries_per_second"])
                best = qps if best is None else max(best, qps)
            with h5py.File(out, "r") as f:
                ours = f["search/neighbors"][:]
            reference.set_ef(ef)
            times = []
            for _ in range(3):
                started = time.perf_counter()
                theirs, _ = reference.knn_query(q, k=10)
                times.append(time.perf_counter() - started)
            their_qps = len(q) / min(times)
            loaded.set_ef(ef)
            again, _ = loaded.knn_query(q, k=10)
            same = float((again == ours).all(1).mean())
            flat.hnsw.efSearch = ef
            times = []
            for _ in range(3):
                started = time.perf_counter()
                _, found = flat.search(qf, 10)
                times.append(time.perf_counter() - started)
            print(f"{ef:5d} | {recall(ours, truth):.4f}  {best:9.0f} | {recall(theirs, truth):.4f}  {their_qps:9.0f} | "
                  f"{best / their_qps:8.2f}x | {same:.4f} | {recall(found, truth):.4f}  {len(q) / min(times):9.0f}")
    print(f"# python {platform.python_version()}, hnswlib {getattr(hnswlib, '__version__', '?')}")


if __name__ == "__main__":
    main()
