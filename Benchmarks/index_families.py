#!/usr/bin/env python3
"""Index families side by side with their references, on one ann-benchmarks set, in one run.

For each family simjob offers, the reference tool is built and searched on the same data with the
same threads and the same settings, and both are scored by ann-benchmarks' recall@k (a result
counts when its true distance is within the k-th true distance + 1e-3):

  - LSH, Hamming ranking: simjob `train --type lsh --tables T --hash-bits B` searched with
    `--refine R`, against FAISS `IndexRefineFlat(IndexLSH(d, T*B, rotate_data=True,
    train_thresholds=True))` with `k_factor = R` (the same algorithm: T*B-bit signs of random
    projections against per-bit medians, every code ranked by Hamming distance, R*k re-scored).
  - LSH, multi-probe tables: simjob's own mode (`--probes P`); FAISS has no multi-table LSH,
    so it is listed beside the references for the recall it buys, with no ratio.
  - Random-projection trees: simjob `train --type rptrees --trees T` searched with
    `--search-k S`, against Annoy (PyPI `annoy`) with the same T trees (`build(T, n_jobs)`) and
    the same search_k (Annoy's default leaves of d + 2 rows, which simjob's default matches).
    Annoy has no batch search: the queries are split over `--threads` Python threads (its search
    releases the GIL), each query a list prepared before the clock starts.

Build times: simjob's is the `train` command's own measure without reading the file (the
references build from arrays already in memory). Queries per second: the best of `--runs` batch
searches of every test query. Prints one table, the ratios at equal settings, the QPS ratio at
the first setting where both reach recall 0.9, and an SVG plot (recall against QPS per line).

  python3 Benchmarks/index_families.py --data fashion-gt.hdf5 --label Fashion-MNIST --plot out.svg

FAISS runs with OPENBLAS_CORETYPE=SKYLAKEX where the CPU has AVX-512 (its wheel's best kernels
on these machines; see the notes), set before it loads.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import simjob_binary, run  # noqa: E402

import h5py  # noqa: E402
import numpy as np  # noqa: E402

REFERENCE = r"""
import json, sys, time
import h5py, numpy as np, faiss
path, threads, k, runs, nbits, factors = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), json.loads(sys.argv[6])
f = h5py.File(path)
x = f["train"][:].astype("f4"); q = f["test"][:].astype("f4")
if f.attrs["distance"] == "angular":
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-30); q /= np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-30)
faiss.omp_set_num_threads(threads)
started = time.perf_counter()
index = faiss.IndexRefineFlat(faiss.IndexLSH(x.shape[1], nbits, True, True))
index.train(x); index.add(x)
build = time.perf_counter() - started
out = {"build": build, "settings": []}
for factor in factors:
    index.k_factor = factor
    best, ids = 1e30, None
    for _ in range(runs):
        t = time.perf_counter(); _, found = index.search(q, k); elapsed = time.perf_counter() - t
        if elapsed < best: best, ids = elapsed, found
    out["settings"].append({"k_factor": factor, "qps": len(q) / best, "ids": ids.tolist()})
print(json.dumps(out))
"""

ANNOY = r"""
import json, sys, time
from concurrent.futures import ThreadPoolExecutor
import h5py, numpy as np, annoy
path, threads, k, runs, trees, search_ks, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), json.loads(sys.argv[6]), int(sys.argv[7])
f = h5py.File(path)
x = f["train"][:].astype("f4"); q = f["test"][:].astype("f4")
index = annoy.AnnoyIndex(x.shape[1], "angular" if f.attrs["distance"] == "angular" else "euclidean")
if seed > 0: index.set_seed(seed)
for row, vector in enumerate(x): index.add_item(row, vector)
started = time.perf_counter()
index.build(trees, n_jobs=threads)
build = time.perf_counter() - started
queries = [v.tolist() for v in q]
parts = [range(start, len(q), threads) for start in range(threads)]
out = {"build": build, "settings": []}
for search_k in search_ks:
    def part(rows): return [(row, index.get_nns_by_vector(queries[row], k, search_k=search_k)) for row in rows]
    best, ids = 1e30, None
    for _ in range(runs):
        t = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool: found = [r for chunk in pool.map(part, parts) for r in chunk]
        elapsed = time.perf_counter() - t
        if elapsed < best:
            best, ids = elapsed, [None] * len(q)
            for row, result in found: ids[row] = result + [-1] * (k - len(result))
    out["settings"].append({"search_k": search_k, "qps": len(q) / best, "ids": ids})
