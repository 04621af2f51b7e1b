# simjob's two commands: `make quickstart` runs the main job, `make test` runs the tests.
# Both install what is missing (Debian packages, h5py) and build first.

# OpenBLAS picks its kernels when it loads, by CPU model (an unknown model gets slow generic
# kernels) or from a preset OPENBLAS_CORETYPE. The simjob executable corrects this itself; the
# test process is given the core simjob chooses from the CPU's flags (`info --blas-core`).
unexport OPENBLAS_CORETYPE
# The engine runs single-threaded BLAS calls on its own workers; an OpenBLAS thread pool would
# only spin. (The simjob executable sets this itself.)
export OPENBLAS_NUM_THREADS = 1

SWIFT ?= swift

SIMJOB_PHONY = bench-sgemm
.PHONY: quickstart test deps build release $(SIMJOB_PHONY) bench-exact bench-ivfpq bench-dedup bench-graph clean

deps:
	@./scripts/install-deps.sh

release: deps
	$(SWIFT) build -c release

build: deps
	$(SWIFT) build

quickstart: release
	.build/release/simjob info --system
	.build/release/simjob run Jobs/quickstart.yaml

test: deps
	$(SWIFT) build --build-tests
	core="$$(.build/debug/simjob info --blas-core)"; \
	if [ -n "$$core" ]; then export OPENBLAS_CORETYPE="$$core"; fi; \
	$(SWIFT) test --skip-build

bench-sgemm: release
	python3 Benchmarks/sgemm_core_choice.py

bench-exact: release
	python3 -m pip install -q faiss-cpu h5py numpy
	python3 Benchmarks/exact_knn_vs_faiss.py

bench-ivfpq: release
	python3 -m pip install -q faiss-cpu h5py numpy
	python3 Benchmarks/ivfpq_vs_faiss.py

bench-dedup: release
	python3 -m pip install -q faiss-cpu h5py numpy
	python3 Benchmarks/dedup_vs_faiss.py

bench-graph: release
	python3 -m pip install -q pynndescent h5py numpy
	python3 Benchmarks/approx_graph_vs_pynndescent.py

clean:
	rm -rf .build out
