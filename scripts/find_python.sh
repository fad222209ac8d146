#!/usr/bin/env bash
# Print the path of a CPython X.Y interpreter, for `make test-matrix`; fail when there is none.
#
#   scripts/find_python.sh 3.13
#
# pyenv's own builds first (newest patch release; free-threaded "t" builds are not
# wanted), then pythonX.Y on PATH. pyenv's shim is skipped: it fails for a version that
# is installed but not selected.
set -euo pipefail

want="${1:?usage: find_python.sh X.Y}"
[[ "$want" =~ ^[0-9]+\.[0-9]+$ ]] || { echo "find_python: not an X.Y version: $want" >&2; exit 2; }

works() { "$1" -c "import sys; sys.exit(sys.version_info[:2] != (${want/./, }))" >/dev/null 2>&1; }

versions="${PYENV_ROOT:-$HOME/.pyenv}/versions"
if [ -d "$versions" ]; then
    for name in $(ls "$versions" | grep -E "^${want//./\\.}\.[0-9]+$" | sort -V -r); do
        candidate="$versions/$name/bin/python$want"
        if works "$candidate"; then
            echo "$candidate"
            exit 0
        fi
    done
fi
if candidate="$(command -v "python$want")" && [[ "$candidate" != */shims/* ]] && works "$candidate"; then
    echo "$candidate"
    exit 0
fi
echo "find_python: no Python $want found (pyenv install $want, or apt-get install python$want-dev python$want-venv)" >&2
exit 1
