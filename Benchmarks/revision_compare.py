"""Same-run timings of this checkout's simjob against another revision's, for refactors.

Builds REV (default: the previous commit) in a git worktree under .build-compare/, generates one
dataset, then times the same commands with both binaries, alternating over several rounds
(these machines are noisy), and prints each command's median time and the ratio
this / REV. A refactor that keeps behaviour should keep every ratio near 1. Each command's
output datasets from both binaries are then compared value for value (h5py): "same" or where
they differ.
"""
import argparse
import os
import statistics
import subprocess
import time

from common import ROOT, run, simjob_binary


def build_revision(revision):
    folder = os.path.join(ROOT, ".build-compare", revision.replace("/", "_"))
    if not os.path.exists(folder):
        subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", folder, revision], check=True,
                       stdout=subprocess.DEVNULL)
    subprocess.run(["swift", "build", "-c", "release", "--package-path", folder], check=True, stdout=subprocess.DEVNULL)
    return os.path.join(folder, ".build", "release", "simjob")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", default="HEAD~1", help="revision to compare with")
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    base_revision = run(["git", "-C", ROOT, "rev-parse", "--short", args.base]).strip()
    new, old = simjob_binary(), build_revision(base_revision)
    work = os.path.join(ROOT, "out", "revision-compare")
    os.makedirs(work, exist_ok=True)
    data = os.path.join(work, "data.hdf5")
    run([new, "generate", data, "--n", str(args.n), "--queries", "1000", "--dim", str(args.dim), "--clusters", "256",
         "--latent-dim", "16", "--duplicates", "0.05", "--k", "10", "--quiet"])
    index = os.path.join(work, "index.hdf5")
    threads = ["--threads", str(args.threads), "--quiet"]
    commands = {
        "knn-graph exact": ["knn-graph", data, "--k", "10", "--output", os.path.join(work, "g.hdf5")],
        "knn-graph approx": ["knn-graph", data, "--k", "10", "--method", "approx", "--nprobe", "4", "--output", os.path.join(work, "a.hdf5")],
        "dedup fast": ["dedup", data, "--threshold", "0.2", "--mode", "fast", "--output", os.path.join(work, "d.hdf5")],
        "train": ["train", data, "--nlist", "1024", "--m", "16", "--output", index],
        "search": ["search", index, "--queries", data, "--k", "10", "--nprobe", "16", "--refine", "10", "--output", os.path.join(work, "s.hdf5")],
        "groundtruth": ["groundtruth", data, "--k", "100", "--output", os.path.join(work, "t.hdf5")],
    }
    times = {name: {"new": [], "old": []} for name in commands}
    for _ in range(args.rounds):
        for name, command in commands.items():
            for label, binary in (("old", old), ("new", new)):
                started = time.perf_counter()
                subprocess.run([binary] + command + threads, check=True, stdout=subprocess.DEVNULL)
                times[name][label].append(time.perf_counter() - started)
    print_times(new, base_revision, args, times)
    print("outputs (every dataset, value for value):")
    for name, command in commands.items():
        output = command[command.index("--output") + 1]
        old_output = output.replace(".hdf5", ".old.hdf5")
        old_command = [old_output if part == output else part for part in command]
        subprocess.run([old] + old_command + threads, check=True, stdout=subprocess.DEVNULL)
        print(f"  {name:18} {compare_outputs(output, old_output)}")


def compare_outputs(a, b):
    """'same' when both files hold the same datasets with equal values, else the first difference."""
    import h5py
    import numpy as np
    found = []
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        fa.visititems(lambda name, item: found.append(name) if isinstance(item, h5py.Dataset) else None)
        for name in found:
            if name not in fb:
                return f"{name} missing in the other revision's output"
            x, y = fa[name][()], fb[name][()]
            if x.shape != y.shape or not np.array_equal(x, y):
                return f"{name} differs"
    return f"same ({len(found)} datasets)"


def print_times(new, base_revision, args, times):
    system = run([new, "info", "--system", "--sgemm-seconds", "0.2"]).splitlines()
    print(system[0])
    print(next(line for line in system if line.startswith("OpenBLAS")))
    print(f"{args.n} x {args.dim}, {args.threads} threads, median of {args.rounds} alternating rounds; this checkout vs {base_revision}")
    print(f"{'command':18} {'this (s)':>9} {base_revision + ' (s)':>12} {'ratio':>7}")
    for name, measured in times.items():
        a, b = statistics.median(measured["new"]), statistics.median(measured["old"])
        print(f"{name:18} {a:9.2f} {b:12.2f} {a / b:7.2f}")


if __name__ == "__main__":
    main()
