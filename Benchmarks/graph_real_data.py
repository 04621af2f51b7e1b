#!/usr/bin/env python3
"""k-NN graphs of one set, side by side: simjob's approximate graph against PyNNDescent, FAISS
IVF-Flat searched with every row, and hnswlib built then queried with every row.

Same data, same threads, one run. Every tool's graph is scored the same way: a seeded sample of
rows (default 2,000) gets its exact k nearest other rows from numpy (float64), and a listed
neighbour counts when its true distance is within the k-th true distance + 1e-3 (ann-benchmarks'
k-nn recall; distances recomputed from the vectors, not taken from the tool). Times:

  - simjob: the whole command (read, build, write), wall clock, and its peak resident memory;
  - PyNNDescent: NNDescent plus neighbor_graph, after a small run that compiles numba's code;
  - FAISS: train, add and search of every row (IndexIVFFlat); hnswlib: build plus knn_query.

The Python tools' peak memory is their process's (data included). Prints one table, the ratio of
simjob's time to PyNNDescent's fastest setting that reaches the same recall, and writes a
recall-vs-time SVG beside the table (--plot).

Usage: python3 Benchmarks/graph_real_data.py --data FILE.hdf5 [--label NAME] [--k 10]
       [--threads 2] [--sample 2000] [--plot out.svg] [--skip faiss,hnswlib] [--repeat 3]

With --repeat N every setting of every tool runs N times (the Python tools in one process,
after one warm-up) and the median time is reported: single runs on these machines moved by up
to 25 %.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import load_train, run, simjob_binary  # noqa: E402

# Each reference tool runs in its own process: its time, peak memory and graph of the sampled rows.
TOOL_SCRIPT = r"""
import json, resource, sys, time
import h5py, numpy as np
tool, path, k, threads, setting, rows_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), json.loads(sys.argv[5]), sys.argv[6]
sys.path.insert(0, sys.argv[7])
from common import load_train
x, metric = load_train(path)
rows = np.load(rows_path)
repeat = int(sys.argv[8]) if len(sys.argv) > 8 else 1
if tool == "pynndescent":
    import numba
    from pynndescent import NNDescent
    numba.set_num_threads(threads)
    name = "euclidean" if metric == "euclidean" else ("cosine" if metric == "angular" else "dot")
    NNDescent(x[:3000], metric=name, n_neighbors=setting["n_neighbors"], random_state=1, n_jobs=threads)
    def build():
        index = NNDescent(x, metric=name, n_neighbors=setting["n_neighbors"], random_state=1, n_jobs=threads)
        return index.neighbor_graph[0]
elif tool == "faiss":
    import faiss
    faiss.omp_set_num_threads(threads)
    def build():
        quantizer = faiss.IndexFlatL2(x.shape[1]) if metric != "ip" else faiss.IndexFlatIP(x.shape[1])
        kind = faiss.METRIC_L2 if metric != "ip" else faiss.METRIC_INNER_PRODUCT
        index = faiss.IndexIVFFlat(quantizer, x.shape[1], setting["nlist"], kind)
        index.train(x)
        index.add(x)
        index.nprobe = setting["nprobe"]
        return index.search(x, k + 1)[1]
elif tool == "hnswlib":
    import hnswlib
    space = "l2" if metric == "euclidean" else ("cosine" if metric == "angular" else "ip")
    def build():
        index = hnswlib.Index(space=space, dim=x.shape[1])
        index.init_index(max_elements=len(x), M=setting["M"], ef_construction=setting["ef_construction"], random_seed=1)
        index.set_num_threads(threads)
        index.add_items(x, np.arange(len(x)))
        index.set_ef(setting["ef"])
        return index.knn_query(x, k=k + 1)[0]
# The median of `repeat` timed builds (these machines are noisy); the graph of the last one.
times = []
for _ in range(repeat):
    t = time.perf_counter()
    ids = build()
    times.append(time.perf_counter() - t)
seconds = float(np.median(times))
ids = np.asarray(ids)[rows]
out = []
for row, line in zip(rows, ids):
    line = [int(i) for i in line if i != row and i >= 0][:k]
    out.append(line)
