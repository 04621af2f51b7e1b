"""simjob's OpenBLAS kernel choice against every core forced by hand, in one run.

simjob picks OpenBLAS's core from the CPU's instruction set (and relaunches itself with it).
This measures one-thread sgemm (4096 x 4096 x 128, the engine's tile shape) with simjob's own
choice, with the library's own detection, and with each core the CPU can run forced through
OPENBLAS_CORETYPE (SIMJOB_KEEP_OPENBLAS_CORETYPE=1 keeps it), interleaved over several rounds
(these machines are noisy), and prints simjob's rate as a ratio of the best forced core's.
Target: at least 0.9.
"""
import argparse
import os
import statistics

from common import run, simjob_binary

CORES = ["PRESCOTT", "SANDYBRIDGE", "HASWELL", "ZEN", "SKYLAKEX", "COOPERLAKE", "SAPPHIRERAPIDS"]


def probe(binary, environment, seconds):
    """(loaded core, GFLOP/s) of `simjob info --sgemm-probe` under an environment."""
    out = run([binary, "info", "--sgemm-probe", "--sgemm-seconds", str(seconds)], env=environment)
    fields = dict(part.split("=", 1) for part in out.split())
    return fields["core"], float(fields["gflops"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.5)
    args = parser.parse_args()
    binary = simjob_binary()
    base = {k: v for k, v in os.environ.items() if not k.startswith("SIMJOB_") and k != "OPENBLAS_CORETYPE"}
    print(run([binary, "info", "--system", "--sgemm-seconds", "0.2"], env=base))
    variants = {"simjob's choice": dict(base)}
    library = dict(base, SIMJOB_BLAS_RELAUNCHED="1", OPENBLAS_NUM_THREADS="1")
    variants["library's own detection"] = library
    for core in CORES:
        variants[core] = dict(base, OPENBLAS_CORETYPE=core, SIMJOB_KEEP_OPENBLAS_CORETYPE="1")
    rates = {name: [] for name in variants}
    loaded = {}
    for _ in range(args.rounds):
        for name, environment in variants.items():
            core, gflops = probe(binary, environment, args.seconds)
            loaded[name] = core
            rates[name].append(gflops)
    print(f"one-thread sgemm 4096 x 4096 x 128, median of {args.rounds} interleaved rounds of {args.seconds} s")
    print(f"{'setting':26} {'core loaded':16} {'GFLOP/s':>8}")
    medians = {name: statistics.median(values) for name, values in rates.items()}
    for name in variants:
        print(f"{name:26} {loaded[name]:16} {medians[name]:8.1f}")
    # Only cores the library really loaded count as forced choices (a missing one falls back).
    forced = {n: medians[n] for n in CORES if loaded[n].upper() == n}
    best = max(forced, key=forced.get)
    chosen, library = "simjob's choice", "library's own detection"
    ratio = medians[chosen] / forced[best]
    print(f"simjob's choice ({loaded[chosen]}) / best forced core ({best}): {ratio:.2f} (target >= 0.9)")
    print(f"simjob's choice / library's own detection ({loaded[library]}): {medians[chosen] / medians[library]:.2f}")

if __name__ == "__main__":
    main()
