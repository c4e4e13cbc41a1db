"""The throwaway PostgreSQL server the tests start themselves (tests/postgres.py), checked
through asyncpg directly."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from tests import postgres
from tests.postgres import PostgresNotInstalled, PostgresServer, start_or_give_up, when_unavailable

REPO = Path(__file__).resolve().parent.parent


async def tables(url: str) -> list[str]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        )
    finally:
        await connection.close()
    return [row["tablename"] for row in rows]


async def execute(url: str, statement: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def processes() -> dict[int, tuple[int, bytes]]:
    """pid -> (parent pid, command line) of every process on this machine."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # The parent pid follows the command name, which is in parentheses and may hold any
            # character; the state comes first.
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        found[int(entry.name)] = (parent, command)
    return found


def processes_using(folder: Path) -> set[int]:
    """The server whose command line names `folder` (its data and socket folder), and the
    processes it started."""
    table = processes()
    servers = {pid for pid, (_, command) in table.items() if str(folder).encode() in command}
    return servers | {pid for pid, (parent, _) in table.items() if parent in servers}


def still_running(pids: set[int]) -> set[int]:
    return {pid for pid in pids if Path(f"/proc/{pid}").exists()}


@pytest.fixture
def own_server() -> Iterator[PostgresServer]:
    """A server of the test's own, not the session's, for tests that stop it."""
    server = PostgresServer()
    start_or_give_up(server, os.environ)
    yield server
    server.stop()


async def test_each_test_gets_an_empty_database_for_the_newsbot_user(postgres_url: str) -> None:
    connection = await asyncpg.connect(postgres_url)
    try:
        user = await connection.fetchval("SELECT current_user")
        encoding = await connection.fetchval("SHOW server_encoding")
    finally:
        await connection.close()

    assert user == "newsbot"
    assert encoding == "UTF8"
    assert await tables(postgres_url) == []


async def test_each_database_is_new_and_empty(postgres_server: PostgresServer) -> None:
    first = await postgres_server.create_database()
    second = await postgres_server.create_database()
    await execute(first, "CREATE TABLE stories (id BIGINT)")

    assert first != second
    assert await tables(first) == ["stories"]
    assert await tables(second) == []
    await postgres_server.drop_database(first)
    await postgres_server.drop_database(second)


async def test_template_copies_carry_the_templates_tables(
    postgres_server: PostgresServer,
) -> None:
    prepared: list[str] = []

    async def migrate(url: str) -> None:
        prepared.append(url)
        await execute(url, "CREATE TABLE stories (id BIGINT); INSERT INTO stories VALUES (7)")

    template = await postgres_server.create_template("with_stories", migrate)
    again = await postgres_server.create_template("with_stories", migrate)
    one = await postgres_server.create_database(template=template)
    other = await postgres_server.create_database(template=again)
    await execute(one, "DROP TABLE stories")

    assert len(prepared) == 1
    assert await tables(one) == []
    assert await tables(other) == ["stories"]
    connection = await asyncpg.connect(other)
    try:
        assert await connection.fetchval("SELECT id FROM stories") == 7
    finally:
        await connection.close()
    await postgres_server.drop_database(one)
    await postgres_server.drop_database(other)


async def test_stop_leaves_no_process_and_no_files(own_server: PostgresServer) -> None:
    folder = own_server.folder
    assert folder is not None and own_server.running
    server_processes = processes_using(folder)  # the server and its background workers
    assert own_server.pid in server_processes and len(server_processes) > 1

    own_server.stop()
    own_server.stop()

    assert not own_server.running
    assert still_running(server_processes) == set()
    assert not folder.exists()


def test_a_server_left_running_stops_when_the_interpreter_exits(
    postgres_server: PostgresServer,
) -> None:
    if postgres_server.external_url is not None:
        pytest.skip("the tests use an existing server (NEWSBOT_TEST_DATABASE_URL)")
    script = (
        "from tests.postgres import PostgresServer\n"
        "server = PostgresServer()\n"
        "server.start()\n"
        "print(server.folder, flush=True)\n"
    )

    finished = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )

    folder = Path(finished.stdout.strip())
    assert folder.name.startswith("newsbot-pg-")
    assert not folder.exists()
    assert processes_using(folder) == set()


async def test_a_server_named_by_url_is_used_and_never_started_or_stopped(
    postgres_server: PostgresServer,
) -> None:
    existing = postgres_server.url("postgres")
    server = PostgresServer.from_environment({"NEWSBOT_TEST_DATABASE_URL": existing})

    server.start()

    async def migrate(url: str) -> None:
        await execute(url, "CREATE TABLE stories (id BIGINT)")

    assert server.folder is None and server.pid is None
    copy = await server.create_database(template=await server.create_template("shared", migrate))
    assert urlsplit(copy).netloc == urlsplit(existing).netloc
    assert await tables(copy) == ["stories"]
    await server.drop_database(copy)
    await asyncio.to_thread(server.stop)
    # The server still serves, without the template this run made.
    connection = await asyncpg.connect(existing)
    try:
        left = await connection.fetchval(
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'shared%'"
        )
    finally:
        await connection.close()
    assert left == 0
    assert PostgresServer.from_environment({}).external_url is None


def test_no_postgresql_skips_on_a_developers_machine() -> None:
    assert when_unavailable({}) == "skip"
    assert when_unavailable({"CI": ""}) == "skip"


def test_no_postgresql_fails_under_ci() -> None:
    assert when_unavailable({"CI": "true"}) == "fail"
    assert when_unavailable({"CI": "1"}) == "fail"


def test_missing_binaries_skip_the_test_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(postgres, "DEBIAN_BINARIES", tmp_path / "none")

    with pytest.raises(pytest.skip.Exception, match="PostgreSQL is not installed"):
        start_or_give_up(PostgresServer(), {})


def test_missing_binaries_fail_the_test_under_ci(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(postgres, "DEBIAN_BINARIES", tmp_path / "none")

    with pytest.raises(pytest.fail.Exception, match="CI must run the PostgreSQL tests"):
        start_or_give_up(PostgresServer(), {"CI": "true"})


def test_binaries_are_the_newest_installed_version_without_pg_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for version in ("9", "13", "15"):
        folder = tmp_path / version / "bin"
        folder.mkdir(parents=True)
        (folder / "initdb").touch()
        if version != "15":
            (folder / "postgres").touch()
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    monkeypatch.setattr(postgres, "DEBIAN_BINARIES", tmp_path)

    # 15 lacks the server itself, so 13 is the newest complete one (9 sorts after 13 as text).
    assert postgres.find_binaries() == tmp_path / "13" / "bin"


def test_missing_binaries_are_reported_as_such(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(postgres, "DEBIAN_BINARIES", tmp_path / "none")

    with pytest.raises(PostgresNotInstalled, match="install the server package"):
        postgres.find_binaries()