print(json.dumps({"seconds": seconds, "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "ids": out}))
"""


def distances(x, metric, rows, candidates):
    """Distances (float64) of each sampled row to candidate ids, in the metric's reported units."""
    a = x[rows].astype(np.float64)
    b = x[candidates].astype(np.float64)
    if metric == "euclidean":
        squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None] - 2 * a @ b.T
        return np.sqrt(np.maximum(squared, 0))
    if metric == "angular":
        na = a / np.linalg.norm(a, axis=-1, keepdims=True)
        nb = b / np.linalg.norm(b, axis=-1, keepdims=True)
        return 1 - na @ nb.T
    return -(a @ b.T)


def truth(x, metric, rows, k):
    """Exact k-th distance of each sampled row (self excluded), by blocks of the whole set."""
    kth = np.empty(len(rows))
    for start in range(0, len(rows), 256):
        part = rows[start:start + 256]
        scores = []
        for column in range(0, len(x), 20000):
            d = distances(x, metric, part, np.arange(column, min(column + 20000, len(x))))
            scores.append(d)
        d = np.concatenate(scores, axis=1)
        d[np.arange(len(part)), part] = np.inf
        kth[start:start + len(part)] = np.partition(d, k - 1, axis=1)[:, k - 1]
    return kth


def recall(x, metric, rows, kth, ids, k):
    hits = 0
    for i, row in enumerate(rows):
        line = [j for j in ids[i] if j >= 0 and j != row][:k]
        if not line:
            continue
        d = distances(x, metric, np.array([row]), np.array(line))[0]
        hits += int((d <= kth[i] + 1e-3).sum())
    return hits / (len(rows) * k)


def simjob_graph(simjob, data, work, k, threads, options, repeat=1):
    """The median wall time of `repeat` whole commands, their largest peak, the last graph."""
    output = os.path.join(work, "simjob-graph.hdf5")
    times, peaks = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        result = subprocess.run(["/usr/bin/time", "-f", "peak %M", simjob, "knn-graph", data, "--k", str(k), "--method", "approx",
                                 "--output", output, "--threads", str(threads), "--quiet"] + options,
                                capture_output=True, text=True, check=True)
        times.append(time.perf_counter() - started)
        peaks.append(int(re.search(r"peak (\d+)", result.stderr).group(1)) * 1024)
    seconds, peak = float(np.median(times)), max(peaks)
    with h5py.File(output, "r") as f:
        ids = f["knn_graph/neighbors"][:]
        reported = f["knn_graph"].attrs.get("sampled_recall")
    return seconds, peak, ids, result.stdout.strip(), reported


def svg_plot(points, path, title):
    """Recall (y) against seconds (x, log scale) per tool, as a small standalone SVG."""
    width, height, margin = 640, 420, 60
    times = [p[2] for p in points]
    low, high = np.log10(min(times) * 0.8), np.log10(max(times) * 1.25)
    recalls = [p[3] for p in points]
    bottom = min(0.8, min(recalls) - 0.01)
    colours = {"simjob": "#d62728", "PyNNDescent": "#1f77b4", "FAISS IVF-Flat": "#2ca02c", "hnswlib": "#9467bd"}

    def sx(t):
        return margin + (np.log10(t) - low) / (high - low) * (width - 2 * margin)

    def sy(r):
        return height - margin - (r - bottom) / (1 - bottom) * (height - 2 * margin)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{width / 2}" y="20" text-anchor="middle">{title}</text>',
             f'<line x1="{margin}" y1="{height - margin}" x2="{width - margin}" y2="{height - margin}" stroke="black"/>',
             f'<line x1="{margin}" y1="{margin}" x2="{margin}" y2="{height - margin}" stroke="black"/>',
             f'<text x="{width / 2}" y="{height - 15}" text-anchor="middle">seconds (log scale)</text>',
             f'<text x="15" y="{height / 2}" transform="rotate(-90 15 {height / 2})" text-anchor="middle">recall</text>']
    for r in np.linspace(bottom, 1, 5):
        parts.append(f'<text x="{margin - 5}" y="{sy(r) + 4}" text-anchor="end">{r:.3f}</text>')
    for t in sorted(set(round(v, 1) for v in times))[:: max(1, len(times) // 5)]:
        parts.append(f'<text x="{sx(max(t, 1e-3))}" y="{height - margin + 15}" text-anchor="middle">{t:g}</text>')
    for legend, (tool, colour) in enumerate(colours.items()):
        series = sorted((p[2], p[3]) for p in points if p[0] == tool)
        if not series:
            continue
        path_points = " ".join(f"{sx(t):.1f},{sy(r):.1f}" for t, r in series)
        parts.append(f'<polyline points="{path_points}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for t, r in series:
            parts.append(f'<circle cx="{sx(t):.1f}" cy="{sy(r):.1f}" r="3.5" fill="{colour}"/>')
        parts.append(f'<text x="{width - margin - 110}" y="{height - margin - 15 - 16 * legend}" fill="{colour}">{tool}</text>')
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--label", default=None)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sample", type=int, default=2000)
    parser.add_argument("--plot", default=None)
    parser.add_argument("--skip", default="", help="comma-separated: pynndescent, faiss, hnswlib")
    parser.add_argument("--simjob", default="recall=0.95;nprobe=2,rounds=1;nprobe=4,rounds=1;nprobe=4,rounds=2;nprobe=8,rounds=1",
                        help="simjob settings, ';'-separated, each 'key=value,...' (recall=, nprobe=, rounds=, partitions=)")
    parser.add_argument("--nn", default="10,15,20,30", help="PyNNDescent n_neighbors values")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs of every setting; the median is reported")
    args = parser.parse_args()

    simjob = simjob_binary()
    work = tempfile.mkdtemp(prefix="simjob-graph-bench-")
    x, metric = load_train(args.data)
    n, d = x.shape
    rng = np.random.default_rng(7)
    rows = np.sort(rng.choice(n, size=min(args.sample, n), replace=False))
    np.save(os.path.join(work, "rows.npy"), rows)
    kth = truth(x, metric, rows, args.k)
    label = args.label or os.path.basename(args.data)
    skip = set(filter(None, args.skip.split(",")))
    points = []  # (tool, setting, seconds, recall, peak bytes)

    for setting in args.simjob.split(";"):
        options = []
        for pair in setting.split(","):
            key, value = pair.split("=")
            options += [f"--{key.replace('_', '-')}", value]
        seconds, peak, ids, summary, reported = simjob_graph(simjob, args.data, work, args.k, args.threads, options, args.repeat)
        value = recall(x, metric, rows, kth, ids[rows], args.k)
        points.append(("simjob", setting, seconds, value, peak))
        nprobe = re.search(r"nprobe=(\d+), (\d+) rounds", summary)
        if nprobe and "recall" in setting:
            points[-1] = ("simjob", f"{setting} (chose nprobe={nprobe.group(1)}, rounds={nprobe.group(2)})", seconds, value, peak)

    references = []
    if "pynndescent" not in skip:
        references += [("PyNNDescent", "pynndescent", {"n_neighbors": int(v)}) for v in args.nn.split(",")]
    if "faiss" not in skip:
        nlist = max(16, int(4 * np.sqrt(n)))
        references += [("FAISS IVF-Flat", "faiss", {"nlist": nlist, "nprobe": p}) for p in (4, 8, 16)]
    if "hnswlib" not in skip:
        references += [("hnswlib", "hnswlib", {"M": 16, "ef_construction": 100, "ef": ef}) for ef in (20, 40)]
    environment = dict(os.environ, OPENBLAS_CORETYPE=os.environ.get("BENCH_REFERENCE_CORETYPE", "SKYLAKEX"))
    for tool, key, setting in references:
        result = subprocess.run([sys.executable, "-c", TOOL_SCRIPT, key, args.data, str(args.k), str(args.threads), json.dumps(setting),
                                 os.path.join(work, "rows.npy"), os.path.dirname(os.path.abspath(__file__)), str(args.repeat)],
                                capture_output=True, text=True, env=environment)
        if result.returncode != 0:
            print(f"{tool} {setting}: failed: {result.stderr.strip().splitlines()[-1] if result.stderr.strip() else result.returncode}")
            continue
        measured = json.loads(result.stdout.strip().splitlines()[-1])
        value = recall(x, metric, rows, kth, measured["ids"], args.k)
        points.append((tool, ", ".join(f"{a}={b}" for a, b in setting.items()), measured["seconds"], value, measured["peak"]))

    system = run([simjob, "info", "--system", "--sgemm-seconds", "0.2"]).splitlines()
    print(system[0])
    print(next(line for line in system if line.startswith("OpenBLAS")))
    print(f"{label}: {n} x {d}, {metric}, k={args.k}, {args.threads} threads, recall on {len(rows)} sampled rows"
          + (f", median of {args.repeat} timed runs each" if args.repeat > 1 else ""))
    print(f"| tool | setting | seconds | recall | peak MiB |")
    print(f"|---|---|---:|---:|---:|")
    for tool, setting, seconds, value, peak in points:
        print(f"| {tool} | {setting} | {seconds:.2f} | {value:.4f} | {peak / 2 ** 20:.0f} |")
    nn = [p for p in points if p[0] == "PyNNDescent"]
    for tool, setting, seconds, value, _ in points:
        if tool != "simjob":
            continue
        reaching = [p for p in nn if p[3] >= value]
        if reaching:
            best = min(reaching, key=lambda p: p[2])
            print(f"simjob {setting}: recall {value:.4f} in {seconds / best[2]:.2f}x the time of PyNNDescent's fastest setting reaching it ({best[1]}, {best[3]:.4f})")
        elif nn:
            print(f"simjob {setting}: recall {value:.4f}, above every PyNNDescent setting measured")
    if args.plot:
        svg_plot(points, args.plot, f"{label}: recall vs time, k={args.k}, {args.threads} threads")
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
