"""Shards run one after another on one machine: a set larger than the memory limit, every step's
peak memory bounded, the merged outputs equal to one run's, and the rates a cluster plan needs.

    python3 Benchmarks/shard_scale.py [ROWS] [SHARDS] [LIMIT]     (defaults 200000 8 64M)

Generates ROWS x 128 vectors (float32: ROWS * 512 bytes, above LIMIT), then runs one job (exact
k-NN graph k=10, exact dedup, IVF-PQ, approximate graph, fast dedup) twice: once as one run per step, once as SHARDS shards per
step run one after another (`run --prepare`, `run --shard I/N`, then `run` to merge). Every step
gets `memory_limit: LIMIT`. Prints each step's and each shard's time and peak resident memory
(the process's own high-water mark, as simjob measures it), whether the outputs are equal, and
the per-core rates measured, with the CPU and BLAS core named.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time

from common import run, simjob_binary


def main():
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    shards = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    limit = sys.argv[3] if len(sys.argv) > 3 else "64M"
    # The approximate graph and fast dedup keep their state (lists, join sets, cell rankings:
    # about 400 bytes per row here) in memory in the merge, as one run does; only their vectors
    # spill. Their limit is that state plus a little.
    state_limit = f"{max(64, rows * 450 // 2**20 + 32)}M"
    simjob = simjob_binary()
    system = run([simjob, "info", "--system", "--sgemm-seconds", "0.3"])
    cpu = next((line for line in system.splitlines() if line.startswith("CPU")), "CPU: ?")
    core = next((line for line in system.splitlines() if "OpenBLAS" in line), "OpenBLAS: ?")
    threads = os.cpu_count()
    folder = tempfile.mkdtemp(prefix="simjob-shard-scale-")
    job = os.path.join(folder, "job.yaml")
    with open(job, "w") as f:
        f.write(f"""output: out
steps:
  - name: data
    generate: {{n: {rows}, queries: 100, dim: 128, clusters: 1000, anisotropy: 1, duplicates: 0.01, k: 0, seed: 7}}
  - name: graph
    knn_graph: {{input: data, k: 10, memory_limit: {limit}}}
  - name: dups
    dedup: {{input: data, threshold: 0.5, memory_limit: {limit}}}
  - name: index
    train: {{input: data, nlist: 1024, m: 16, memory_limit: {limit}}}
  - name: approx
    knn_graph: {{input: data, k: 10, method: approx, nprobe: 4, rounds: 2, memory_limit: {state_limit}}}
  - name: fastdups
    dedup: {{input: data, threshold: 0.5, mode: fast, memory_limit: {state_limit}}}
""")

    def simjob_run(*arguments):
        started = time.perf_counter()
        result = subprocess.run([simjob, "run", job, *arguments], capture_output=True, text=True, cwd=folder)
        if result.returncode != 0:
            sys.exit(f"simjob run {' '.join(arguments)} failed: {result.stderr[-2000:]}")
        return result.stdout, time.perf_counter() - started

    def memory(text):
        """Peak memory figures of a summary, in MiB."""
        values = []
        for number, unit in re.findall(r"([0-9.]+) (KiB|MiB|GiB)", text):
            values.append(float(number) * {"KiB": 1 / 1024, "MiB": 1, "GiB": 1024}[unit])
        return values

    print(f"{cpu}; {core}; {threads} threads")
    print(f"set: {rows} x 128 float32 = {rows * 512 / 2**20:.0f} MiB; memory limit {limit} ({state_limit} for approx and fastdups); {shards} shards per step")
    one, seconds = simjob_run("--output", "one")
    print("\none run per step:")
    for line in one.splitlines():
        if re.match(r"\s+(graph|dups|index|approx|fastdups)\s", line):
            print("  " + line.strip())

    print("\nshards one after another:")
    table = []
    merge_peaks = {}

    def merges(text):
        """Steps a run merged (a preparation merges the sharded step before it): time, peak."""
        for line in text.splitlines():
            match = re.match(r"\s+(graph|dups|index|approx|fastdups)\s+\S+\s+ran\s+([0-9.]+)s\s+([0-9.]+ [KMG]iB)", line)
            if match:
                merge_peaks[match.group(1)] = (float(match.group(2)), memory(match.group(3))[0])

    for step in ["graph", "dups", "index", "approx", "fastdups"]:
        prepared, prepare_seconds = simjob_run("--prepare", step)
        merges(prepared)
        peaks, times = [], []
        for index in range(shards):
            out, shard_seconds = simjob_run("--step", step, "--shard", f"{index}/{shards}")
            line = out.splitlines()[0]
            peak = re.search(r"peak memory ([0-9.]+ [KMG]iB)", line)
            peaks.append(memory(peak.group(1))[0] if peak else float("nan"))
            times.append(float(re.search(r"ran in ([0-9.]+) s", line).group(1)))
        table.append((step, prepare_seconds, times, peaks))
    merged, merge_seconds = simjob_run()
    merges(merged)
    print("(prepare s: the preparation run, which also merges the sharded step before it)")
    print("| step | prepare s | shards s (sum) | slowest shard s | peak MiB per shard (max) | merge s | merge peak MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for step, prepare_seconds, times, peaks in table:
        merge = merge_peaks.get(step, (float("nan"), float("nan")))
        print(f"| {step} | {prepare_seconds:.1f} | {sum(times):.1f} | {max(times):.1f} | {max(peaks):.0f} | {merge[0]:.1f} | {merge[1]:.0f} |")

    equal = subprocess.run([sys.executable, "-c", r"""
import sys, h5py
for name in ["graph.hdf5", "dups.hdf5", "index.hdf5", "approx.hdf5", "fastdups.hdf5"]:
    a, b = h5py.File(sys.argv[1] + "/one/" + name, "r"), h5py.File(sys.argv[1] + "/out/" + name, "r")
    names = []
    a.visit(lambda n: names.append(n) if isinstance(a[n], h5py.Dataset) else None)
    for n in names:
        if a[n][()].tobytes() != b[n][()].tobytes():
            print("differs:", name, n); sys.exit(1)
print("equal")
""", folder], capture_output=True, text=True)
    print(f"\nmerged outputs vs one run: {equal.stdout.strip() or equal.stderr.strip()}")

    graph_times = table[0][2]
    pairs = rows * rows  # graph shards compute every (i, j), both sides
    print(f"rates: exact graph shards {pairs / sum(graph_times) / threads:.3g} pairs/s per thread "
          f"({2 * 128 * pairs / sum(graph_times) / threads / 1e9:.0f} GFLOP/s per thread); "
          f"dedup shards {rows * rows / 2 / sum(table[1][2]) / threads:.3g} pairs/s per thread; "
          f"encoding {rows / sum(table[2][2]) / threads:.3g} rows/s per thread")
    subprocess.run(["rm", "-rf", folder])


if __name__ == "__main__":
    main()
