# crisp-edge: the two commands a fresh machine needs are `make demo` and `make test`.
# Every target installs what it needs itself (system packages via apt-get where
# missing, Python packages into .venv).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
JOBS   ?= 2
CMAKE_FLAGS ?= -DCRISP_WERROR=ON

RUNTIME_SOURCES := $(shell find runtime cmake -type f \( -name '*.c' -o -name '*.h' -o -name '*.txt' -o -name '*.cmake' \) 2>/dev/null) CMakeLists.txt

.PHONY: all demo test test-python test-c sysdeps venv build-native build-asan build-aarch64 clean

all: venv

sysdeps:
	@bash scripts/install-system-deps.sh

# The venv is rebuilt when the packaging or the C runtime changes: the package's
# libcrisp is compiled by scikit-build-core at install time.
$(VENV)/.deps: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch pinned to the CPU build (an unpinned torch pulls CUDA packages).
	$(PY) -m pip install -q torch==2.13.0 numpy cffi click pytest "scikit-build-core>=0.10"
	touch $@

$(VENV)/.installed: $(VENV)/.deps $(RUNTIME_SOURCES) pyproject.toml
	$(PY) -m pip install -q --no-build-isolation -e ".[host,test]"
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

test-c: build-native build-asan build-aarch64
	ctest --test-dir build/native --output-on-failure
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir build/asan --output-on-failure
	ctest --test-dir build/aarch64 --output-on-failure

# The Python tests also drive the C tool, normal and sanitized builds.
test-python: venv build-native build-asan
	CRISP_RUN=$(CURDIR)/build/native/runtime/crisp-run \
	CRISP_RUN_ASAN=$(CURDIR)/build/asan/runtime/crisp-run \
	  $(PY) -m pytest -q

test: test-c test-python

demo: venv
	$(PY) -m crisp_edge.demo --out demo-output

clean:
	rm -rf build demo-output
