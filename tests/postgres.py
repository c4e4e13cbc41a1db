"""A throwaway PostgreSQL server for the tests, started and stopped by the tests themselves.

`PostgresServer.start()` initialises a cluster in a temporary folder and starts it on a free
port of 127.0.0.1, tuned for speed over durability (the data lives for one test run);
`stop()` shuts it down and deletes the folder, also at interpreter exit. Each test gets a
database of its own (`create_database`), copied from a prepared template when it needs a
migrated schema (`create_template`): a copy takes milliseconds where migrating takes longer.

With NEWSBOT_TEST_DATABASE_URL set (a server where the test user may create databases),
that server is used instead: nothing is started or stopped, only the databases the tests
created are dropped.

The fixtures (tests/conftest.py) start one server per test session; when PostgreSQL is not
installed they skip the tests that need it, except under CI, where they fail.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

log = logging.getLogger(__name__)

EXTERNAL_URL_VARIABLE = "NEWSBOT_TEST_DATABASE_URL"
USER = "newsbot"
# The account PostgreSQL's programs run as when the tests run as root (they refuse root).
SYSTEM_USER = "postgres"
DEBIAN_BINARIES = Path("/usr/lib/postgresql")
# The database to connect to for CREATE/DROP DATABASE on a server this module started.
MAINTENANCE_DATABASE = "postgres"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
# The data lives for one test run: durability would only cost time.
SPEED_OVER_DURABILITY = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")


class PostgresNotInstalled(RuntimeError):
    """No PostgreSQL server programs (initdb, postgres) were found on this machine."""


def when_unavailable(environ: Mapping[str, str]) -> Literal["skip", "fail"]:
    """What the tests that need PostgreSQL do when it is not installed: skip on a developer's
    machine, fail under CI, where a skipped test would hide that the backend went untested."""
    return "fail" if environ.get("CI", "").strip() else "skip"


def start_or_give_up(server: PostgresServer, environ: Mapping[str, str]) -> None:
    """Start `server`; without PostgreSQL installed, skip the test asking for it (or fail it
    under CI, see when_unavailable). Any other failure to start is an error everywhere."""
    try:
        server.start()
    except PostgresNotInstalled as missing:
        if when_unavailable(environ) == "fail":
            pytest.fail(f"{missing}; CI must run the PostgreSQL tests", pytrace=False)
        pytest.skip(str(missing))


def find_binaries() -> Path:
    """The folder holding initdb and postgres: `pg_config --bindir`, else the newest
    /usr/lib/postgresql/<version>/bin (Debian keeps them off the PATH)."""
    for folder in [*_pg_config_bindir(), *_debian_bindirs()]:
        if (folder / "initdb").is_file() and (folder / "postgres").is_file():
            return folder
    raise PostgresNotInstalled(
        "PostgreSQL is not installed (no initdb and postgres in `pg_config --bindir` or "
        f"{DEBIAN_BINARIES}/*/bin); install the server package (Debian: postgresql)"
    )


def _pg_config_bindir() -> list[Path]:
    # pg_config alone (from libpq-dev) may name a folder without the server: checked above.
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return []
    try:
        finished = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return [Path(finished.stdout.strip())]


def _debian_bindirs() -> list[Path]:
    versions = [p for p in DEBIAN_BINARIES.glob("*/bin") if p.parent.name.isdigit()]
    return sorted(versions, key=lambda path: int(path.parent.name), reverse=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def with_database(url: str, database: str) -> str:
    """`url` pointing at another database of the same server."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


def _quoted(name: str) -> str:
    # Names are made here or by the tests; refuse anything that would need real quoting.
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise ValueError(f"not a plain database name: {name!r}")
    return f'"{name}"'


def _drop(database: str) -> str:
    # FORCE: a test that failed before closing its connections still gets its database dropped.
    return f"DROP DATABASE IF EXISTS {_quoted(database)} WITH (FORCE)"


def _as_account(name: str | None) -> dict[str, Any]:
    """subprocess arguments that run a program as `name` (None: as this process's user)."""
    if name is None:
        return {}
    return {"user": name, "group": pwd.getpwnam(name).pw_gid, "extra_groups": []}


