#!/usr/bin/env bash
# Build the decoder fuzz target (tests/fuzz/fuzz_decoders.c) with clang, libFuzzer,
# ASan and UBSan into build/fuzz/, replay tests/fuzz/crashes/, then fuzz for a bounded
# time. Exits non-zero on any crash, sanitizer report, leak, hang or decoder contract
# violation. `make fuzz` and `make test` run it.
#
#   FUZZ_SECONDS=60      fuzzing time; 0 builds and replays the crash inputs only
#   FUZZ_MAX_LEN=4096    largest input libFuzzer generates
#   FUZZ_JOBS=1          parallel fuzzing processes (libFuzzer -fork); 1 = one process
#   FUZZ_ARGS="..."      extra libFuzzer flags, e.g. "-seed=1 -only_ascii=1"
#   FUZZ_PYTHON=path     the interpreter to embed (default .venv/bin/python, else python3)
#   FUZZ_CC=clang        the compiler
#   PG_CONFIG=path       the pg_config to ask for libpq, as in setup.py
#
# The fuzzer keeps what it learns in build/fuzz/corpus/ (seeded from the committed
# tests/fuzz/corpus/, which it never writes to); crash inputs go to build/fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/../.."

FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
FUZZ_MAX_LEN="${FUZZ_MAX_LEN:-4096}"
FUZZ_JOBS="${FUZZ_JOBS:-1}"
FUZZ_ARGS="${FUZZ_ARGS:-}"
CC="${FUZZ_CC:-clang}"
if [ -z "${FUZZ_PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then FUZZ_PYTHON=.venv/bin/python; else FUZZ_PYTHON=python3; fi
fi

OUT=build/fuzz
BIN="$OUT/fuzz_decoders"
LOG="$OUT/fuzz.log"

say() { printf 'fuzz: %s\n' "$*" >&2; }

# clang that can link a libFuzzer target with both sanitizers (Debian splits the
# runtime into libclang-rt-dev).
toolchain_ok() {
    command -v "$CC" >/dev/null 2>&1 || return 1
    local probe="$OUT/toolchain-probe"
    mkdir -p "$OUT"
    printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' |
        "$CC" -x c - -fsanitize=fuzzer,address,undefined -o "$probe" >/dev/null 2>&1 || return 1
    rm -f "$probe"
}

if ! toolchain_ok; then
    if [ "$CC" != clang ]; then
        say "$CC cannot build a libFuzzer target with -fsanitize=fuzzer,address,undefined"
        exit 1
    fi
    say "clang with libFuzzer and sanitizer runtimes is missing; installing it"
    # bootstrap.sh installs system packages (apt-get as root or through sudo, else it
    # prints what to install). PYTHON there means the interpreter for .venv: not ours.
    env -u PYTHON OXPG_FUZZ_TOOLCHAIN=1 bash scripts/bootstrap.sh
    if ! toolchain_ok; then
        say "clang still cannot link -fsanitize=fuzzer,address,undefined (Debian/Ubuntu: apt-get install clang libclang-rt-dev)"
        exit 1
    fi
fi

# --- flags ---------------------------------------------------------------------------

PG_CONFIG="${PG_CONFIG:-pg_config}"
PQ_INCLUDE="$("$PG_CONFIG" --includedir)"
PQ_LIB="$("$PG_CONFIG" --libdir)"

# Include dir, home and link flags of the interpreter to embed, the way python3-config
# --embed computes them (a venv has no pythonX.Y-config of its own).
mapfile -t PY_INFO < <("$FUZZ_PYTHON" - <<'EOF'
import sys, sysconfig
v = sysconfig.get_config_var
print(sysconfig.get_paths()["include"])
print(sys.base_prefix)
lib = "python" + (v("LDVERSION") or v("VERSION"))
if v("Py_ENABLE_SHARED"):
    flags = ["-L" + v("LIBDIR"), "-Wl,-rpath," + v("LIBDIR"), "-l" + lib]
else:
    # A static libpython: extension modules of the standard library (_decimal,
    # _json...) are loaded with dlopen and need the interpreter's symbols exported.
    flags = ["-L" + v("LIBPL"), "-l" + lib] + (v("LINKFORSHARED") or "").split()
flags += (v("LIBS") or "").split() + (v("SYSLIBS") or "").split()
print(" ".join(flags))
EOF
)
PY_INCLUDE="${PY_INFO[0]}"
PY_HOME="${PY_INFO[1]}"
read -r -a PY_LDFLAGS <<<"${PY_INFO[2]}"

SANITIZE=(-fsanitize=address,undefined -fno-sanitize-recover=all)
CFLAGS=(-std=c11 -g -O1 -fno-omit-frame-pointer -Wall -Wextra
    "${SANITIZE[@]}" -fsanitize=fuzzer-no-link
    -Iinclude "-I$PQ_INCLUDE" "-I$PY_INCLUDE"
    '-DOXPG_VERSION="fuzz"' "-DOXPG_FUZZ_PYTHON_HOME=\"$PY_HOME\""
    "-DOXPG_FUZZ_PACKAGE_DIR=\"$PWD/src/oxpg\"")
LDFLAGS=("${SANITIZE[@]}" -fsanitize=fuzzer "-L$PQ_LIB" -lpq "${PY_LDFLAGS[@]}")

# --- build ---------------------------------------------------------------------------

mkdir -p "$OUT/obj"
FLAGS_FILE="$OUT/flags.txt"
flags_text="$(printf '%s\n' "$CC" "${CFLAGS[@]}" -- "${LDFLAGS[@]}")"
if [ ! -f "$FLAGS_FILE" ] || [ "$(cat "$FLAGS_FILE")" != "$flags_text" ]; then
    printf '%s\n' "$flags_text" >"$FLAGS_FILE"
fi

mapfile -t SOURCES < <(find src/_oxpg -name '*.c' | sort; echo tests/fuzz/fuzz_decoders.c)
OBJECTS=()
STALE=()
for src in "${SOURCES[@]}"; do
    obj="$OUT/obj/${src//\//_}.o"
    OBJECTS+=("$obj")
    if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ "$FLAGS_FILE" -nt "$obj" ] ||
       [ -n "$(find include src/_oxpg -name '*.h' -newer "$obj" -print -quit)" ]; then
        STALE+=("$src")
    fi
