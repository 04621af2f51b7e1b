"""Shared helpers of the benchmark scripts: the simjob binary and running commands."""
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def simjob_binary():
    """The release build of simjob, built first if missing."""
    path = os.path.join(ROOT, ".build", "release", "simjob")
    if not os.path.exists(path):
        subprocess.run(["swift", "build", "-c", "release", "--static-swift-stdlib", "--package-path", ROOT], check=True)
    return path


def run(command, **kwargs):
    """Runs a command, failing loudly, and returns its standard output."""
    return subprocess.run(command, capture_output=True, text=True, check=True, **kwargs).stdout


def load_train(path):
    """The `train` vectors of an ann-benchmarks file as float32 and its metric (the `distance`
    attribute, euclidean when absent); angular sets come back normalised to unit length."""
    import h5py
    import numpy as np
    with h5py.File(path, "r") as f:
        x = f["train"][:].astype(np.float32)
        metric = f.attrs.get("distance", "euclidean")
    metric = metric.decode() if isinstance(metric, bytes) else str(metric)
    if metric == "angular":
        x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-30)
    return x, metric


# FAISS IndexFlat searching an ann-benchmarks file's train set against itself (k + 1 neighbours),
# compute only; prints {"seconds": ...}. Arguments: path, k, threads, metric, and optionally a
# .npy path that receives the ids with self dropped (the row's own id where listed, else the
# last column). Run it with OPENBLAS_CORETYPE set (FAISS's wheel picks old kernels otherwise).
FAISS_SELF_SEARCH = r"""
import json, sys, time
import faiss, h5py, numpy as np
path, k, threads, metric = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
faiss.omp_set_num_threads(threads)
x = h5py.File(path, "r")["train"][:].astype("float32")
started = time.perf_counter()
if metric == "angular":
    faiss.normalize_L2(x)
index = faiss.IndexFlatIP(x.shape[1]) if metric in ("angular", "ip") else faiss.IndexFlatL2(x.shape[1])
index.add(x)
distances, ids = index.search(x, k + 1)
if len(sys.argv) > 5:
    rows = np.arange(x.shape[0])[:, None]
    is_self = ids == rows
    keep = ~is_self
    keep[~is_self.any(axis=1), k] = False
    ids = ids[keep].reshape(x.shape[0], k)
seconds = time.perf_counter() - started
if len(sys.argv) > 5:
    np.save(sys.argv[5], ids)
print(json.dumps({"seconds": seconds}))
"""