class PostgresServer:
    """One PostgreSQL server for a test session: started here, or an existing one at
    `external_url` (then never started or stopped by this object)."""

    def __init__(self, external_url: str | None = None) -> None:
        self.external_url = external_url
        self.folder: Path | None = None
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        # Tells this run's databases from other runs' on a shared external server.
        self._run = secrets.token_hex(4)
        self._created = 0
        # Template name as the caller gave it -> the database holding it.
        self._templates: dict[str, str] = {}
        self._stopped = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> PostgresServer:
        return cls(environ.get(EXTERNAL_URL_VARIABLE) or None)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Start the server and wait until it accepts connections (blocks: about half a
        second, once per test session). Raises PostgresNotInstalled without the programs."""
        if self._process is not None or self._stopped:
            return
        if self.external_url is not None:
            atexit.register(self.stop)
            return
        binaries = find_binaries()
        run_as = SYSTEM_USER if os.geteuid() == 0 else None
        self.folder = Path(tempfile.mkdtemp(prefix="newsbot-pg-"))
        atexit.register(self.stop)
        try:
            if run_as is not None:
                account = pwd.getpwnam(run_as)
                os.chown(self.folder, account.pw_uid, account.pw_gid)
            self._initdb(binaries, run_as)
            self.port = free_port()
            self._process = self._spawn_postgres(binaries, run_as)
            self._wait_until_ready(binaries)
        except BaseException:
            self.stop()
            raise
        log.info("PostgreSQL started on 127.0.0.1:%s in %s", self.port, self.folder)

    def stop(self) -> None:
        """Fast shutdown, then delete the folder; does nothing the second time. On an external
        server: drop the templates this run made (each test's database is dropped by its
        fixture)."""
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        if self.external_url is not None:
            if self._templates:
                _run_to_completion(self._drop_templates())
            return
        if self._process is not None:
            _shut_down(self._process)
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str) -> str:
        if self.external_url is not None:
            return with_database(self.external_url, database)
        if self.port is None:
            raise RuntimeError("the PostgreSQL server is not started")
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    async def create_database(self, template: str | None = None) -> str:
        """The URL of a new database: empty, or a copy of `template` (a name given to
        create_template, or any database on the server no one is connected to)."""
        self._created += 1
        name = f"newsbot_test_{self._run}_{self._created}"
        source = self._templates.get(template, template) if template is not None else None
        copy = f" TEMPLATE {_quoted(source)}" if source is not None else ""
        await self._admin(f"CREATE DATABASE {_quoted(name)}{copy}")
        return self.url(name)

    async def create_template(self, name: str, prepare: Callable[[str], Awaitable[None]]) -> str:
        """A database made once per run and prepared by `prepare(url)` (e.g. migrated), for
        create_database(template=name); returns `name`. `prepare` must close its connections:
        PostgreSQL copies only a database no one is connected to."""
        if name in self._templates:
            return name
        database = f"{name}_{self._run}"
        await self._admin(f"CREATE DATABASE {_quoted(database)}")
        try:
            await prepare(self.url(database))
            # Marked as a template, and closed to connections so that no test changes it.
            await self._admin(
                f"ALTER DATABASE {_quoted(database)} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"
            )
        except BaseException:
            await self._admin(_drop(database))
            raise
        self._templates[name] = database
        return name

    async def drop_database(self, url: str) -> None:
        """Drop the database of `url`, closing any connection a test left open."""
        await self._admin(_drop(urlsplit(url).path.lstrip("/")))

    async def _drop_templates(self) -> None:
        for database in self._templates.values():
            # PostgreSQL refuses to drop a database marked as a template.
            await self._admin(f"ALTER DATABASE {_quoted(database)} WITH IS_TEMPLATE false")
            await self._admin(_drop(database))

    async def _admin(self, statement: str) -> None:
        # A connection per statement: each test runs on an event loop of its own, and a
        # connection belongs to the loop that opened it (CREATE and DROP DATABASE cannot share
        # a query string either: they refuse to run in the transaction it implies).
        admin_url = self.external_url or self.url(MAINTENANCE_DATABASE)
        connection = await asyncpg.connect(admin_url)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    def _initdb(self, binaries: Path, run_as: str | None) -> None:
        assert self.folder is not None
        command = [
            str(binaries / "initdb"),
            f"--pgdata={self.folder / 'data'}",
            f"--username={USER}",
            "--auth=trust",
            "--encoding=UTF8",
            # Not C: a C locale upper/lower-cases ASCII letters only.
            "--locale=C.UTF-8",
            "--no-sync",
        ]
        finished = subprocess.run(
            command, capture_output=True, text=True, timeout=120, check=False, **_as_account(run_as)
        )
        if finished.returncode != 0:
            raise RuntimeError(f"initdb failed: {finished.stderr.strip() or finished.stdout}")

    def _spawn_postgres(self, binaries: Path, run_as: str | None) -> subprocess.Popen[bytes]:
        assert self.folder is not None and self.port is not None
        settings = [arg for setting in SPEED_OVER_DURABILITY for arg in ("-c", setting)]
        command = [
            str(binaries / "postgres"),
            "-D",
            str(self.folder / "data"),
            "-k",
            str(self.folder),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            *settings,
        ]
        with (self.folder / "server.log").open("wb") as output:
            # A session of its own: Ctrl-C on the tests reaches pytest, which stops the server
            # in order, rather than the server directly.
            return subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **_as_account(run_as),
            )

    def _wait_until_ready(self, binaries: Path) -> None:
        assert self._process is not None and self.folder is not None
        deadline = time.monotonic() + START_TIMEOUT
        ready = [str(binaries / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"PostgreSQL did not start: {self._log_tail()}")
            if subprocess.run(ready, timeout=10, check=False).returncode == 0:
                return
            time.sleep(0.05)
        raise RuntimeError(f"PostgreSQL did not accept connections in {START_TIMEOUT:.0f} s")

    def _log_tail(self) -> str:
        assert self.folder is not None
        try:
            lines = (self.folder / "server.log").read_text(errors="replace").splitlines()
        except OSError:
            return "(no server log)"
        return " | ".join(lines[-5:])


def _shut_down(process: subprocess.Popen[bytes]) -> None:
    """SIGINT is PostgreSQL's fast shutdown: clients disconnected, no waiting for them."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        log.warning("PostgreSQL (pid %s) ignored a fast shutdown; killing it", process.pid)
        # The server's own processes share its session, so its group is the whole server.
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _run_to_completion(work: Coroutine[Any, Any, None]) -> None:
    """Run `work` from synchronous code (a fixture's teardown, atexit), even when an event
    loop is running in this thread: on a thread of its own."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, work).result()
