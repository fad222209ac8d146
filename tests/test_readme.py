"""The README's Python examples run verbatim against the test server.

The only substitution is the placeholder DSN in the README, replaced by the test
server's; everything else is executed exactly as a reader would paste it.
"""

from __future__ import annotations

import re
from pathlib import Path

import oxpg
import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
PLACEHOLDER_DSN = "postgresql://user:pw@localhost:5432/mydb"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


@pytest.fixture
def users_table(dsn: str):
    with oxpg.connect(dsn) as admin:
        admin.execute("DROP TABLE IF EXISTS users")
        admin.execute("CREATE TABLE users (id serial PRIMARY KEY, username text NOT NULL, active bool DEFAULT false)")
        admin.execute("INSERT INTO users (username) VALUES ('alice'), ('bob')")
        yield
        admin.execute("DROP TABLE users")


def run_block(source: str, dsn: str, namespace: dict[str, object]) -> None:
    exec(compile(source.replace(PLACEHOLDER_DSN, dsn), str(README), "exec"), namespace)


def test_readme_has_the_seed_example() -> None:
    first = python_blocks()[0]
    assert PLACEHOLDER_DSN in first
    assert "client.query(" in first and "client.execute(" in first


def test_seed_example_runs_verbatim(dsn: str, users_table: None) -> None:
    namespace: dict[str, object] = {}
    run_block(python_blocks()[0], dsn, namespace)
    assert namespace["rows"] == [{"id": 1, "username": "alice"}]
    assert namespace["n"] == 1
    namespace["client"].close()  # type: ignore[attr-defined]


def test_error_example_runs_verbatim(dsn: str, users_table: None, capsys: pytest.CaptureFixture[str]) -> None:
    blocks = [b for b in python_blocks() if "SELEC * FROM users" in b]
    assert blocks, "the README's DatabaseError example is missing"
    with oxpg.connect(dsn) as client:
        run_block(blocks[0], dsn, {"client": client, "oxpg": oxpg})
    assert capsys.readouterr().out.startswith("42601 ")


def test_asyncio_example_runs_verbatim(dsn: str, users_table: None) -> None:
    blocks = [b for b in python_blocks() if "oxpg.aio.connect(" in b]
    assert blocks, "the README's asyncio example is missing"
    with oxpg.connect(dsn) as admin:
        admin.execute("CREATE TABLE log (user_id int)")
        try:
            run_block(blocks[0], dsn, {})
            assert admin.query_value("SELECT active FROM users WHERE id = 1") is True
            assert admin.query_value("SELECT count(*) FROM log") == 2
        finally:
            admin.execute("DROP TABLE log")


def test_pool_example_runs_verbatim(dsn: str, users_table: None) -> None:
    blocks = [b for b in python_blocks() if "oxpg.Pool(" in b]
    assert blocks, "the README's pool example is missing"
    namespace: dict[str, object] = {"oxpg": oxpg}
    run_block(blocks[0], dsn, namespace)
    assert namespace["rows"] == [{"id": 1, "username": "alice"}]
    assert namespace["pool"].closed  # type: ignore[attr-defined]
