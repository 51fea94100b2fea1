# crisp-edge: the two commands a fresh machine needs are `make demo` and `make test`.
# Every target installs what it needs itself (system packages via apt-get where
# missing, Python packages into .venv).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
JOBS   ?= 2
CMAKE_FLAGS ?= -DCRISP_WERROR=ON

RUNTIME_SOURCES := $(shell find runtime cmake -type f \( -name '*.c' -o -name '*.h' -o -name '*.txt' -o -name '*.cmake' \) 2>/dev/null) CMakeLists.txt

.PHONY: all demo test test-python test-c test-fuzz fuzz sysdeps venv build-native build-asan \
        build-aarch64 build-fuzz clean

all: venv

sysdeps:
	@bash scripts/install-system-deps.sh

# The venv is rebuilt when the packaging or the C runtime changes: the package's
# libcrisp is compiled by scikit-build-core at install time.
$(VENV)/.deps: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch pinned to the CPU build (an unpinned torch pulls CUDA packages).
	$(PY) -m pip install -q torch==2.13.0 numpy cffi click pillow tqdm pyserial pytest "scikit-build-core>=0.10"
	# timm and onnx2torch without their torchvision (pyproject.toml, [tool.crisp-edge] no-deps).
	$(PY) -m pip install -q --no-deps $$($(PY) -c 'import tomllib; \
	  print(" ".join(tomllib.load(open("pyproject.toml", "rb"))["tool"]["crisp-edge"]["no-deps"]))')
	touch $@

$(VENV)/.installed: $(VENV)/.deps $(RUNTIME_SOURCES) pyproject.toml
	$(PY) -m pip install -q --no-build-isolation -e ".[host,field,import,test,deploy]"
	touch $@

venv: sysdeps $(VENV)/.installed

build-native: sysdeps
	cmake -S . -B build/native $(CMAKE_FLAGS) >/dev/null
	cmake --build build/native -j $(JOBS)

build-asan: sysdeps
	cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DCRISP_SANITIZE=ON $(CMAKE_FLAGS) >/dev/null
	cmake --build build/asan -j $(JOBS)

build-aarch64: sysdeps
	cmake -S . -B build/aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake $(CMAKE_FLAGS) >/dev/null
	cmake --build build/aarch64 -j $(JOBS)

# libFuzzer (clang): the loader (fuzz_loader, seeded with the valid files of
# runtime/tests/data plus 1.1 and scratch-heavy models from the C model
# builder), the image decoder (fuzz_image), crisp-run's .npy reader
# (fuzz_npy) and its argument parsing (fuzz_cli). Each runs on a copy of its
# seeds and fails on any crash, leak or timeout (artifacts in
# build/fuzz/artifacts). runtime/tests/data/fuzz-regressions/TARGET/ holds
# the inputs that once failed: test-fuzz runs each first.
FUZZ_FLAGS := -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
              -artifact_prefix=$(CURDIR)/build/fuzz/artifacts/
FUZZ_TARGETS := loader image npy cli
FUZZ_SEEDS := runtime/tests/data/fuzz-seeds
FUZZ_REGRESSIONS := runtime/tests/data/fuzz-regressions