print(json.dumps(out))
"""


_loaded = {}


def recall(ids, data, k):
    """ann-benchmarks' recall@k: results within the k-th true distance + 1e-3, per query."""
    if data not in _loaded:
        with h5py.File(data) as f:
            _loaded[data] = (f["train"][:].astype("f8"), f["test"][:].astype("f8"), f["distances"][:], f.attrs["distance"])
    x, q, truth, metric = _loaded[data]
    truth = truth[:, :k]
    ids = np.asarray(ids)
    hits = 0
    for row in range(len(q)):
        found = ids[row][ids[row] >= 0]
        if metric == "euclidean":
            d = np.sqrt(((x[found] - q[row]) ** 2).sum(1))
        elif metric == "angular":
            d = 1 - (x[found] @ q[row]) / (np.linalg.norm(x[found], axis=1) * np.linalg.norm(q[row]) + 1e-30)
        else:
            d = -(x[found] @ q[row])
        hits += int((d <= truth[row, k - 1] + 1e-3).sum())
    return hits / (len(q) * k)


def simjob_lsh(simjob, data, work, tables, bits, refines, probes, threads, runs, k):
    index = os.path.join(work, f"lsh-{tables}x{bits}.hdf5")
    # The summary line times the read and the hashing apart.
    summary = subprocess.run([simjob, "train", data, "--type", "lsh", "--tables", str(tables), "--hash-bits", str(bits), "--output", index,
                              "--threads", str(threads), "--quiet"], capture_output=True, text=True, check=True).stdout
    with h5py.File(index) as f:
        total = float(f["index"].attrs["build_seconds"])
    reading = float(summary.split("reading ")[1].split(" s")[0])
    hashing = float(summary.split("hashing ")[1].split(" s")[0])
    report = os.path.join(work, f"lsh-{tables}x{bits}-eval.hdf5")
    results = os.path.join(work, f"results-{tables}x{bits}")
    run([simjob, "evaluate", data, "--index", index, "--k", str(k), "--refine", ",".join(map(str, refines)),
         "--probes", ",".join(map(str, probes)), "--runs", str(runs), "--latency-queries", "0", "--threads", str(threads),
         "--output", report, "--ann-benchmarks-results", results, "--quiet"])
    rows = []
    with h5py.File(report) as f:
        e = f["evaluation"]
        for refine, probe, qps in zip(e["refine"][:], e["probes"][:], e["qps"][:]):
            name = f"probes_{probe}" if probe > 0 else f"hamming_refine_{refine}"
            dataset = os.path.splitext(os.path.basename(data))[0]
            with h5py.File(os.path.join(results, dataset, str(k), "simjob-lsh-batch", name + ".hdf5")) as r:
                ids = r["neighbors"][:]
            rows.append({"refine": int(refine), "probes": int(probe), "qps": float(qps), "recall": recall(ids, data, k)})
    return {"build": hashing, "build_total": total, "read": reading, "rows": rows}


def simjob_rptrees(simjob, data, work, trees, search_ks, threads, runs, k, seed=0):
    index = os.path.join(work, f"rptrees-{trees}.hdf5")
    summary = subprocess.run([simjob, "train", data, "--type", "rptrees", "--trees", str(trees), "--output", index,
                              "--threads", str(threads), "--quiet"] + (["--seed", str(seed)] if seed > 0 else []),
                             capture_output=True, text=True, check=True).stdout
    reading = float(summary.split("reading ")[1].split(" s")[0])
    building = float(summary.split("building ")[1].split(" s")[0])
    report = os.path.join(work, f"rptrees-{trees}-eval.hdf5")
    results = os.path.join(work, f"results-rptrees-{trees}")
    run([simjob, "evaluate", data, "--index", index, "--k", str(k), "--search-k", ",".join(map(str, search_ks)), "--runs", str(runs),
         "--latency-queries", "0", "--threads", str(threads), "--output", report, "--ann-benchmarks-results", results, "--quiet"])
    rows = []
    with h5py.File(report) as f:
        e = f["evaluation"]
        for search_k, qps in zip(e["search_k"][:], e["qps"][:]):
            dataset = os.path.splitext(os.path.basename(data))[0]
            with h5py.File(os.path.join(results, dataset, str(k), "simjob-rptrees-batch", f"search_k_{search_k}.hdf5")) as r:
                ids = r["neighbors"][:]
            rows.append({"search_k": int(search_k), "qps": float(qps), "recall": recall(ids, data, k)})
    return {"build": building, "read": reading, "rows": rows}


