"""Shared helpers of the benchmark scripts: the simjob binary and running commands."""
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def simjob_binary():
    """The release build of simjob, built first if missing."""
    path = os.path.join(ROOT, ".build", "release", "simjob")
    if not os.path.exists(path):
        subprocess.run(["swift", "build", "-c", "release", "--package-path", ROOT], check=True)
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
