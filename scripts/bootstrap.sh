#!/usr/bin/env bash
# Make this machine ready to build and test oxpg: system packages first, then .venv.
# Safe to run again and again: it installs only what is missing, so a ready machine
# costs a second or so. Debian/Ubuntu (apt-get) only; elsewhere it says what to install.
#
#   PYTHON=python3.12 scripts/bootstrap.sh    # pick the interpreter for .venv
#   OXPG_VENV=.venv-3.12 PYTHON=... scripts/bootstrap.sh    # another venv (`make test-matrix`)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV="${OXPG_VENV:-.venv}"
REQUIREMENTS=requirements-dev.txt
STAMP="$VENV/.oxpg-requirements.stamp"

say() { printf 'bootstrap: %s\n' "$*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }

libpq_ok() { have pg_config && [ -f "$(pg_config --includedir)/libpq-fe.h" ]; }

# The same places oxpg.testing looks in for initdb/pg_ctl.
server_ok() {
    local dir dirs=("${OXPG_PG_BIN:-}" /usr/lib/postgresql/*/bin)
    have pg_ctl && dirs+=("$(dirname "$(command -v pg_ctl)")")
    for dir in "${dirs[@]}"; do
        if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            return 0
        fi
    done
    return 1
}

# Debian installs it in /usr/sbin, which a non-root PATH may lack.
pgbouncer_ok() { have pgbouncer || [ -x /usr/sbin/pgbouncer ]; }

python_ok() { have "$PYTHON"; }
python_version() { "$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])'; }
python_headers_ok() {
    "$PYTHON" -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'
}
# Debian's own Python ships venv without ensurepip unless pythonX.Y-venv is installed.
python_venv_ok() { "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; }

# `make test`/`make fuzz` (OXPG_FUZZ_TOOLCHAIN=1): clang able to link a libFuzzer target
# with ASan/UBSan. Debian 12 ships those runtimes apart from clang, in libclang-rt-dev.
fuzz_toolchain_ok() {
    have clang || return 1
    local probe
    probe="$(mktemp)"
    printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' |
        clang -x c - -fsanitize=fuzzer,address,undefined -o "$probe" >/dev/null 2>&1
    local status=$?
    rm -f "$probe"
    return $status
}

find_missing() {
    missing=()
    libpq_ok || missing+=(libpq-dev)
    server_ok || missing+=(postgresql)
    have gcc || have cc || missing+=(gcc)
    have make || missing+=(make)
    have openssl || missing+=(openssl)
    # tests/test_pgbouncer.py runs clients through a transaction-mode pooler.
    pgbouncer_ok || missing+=(pgbouncer)
    if ! python_ok; then
        missing+=(python3 python3-dev python3-venv)
    else
        local v
        v="$(python_version)"
        python_headers_ok || missing+=("python$v-dev")
        python_venv_ok || missing+=("python$v-venv")
    fi
    if [ "${OXPG_FUZZ_TOOLCHAIN:-}" = 1 ] && ! fuzz_toolchain_ok; then
        if have clang; then missing+=(libclang-rt-dev); else missing+=(clang); fi
    fi
}

find_missing
if ((${#missing[@]})); then
    if [ "$(id -u)" -eq 0 ]; then
        sudo=""
    elif have sudo; then
        sudo="sudo"
    else
        say "missing system packages and neither root nor sudo; please install:"
        say "  apt-get install ${missing[*]}"
        exit 1
    fi
    if ! have apt-get; then
        say "missing: ${missing[*]} (Debian package names); install their equivalents and re-run"
        exit 1
    fi
    say "installing: ${missing[*]}"
    # The "postgresql" package may start its own cluster on port 5432; the tests never use it.
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
    # Where it exists (Debian 12+), clang's sanitizer and libFuzzer runtimes.
    if [[ " ${missing[*]} " == *" clang "* ]] && apt-cache show libclang-rt-dev >/dev/null 2>&1; then
        missing+=(libclang-rt-dev)
    fi
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"

    find_missing
    if ((${#missing[@]})); then
        say "still missing after apt-get: ${missing[*]}"
        if [[ "${missing[*]}" == *python* ]]; then
            # apt-get cannot fix a Python that is not the system's (pyenv, conda...).
            say "$PYTHON may not be the system Python: install its headers/venv module, or set PYTHON=/usr/bin/python3"
        fi
        exit 1
    fi
fi

# A venv made by another interpreter (PYTHON changed, or pyenv upgraded) is rebuilt.
want_python="$("$PYTHON" -c 'import sys; print(sys.version)')"
if [ ! -x "$VENV/bin/python" ] ||
   [ "$("$VENV/bin/python" -c 'import sys; print(sys.version)' 2>/dev/null)" != "$want_python" ]; then
    say "creating $VENV with $PYTHON ($want_python)"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    rm -f "$STAMP"
fi

want_stamp="$(cat "$REQUIREMENTS"; echo "$want_python")"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$want_stamp" ]; then
    say "installing $REQUIREMENTS into $VENV"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$REQUIREMENTS"
    printf '%s\n' "$want_stamp" >"$STAMP"
fi