done

compile() {
    local src="$1" extra=()
    # The harness is this directory's own code: warnings are errors, as in CI.
    [ "$src" = tests/fuzz/fuzz_decoders.c ] && extra=(-Werror)
    "$CC" "${CFLAGS[@]}" "${extra[@]}" -c "$src" -o "$OUT/obj/${src//\//_}.o"
}

if ((${#STALE[@]})); then
    say "compiling ${#STALE[@]} file(s) with $CC and ASan/UBSan"
    jobs_max="$(nproc 2>/dev/null || echo 2)"
    pids=()
    failed=0
    for src in "${STALE[@]}"; do
        compile "$src" &
        pids+=("$!")
        if ((${#pids[@]} >= jobs_max)); then
            wait "${pids[0]}" || failed=1
            pids=("${pids[@]:1}")
        fi
    done
    for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
    if ((failed)); then
        say "compilation failed"
        exit 1
    fi
fi

relink=0
[ -x "$BIN" ] || relink=1
for obj in "${OBJECTS[@]}"; do [ "$obj" -nt "$BIN" ] && relink=1; done
[ "$FLAGS_FILE" -nt "$BIN" ] && relink=1
if ((relink)); then
    "$CC" "${OBJECTS[@]}" "${LDFLAGS[@]}" -o "$BIN"
fi
say "$BIN: $(OXPG_FUZZ_LIST=1 "$BIN" 2>/dev/null | wc -l) decoders"

# --- run -----------------------------------------------------------------------------

# Leak checking stays on: Python objects go through malloc (see fuzz_decoders.c), so a
# value a decoder drops without a reference is reported as a leak.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0:handle_abort=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
COMMON=(-error_exitcode=77 -timeout_exitcode=78 -timeout=10 -rss_limit_mb=4096)

# Inputs that once crashed a decoder must not crash it again; every start of the
# binary also runs the deep-nesting check (fuzz_decoders.c).
mapfile -t CRASHES < <(find tests/fuzz/crashes -type f ! -name '*.md' 2>/dev/null | sort)
say "nesting check and ${#CRASHES[@]} input(s) from tests/fuzz/crashes/"
if ! "$BIN" "${COMMON[@]}" -runs=0 "${CRASHES[@]}" >"$OUT/replay.log" 2>&1; then
    tail -n 60 "$OUT/replay.log" >&2
    say "FAILED: a recorded crash input or the nesting check still fails; full log: $OUT/replay.log"
    exit 1
fi

if [ "$FUZZ_SECONDS" = 0 ]; then
    exit 0
fi

mkdir -p "$OUT/corpus" "$OUT/artifacts"
RUN=(-max_total_time="$FUZZ_SECONDS" -max_len="$FUZZ_MAX_LEN" -print_final_stats=1
    -artifact_prefix="$OUT/artifacts/")
if [ "$FUZZ_JOBS" -gt 1 ]; then
    RUN+=(-fork="$FUZZ_JOBS")
fi
# shellcheck disable=SC2206  # FUZZ_ARGS is a list of flags
RUN+=($FUZZ_ARGS)

say "fuzzing for ${FUZZ_SECONDS}s (-max_len=$FUZZ_MAX_LEN, $FUZZ_JOBS process(es)); log: $LOG"
status=0
started="$(date +%s)"
"$BIN" "${COMMON[@]}" "${RUN[@]}" "$OUT/corpus" tests/fuzz/corpus >"$LOG" 2>&1 || status=$?
seconds=$(($(date +%s) - started))

# Executions: libFuzzer's final stats, or (with -fork, or after a crash) the last
# "#N ..." status line.
executions="$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$LOG" | tail -n 1)"
if [ -z "$executions" ]; then
    executions="$(sed -n 's/^#\([0-9][0-9]*\).*/\1/p' "$LOG" | tail -n 1)"
fi
executions="${executions:-0}"
rate=$((seconds > 0 ? executions / seconds : executions))
corpus_size="$(find "$OUT/corpus" -type f | wc -l)"
printf '%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$seconds" "$executions" "$status" >>"$OUT/history.tsv"
total="$(awk -F'\t' '{ s += $2; n += $3 } END { printf "%d executions in %d s", n, s }' "$OUT/history.tsv")"
say "$executions executions in ${seconds}s ($rate/s), corpus $corpus_size inputs; all runs here: $total"

if [ "$status" -ne 0 ]; then
    tail -n 80 "$LOG" >&2
    say "FAILED (exit $status): full log $LOG; the failing input:"
    find "$OUT/artifacts" -type f -newermt "@$started" >&2
    say "reproduce: $BIN <input>; minimize: $BIN -minimize_crash=1 -runs=100000 <input>"
    exit "$status"
fi
