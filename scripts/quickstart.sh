#!/usr/bin/env bash
# The quickstart: a synthetic dataset made on the spot, its exact ground truth and k-NN graph,
# and a report of what was written. Outputs go to the folder given (default: out/).
set -euo pipefail
out=${1:-out}
mkdir -p "$out"
simjob=.build/release/simjob

echo "== simjob system check"
"$simjob" info --system
echo
echo "== generate a clustered set: 20,000 x 96 train, 1,000 queries, 2 % planted near-duplicates"
"$simjob" generate "$out/quickstart.hdf5" --n 20000 --queries 1000 --dim 96 --clusters 50 --duplicates 0.02 --k 100 --seed 42
echo
echo "== exact 10-NN graph of train (self excluded)"
"$simjob" knn-graph "$out/quickstart.hdf5" --k 10 --output "$out/quickstart-graph.hdf5"
echo
echo "== recompute ground truth of test against train (k = 100)"
"$simjob" groundtruth "$out/quickstart.hdf5" --k 100 --output "$out/quickstart-truth.hdf5"
echo
echo "== report"
"$simjob" info "$out/quickstart.hdf5"
"$simjob" info "$out/quickstart-graph.hdf5"
echo
echo "Done. Dataset: $out/quickstart.hdf5; k-NN graph: $out/quickstart-graph.hdf5; ground truth: $out/quickstart-truth.hdf5"
