# The README's commands: `make demo` and `make test`. Both bootstrap the machine first
# (scripts/bootstrap.sh: system packages when missing, .venv with the dev requirements).

PYTHON ?= python3
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

.PHONY: all bootstrap build demo test fuzz bench clean distclean

all: build

bootstrap:
	@PYTHON="$(PYTHON)" bash scripts/bootstrap.sh

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

# -Werror here (and so in CI): warnings are bugs in this code base. Before pytest (so
# its summary closes the output), the decoders are fuzzed for FUZZ_SECONDS (0: only
# replay tests/fuzz/crashes/), so bootstrap installs clang for these two targets.
test: export OXPG_WERROR := 1
test fuzz: export OXPG_FUZZ_TOOLCHAIN := 1
test: build
	$(FUZZ)
	$(PY) -m pytest $(PYTEST_ARGS)

fuzz: bootstrap
	$(FUZZ)

$(BENCH_STAMP): bench/requirements.txt
	$(PY) -m pip install --disable-pip-version-check -q -r bench/requirements.txt
	@touch $@

bench: build
	@$(MAKE) --no-print-directory -s $(BENCH_STAMP)
	$(PY) bench/run.py --quick

clean:
	rm -rf build src/*.egg-info .pytest_cache .hypothesis
	find src tests examples bench -name '__pycache__' -type d -prune -exec rm -rf {} + 2>/dev/null || true
	rm -f src/oxpg/_oxpg*.so

distclean: clean
	rm -rf $(VENV)