def compare(table, lines, name, ours, reference_name, theirs, build, reference_build, dial):
    """Prints the ratios at equal settings and the first setting where both reach recall 0.9."""
    print(f"\n{name} against {reference_name}: build {build:.2f} s against {reference_build:.2f} s ({build / reference_build:.2f}x)")
    reached = None
    for a, b in zip(ours, theirs):
        print(f"  {dial} {a[dial]}: recall {a['recall']:.4f} against {b['recall']:.4f} (difference {a['recall'] - b['recall']:+.4f}), "
              f"QPS {a['qps']:.0f} against {b['qps']:.0f} ({a['qps'] / b['qps']:.2f}x)")
        if reached is None and a["recall"] >= 0.9 and b["recall"] >= 0.9:
            reached = (a, b)
    if reached:
        a, b = reached
        print(f"  first setting where both reach 0.9: {dial} {a[dial]}: {a['qps'] / b['qps']:.2f}x the reference's QPS")
    else:
        print("  no setting where both reach recall 0.9")
    table.append(f"| {name} | build {build:.2f} s | " + " | ".join(f"{dial} {r[dial]}: {r['recall']:.4f} @ {r['qps']:.0f}" for r in ours) + " |")
    table.append(f"| {reference_name} | build {reference_build:.2f} s | " + " | ".join(f"{dial} {r[dial]}: {r['recall']:.4f} @ {r['qps']:.0f}" for r in theirs) + " |")
    lines[name] = [(r["qps"], r["recall"]) for r in ours]
    lines[reference_name] = [(r["qps"], r["recall"]) for r in theirs]


