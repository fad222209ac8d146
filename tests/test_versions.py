"""Each `make test` run uses the libpq and server it claims to.

`make test` runs the suite on Debian's libpq and server, then on PostgreSQL 18's. A
module that links or loads the wrong libpq (a missing rpath finds the system one), or a
cluster started from the wrong binaries, would make the second run a silent copy of
the first. The Makefile says what each run expects in OXPG_EXPECT_LIBPQ_MAJOR and
OXPG_EXPECT_SERVER_MAJOR; a plain `pytest` sets neither and has nothing to compare.
"""

from __future__ import annotations

import os

import oxpg
import pytest


def expected_major(name: str) -> int:
    value = os.environ.get(name)
    if not value:
        pytest.skip(f"{name} is not set: this run names no version to compare with")
    return int(value)


def test_loaded_libpq_is_the_expected_major() -> None:
    want = expected_major("OXPG_EXPECT_LIBPQ_MAJOR")
    assert oxpg.libpq_version() // 10000 == want


def test_server_is_the_expected_major(client: oxpg.Client) -> None:
    want = expected_major("OXPG_EXPECT_SERVER_MAJOR")
    assert client.server_version // 10000 == want