build-fuzz: sysdeps
	CC=clang cmake -S . -B build/fuzz -DCRISP_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCRISP_BUILD_TOOLS=OFF $(CMAKE_FLAGS) >/dev/null
	cmake --build build/fuzz -j $(JOBS) --target $(addprefix fuzz_,$(FUZZ_TARGETS)) gen_fuzz_seeds
	rm -rf build/fuzz/corpus build/fuzz/image-corpus build/fuzz/npy-corpus build/fuzz/cli-corpus
	mkdir -p build/fuzz/corpus build/fuzz/image-corpus build/fuzz/npy-corpus \
	  build/fuzz/cli-corpus build/fuzz/artifacts
	cp runtime/tests/data/*.crisp $(FUZZ_REGRESSIONS)/loader/* build/fuzz/corpus/
	build/fuzz/runtime/gen_fuzz_seeds build/fuzz/corpus
	cp runtime/tests/data/images/*.png runtime/tests/data/images/*.jpg \
	  runtime/tests/data/images/*.bmp build/fuzz/image-corpus/
	cp runtime/tests/data/*.npy $(FUZZ_SEEDS)/npy/* build/fuzz/npy-corpus/
	cp $(FUZZ_SEEDS)/cli/* build/fuzz/cli-corpus/

# Regressions first, then the loader for 60 s, the image decoder (stb_image, the container
# checks, the resampler) for 10 s, the .npy reader for 5 s and crisp-run's arguments for 10 s.
test-fuzz: build-fuzz
	for t in $(FUZZ_TARGETS); do \
	  set -- $(FUZZ_REGRESSIONS)/$$t/*; [ -e "$$1" ] || continue; \
	  build/fuzz/runtime/fuzz_$$t "$$@" $(FUZZ_FLAGS) || exit 1; done
	build/fuzz/runtime/fuzz_loader build/fuzz/corpus -max_total_time=60 $(FUZZ_FLAGS)
	build/fuzz/runtime/fuzz_image build/fuzz/image-corpus -max_total_time=10 $(FUZZ_FLAGS)
	build/fuzz/runtime/fuzz_npy build/fuzz/npy-corpus -max_total_time=5 $(FUZZ_FLAGS)
	build/fuzz/runtime/fuzz_cli build/fuzz/cli-corpus -max_total_time=10 $(FUZZ_FLAGS)

fuzz: build-fuzz
	build/fuzz/runtime/fuzz_loader build/fuzz/corpus -max_total_time=1800 $(FUZZ_FLAGS)
	build/fuzz/runtime/fuzz_image build/fuzz/image-corpus -max_total_time=600 $(FUZZ_FLAGS)
	build/fuzz/runtime/fuzz_npy build/fuzz/npy-corpus -max_total_time=300 $(FUZZ_FLAGS)
	build/fuzz/runtime/fuzz_cli build/fuzz/cli-corpus -max_total_time=600 $(FUZZ_FLAGS)

# Issue 14's figure (docs/fuzzing.md): every target, the Python reader's hypothesis run
# included, for a fixed number of executions (about 10.3 M in all, ~1 h on two busy cores;
# FUZZ_LONG_RUNS="loader=N image=N npy=N cli=N read_py=N" changes the shares), then executions,
# crashes and wall time per target; fails on any crash.
.PHONY: fuzz-long
fuzz-long: build-fuzz venv
	PY=$(PY) bash scripts/fuzz_long.sh

test-c: build-native build-asan build-aarch64
	ctest --test-dir build/native --output-on-failure
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir build/asan --output-on-failure
	ctest --test-dir build/aarch64 --output-on-failure
	$(MAKE) test-fuzz

# The Python tests also drive the C tool, normal and sanitized builds.
test-python: venv build-native build-asan lint-imports
	CRISP_RUN=$(CURDIR)/build/native/runtime/crisp-run \
	CRISP_RUN_ASAN=$(CURDIR)/build/asan/runtime/crisp-run \
	  $(PY) -m pytest -q

test: test-c test-python test-wheel

# The new user's path (issue 17), from the wheel alone: built, installed with the `deploy` extra
# into a fresh venv (no torch), `crisp-edge boards`, a deploy to a file with the zig toolchain
# (ziglang from PyPI), the bundle's static crisp-run under qemu-aarch64 -cpu cortex-a72 against
# the host runtime (scripts/test_wheel.sh). The board build is kept in build/test-wheel/cache.
.PHONY: test-wheel
test-wheel: sysdeps $(VENV)/.deps
	PY=$(PY) bash scripts/test_wheel.sh

# Issue 14's kill-mid-deploy figure (docs/deploy.md): 50 deploys to the loopback sshd board, each
# interrupted at a seeded random point (SIGKILL of the remote session, of the install at a step,
# or the connection cut), then checked. A few minutes; `make test` runs a 6-trial version.
# CRISP_DEPLOY_KILL_TRIALS / CRISP_DEPLOY_KILL_SEED change the count and the seed.
.PHONY: test-deploy-kill
test-deploy-kill: venv
	$(PY) -m pytest -q -s -m deploy_kill tests/deploy/test_deploy_kill.py

# The house rule: stages import only downward and nothing imports in a cycle (pyproject.toml,
# [tool.importlinter]).
.PHONY: lint-imports
lint-imports: venv
	$(VENV)/bin/lint-imports

demo: venv
	$(VENV)/bin/crisp-edge demo --out demo-output

clean:
	rm -rf build demo-output

# Kernel benchmark against the peer runtimes (docs/benchmarks.md), then int8 against ONNX
# Runtime's and TFLite's int8 (docs/int8-peers.md): installs the `peers` extra (ONNX Runtime,
# LiteRT + litert-torch) first; long (tens of minutes). Arguments via BENCH_ARGS, e.g.
# BENCH_ARGS="--archs resnet50 --threads 2" or BENCH_ARGS=--quick, and BENCH_INT8_ARGS.
.PHONY: bench
bench: venv build-native
	$(PY) -m pip install -q -e ".[peers]" --no-build-isolation
	$(VENV)/bin/crisp-edge peerbench --crisp-bench $(CURDIR)/build/native/runtime/crisp-bench $(BENCH_ARGS)
	CRISP_LIBRARY=$(CURDIR)/build/native/runtime/libcrisp.so $(PY) bench/int8_peer_bench.py \
	  --out docs/int8-peers.md $(BENCH_INT8_ARGS)

# Microkernel benchmark (runtime/README.md, "Measuring"): every variant of every kernel list
# this CPU supports, GFLOP/s on ResNet-50 layer shapes; about ten seconds. Arguments via
# UKERNEL_BENCH_ARGS, e.g. UKERNEL_BENCH_ARGS="--family spmm".
.PHONY: ukernel-bench
ukernel-bench: build-native
	build/native/runtime/crisp-ukernel-bench $(UKERNEL_BENCH_ARGS)

# Pruning benchmark (docs/prune-benchmark.md): CRISP and every method of `compare` × 3 seeds ×
# k = 2, 5, 10 on ResNet-18 (90 and 95 %) and MobileNetV2 (90 %). Finished runs are kept in
# docs/prune-benchmark-runs/, so it resumes after an interruption (and reuses them while the
# base models' sha256 match). BENCH_PRUNE_ARGS=--ablations adds the ablations behind the
# defaults; --quick runs a minutes-long smoke version; --report writes the doc from the runs
# done so far. bench-prune-same-shape: the user's classes are one shape (a fine-grained subset,
# where class-aware saliency can show what it buys), k = 10: docs/prune-benchmark-same-shape.md.
# Issue 13's targets (docs/personalize-benchmark.md): personalisation on the device's code path
# (crisp-personalize) against a torch logistic regression, its time and memory, thread
# invariance, re-selection against a host-packed model. ≈ 45 min on one core the first time
# (a base model is trained and pruned; cached in bench-results/personalize/).
# Issue 16: hybrid int8 against hybrid fp32 on the same weights (the peerbench pattern at
# 90 %, V = 1 and 4), ResNet-50 and MobileNetV2, 1 and 2 threads, timed interleaved in one
# process; the ratio fp32/int8. Models are packed once (a few minutes) into bench-results/int8/.
.PHONY: bench-int8
bench-int8: venv build-native
	CRISP_LIBRARY=$(CURDIR)/build/native/runtime/libcrisp.so $(PY) bench/int8_bench.py $(BENCH_INT8_ARGS)

# Issue 16's peer check: crisp int8 dense against ONNX Runtime's statically quantized model
# (quantize_static, QDQ, per-channel int8 weights, the same 8 calibration images), beside both
# float32 models and crisp's hybrid int8 @90 % V=4; × = fastest float32 dense / system.
.PHONY: bench-int8-peers
bench-int8-peers: venv build-native
	CRISP_LIBRARY=$(CURDIR)/build/native/runtime/libcrisp.so $(PY) bench/int8_peer_bench.py \
	  $(BENCH_INT8_ARGS)

.PHONY: bench-personalize
bench-personalize: venv build-native
	$(PY) bench/personalize_bench.py $(BENCH_PERSONALIZE_ARGS)

.PHONY: bench-prune bench-prune-same-shape
bench-prune: venv
	$(PY) bench/prune_bench.py $(BENCH_PRUNE_ARGS)

bench-prune-same-shape: venv
	$(PY) bench/prune_bench.py --class-pick same-shape --k 10 $(BENCH_PRUNE_ARGS)

# Issue 4's acceptance check on the zoo (docs/zoo-verification.md): every arch × CIFAR/ImageNet
# shape × 50/90 % pruned by the engine, packed fp32 and int8, run in the runtime against torch.
# The full default takes hours on 2 cores; e.g. VERIFY_ZOO_ARGS="--shapes cifar" or
# "--shapes imagenet --archs resnet18,mobilenet_v2". Rows accumulate in bench-results/zoo/.
.PHONY: verify-zoo
verify-zoo: venv build-native
	$(PY) bench/verify_zoo.py $(VERIFY_ZOO_ARGS)