def svg(lines, path, title):
    """Recall (y) against QPS (x, log scale), one polyline per entry of `lines` {label: [(qps, recall)]}."""
    width, height, margin = 640, 420, 60
    points = [p for values in lines.values() for p in values]
    low, high = np.log10(min(p[0] for p in points) * 0.8), np.log10(max(p[0] for p in points) * 1.25)
    bottom = min(0.5, min(p[1] for p in points) - 0.02)
    def px(qps):
        return margin + (np.log10(qps) - low) / (high - low) * (width - 2 * margin)
    def py(value):
        return height - margin - (value - bottom) / (1.0 - bottom) * (height - 2 * margin)
    colours = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
             f'<text x="{width / 2}" y="20" text-anchor="middle">{title}</text>',
             f'<line x1="{margin}" y1="{height - margin}" x2="{width - margin}" y2="{height - margin}" stroke="black"/>',
             f'<line x1="{margin}" y1="{margin}" x2="{margin}" y2="{height - margin}" stroke="black"/>',
             f'<text x="{width / 2}" y="{height - 20}" text-anchor="middle">queries per second (log scale)</text>',
             f'<text x="15" y="{height / 2}" transform="rotate(-90 15 {height / 2})" text-anchor="middle">recall@10</text>']
    for tick in range(int(np.floor(low)), int(np.ceil(high)) + 1):
        for factor in (1, 2, 5):
            value = factor * 10 ** tick
            if low <= np.log10(value) <= high:
                parts.append(f'<text x="{px(value):.1f}" y="{height - margin + 15}" text-anchor="middle">{value:g}</text>')
    for step in np.linspace(bottom, 1.0, 6):
        parts.append(f'<text x="{margin - 5}" y="{py(step) + 4:.1f}" text-anchor="end">{step:.2f}</text>')
    for position, (label, values) in enumerate(lines.items()):
        colour = colours[position % len(colours)]
        ordered = sorted(values)
        parts.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>' % (
            colour, " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in ordered)))
        for a, b in ordered:
            parts.append(f'<circle cx="{px(a):.1f}" cy="{py(b):.1f}" r="3" fill="{colour}"/>')
        parts.append(f'<text x="{width - margin - 200}" y="{margin + 16 * position}" fill="{colour}">{label}</text>')
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="ann-benchmarks file with train, test, neighbors, distances")
    parser.add_argument("--label", default=None)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--lsh", default="16x16", help="simjob LSH tables x bits, ','-separated (the reference gets tables*bits bits)")
    parser.add_argument("--refine", default="10,20,50,100,200", help="refine (k_factor) values")
    parser.add_argument("--probes", default="1,4,16,64", help="simjob multi-probe values")
    parser.add_argument("--rptrees", default="10,50", help="simjob / Annoy trees, ','-separated (empty: skip)")
    parser.add_argument("--search-k", default="100,500,1000,2000,5000,10000,20000", help="search_k values for both")
    parser.add_argument("--families", default="lsh,rptrees", help="which families to run")
    parser.add_argument("--seeds", type=int, default=0,
                        help="RP-trees: build both tools' forests with seeds 1..N and average recall, QPS and build time (0: each tool's default seed)")
    parser.add_argument("--plot", default=None)
    args = parser.parse_args()
    simjob = simjob_binary()
    label = args.label or os.path.basename(args.data)
    refines = [int(v) for v in args.refine.split(",")]
    probes = [int(v) for v in args.probes.split(",")]
    work = tempfile.mkdtemp(prefix="simjob-families-")
    system = run([simjob, "info", "--system", "--sgemm-seconds", "0.2"]).splitlines()
    for line in system[:2]:
        print(line)
    with h5py.File(args.data) as f:
        shape, queries, metric = f["train"].shape, f["test"].shape[0], f.attrs["distance"]
    print(f"{label}: {shape[0]} x {shape[1]}, {queries} queries, {metric}, k={args.k}, {args.threads} threads, best of {args.runs} runs")
    environment = dict(os.environ, OPENBLAS_CORETYPE="SKYLAKEX")
    lines, table = {}, []
    families = args.families.split(",")
    for spec in (args.lsh.split(",") if "lsh" in families else []):
        tables, bits = (int(v) for v in spec.split("x"))
        ours = simjob_lsh(simjob, args.data, work, tables, bits, refines, probes, args.threads, args.runs, args.k)
        reference = json.loads(subprocess.run(
            [sys.executable, "-c", REFERENCE, args.data, str(args.threads), str(args.k), str(args.runs), str(tables * bits), json.dumps(refines)],
            capture_output=True, text=True, check=True, env=environment).stdout)
        theirs = [{"refine": s["k_factor"], "qps": s["qps"], "recall": recall(s["ids"], args.data, args.k)} for s in reference["settings"]]
        hamming = [r for r in ours["rows"] if r["probes"] == 0]
        multiprobe = [r for r in ours["rows"] if r["probes"] > 0]
        compare(table, lines, f"simjob LSH {tables}x{bits} Hamming", hamming, f"FAISS IndexLSH {tables * bits} + RefineFlat", theirs,
                ours["build"], reference["build"], "refine")
        table.append(f"| simjob LSH {tables}x{bits} multi-probe | | "
                     + " | ".join(f"probes {r['probes']}: {r['recall']:.4f} @ {r['qps']:.0f}" for r in multiprobe) + " |")
        lines[f"simjob LSH {tables}x{bits} multi-probe"] = [(r["qps"], r["recall"]) for r in multiprobe]
    search_ks = [int(v) for v in args.search_k.split(",")]
    for trees in ([int(v) for v in args.rptrees.split(",") if v] if "rptrees" in families else []):
        seeds = list(range(1, args.seeds + 1)) or [0]
        ours_runs, theirs_runs, builds, reference_builds = [], [], [], []
        for seed in seeds:
            ours = simjob_rptrees(simjob, args.data, work, trees, search_ks, args.threads, args.runs, args.k, seed)
            reference = json.loads(subprocess.run(
                [sys.executable, "-c", ANNOY, args.data, str(args.threads), str(args.k), str(args.runs), str(trees), json.dumps(search_ks), str(seed)],
                capture_output=True, text=True, check=True).stdout)
            ours_runs.append(ours["rows"])
            theirs_runs.append([{"search_k": s["search_k"], "qps": s["qps"], "recall": recall(s["ids"], args.data, args.k)} for s in reference["settings"]])
            builds.append(ours["build"])
            reference_builds.append(reference["build"])
        def mean(runs):
            return [{"search_k": rows[0]["search_k"], "qps": float(np.mean([r["qps"] for r in rows])), "recall": float(np.mean([r["recall"] for r in rows]))}
                    for rows in zip(*runs)]
        suffix = f", mean of seeds 1-{len(seeds)}" if args.seeds else ""
        compare(table, lines, f"simjob RP-trees {trees} trees{suffix}", mean(ours_runs), f"Annoy {trees} trees{suffix}", mean(theirs_runs),
                float(np.mean(builds)), float(np.mean(reference_builds)), "search_k")
    print("\n| index | build | settings: recall @ QPS |\n|---|---|---|")
    print("\n".join(table))
    if args.plot:
        svg(lines, args.plot, f"{label}: recall@{args.k} against queries per second, {args.threads} threads")
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
