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

SIMJOB_PHONY = bench-sgemm fuzz fuzz-build fuzz-short golden
.PHONY: quickstart test deps build release $(SIMJOB_PHONY) bench-exact bench-ivfpq bench-dedup bench-graph clean

deps:
	@./scripts/install-deps.sh

# The release executable links the Swift runtime and Foundation statically: nothing to resolve
# across dozens of shared libraries at each start (28 ms against 41 ms to start on an AMD EPYC,
# paid twice when simjob relaunches itself with better BLAS settings).
release: deps
	$(SWIFT) build -c release --static-swift-stdlib

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
	$(MAKE) --no-print-directory fuzz-short

# Rewrites the golden files of Tests/Golden (every --help, the schema, the summary lines) from
# the current build; review the diff before committing it.
golden: deps
	$(SWIFT) build --build-tests
	SIMJOB_WRITE_GOLDEN=1 $(SWIFT) test --skip-build --filter GoldenTests
	@git --no-pager diff --stat -- Tests/Golden

# Coverage-guided fuzzing (libFuzzer) of the parsers users feed: job files, index files and
# random-projection forests' files.
# The seed corpus is Fuzz/corpus/<target>; new inputs go to .build-fuzz/corpus/<target>, crashes
# to .build-fuzz/crashes/<target>/ (replay one with: .build/debug/simjob-fuzz <target> FILE).
FUZZ_TARGETS = jobs index forest
FUZZ_SECONDS ?= 600
FUZZ_FLAGS = --scratch-path .build-fuzz --sanitize fuzzer -Xswiftc -DSIMJOB_FUZZ -Xswiftc -parse-as-library --product simjob-fuzz

fuzz-build: deps
	$(SWIFT) build $(FUZZ_FLAGS)

# make fuzz [FUZZ_SECONDS=600]: each target for FUZZ_SECONDS.
fuzz: fuzz-build
	@for target in $(FUZZ_TARGETS); do \
	  mkdir -p .build-fuzz/corpus/$$target .build-fuzz/crashes/$$target; \
	  echo "fuzzing $$target for $(FUZZ_SECONDS) s"; \
	  SIMJOB_FUZZ_TARGET=$$target .build-fuzz/debug/simjob-fuzz -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 \
	    -artifact_prefix=.build-fuzz/crashes/$$target/ .build-fuzz/corpus/$$target Fuzz/corpus/$$target || exit 1; \
	done

# The bounded run of the test command: a fixed seed and number of runs per target, so it is the
# same run on every machine; any crash fails the tests.
fuzz-short: fuzz-build
	@for target in $(FUZZ_TARGETS); do \
	  rm -rf .build-fuzz/corpus-short/$$target; mkdir -p .build-fuzz/crashes/$$target .build-fuzz/corpus-short/$$target; \
	  SIMJOB_FUZZ_TARGET=$$target .build-fuzz/debug/simjob-fuzz -seed=1 -runs=20000 -rss_limit_mb=4096 \
	    -artifact_prefix=.build-fuzz/crashes/$$target/ .build-fuzz/corpus-short/$$target Fuzz/corpus/$$target 2>.build-fuzz/fuzz-$$target.log \
	    || { tail -40 .build-fuzz/fuzz-$$target.log; echo "fuzzing $$target found a crash (see .build-fuzz/crashes/$$target/)"; exit 1; }; \
	  echo "fuzz $$target: $$(grep -E '^Done|DONE' .build-fuzz/fuzz-$$target.log | tail -1)"; \
	done

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
