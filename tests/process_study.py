"""Driving `newsbot run` processes as a user runs them, against the Discord emulator, and
counting what they posted: the pieces tests/fault_study.py and bench/scale_out.py share.

`Study` holds one emulator, a folder, the newsbot processes started from it and the servers
it added; a subclass says where the database is (SQLite file, PostgreSQL URL) and how to
write digest settings and read the ledger there. `tally` and `missing_stories` count a
channel's digest messages, duplicates and lost stories (pure); `Study.report` prints them per
channel with the ledger and a verdict. Nothing but 127.0.0.1 is contacted.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from bench.corpus import generate
from bot.sharding import shard_of
from tests.discord_emulator import DiscordEmulator, InteractionNotAnswered
from tests.discord_emulator.state import MANAGE_GUILD, Channel, Guild, Member

STORIES = 80
DIGEST_COUNT = 25  # /digest set offers 1-10; the table takes any positive count
HEADER_PREFIX = "Daily news"
FINAL_STATUSES = ("sent", "empty", "skipped", "failed")

# --- counting (pure) -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Posted:
    """One message the bot posted in a channel, as the emulator stored it."""

    nonce: str | None
    embeds: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class ChannelTally:
    """What one channel received: digest messages, story embeds, copies of each story/nonce."""

    digest_messages: int
    headers: int
    story_embeds: int
    stories: Mapping[str, int]
    """Story url -> how many embeds carried it."""
    nonces: Mapping[str, int]
    """Nonce -> how many messages were created with it."""

    @property
    def repeated(self) -> dict[str, int]:
        return {url: n for url, n in self.stories.items() if n > 1}

    @property
    def duplicates(self) -> int:
        """Extra copies: each story embed and each digest header beyond its first."""
        return sum(n - 1 for n in self.stories.values()) + max(0, self.headers - 1)


def is_header(embed: Mapping[str, Any]) -> bool:
    return str(embed.get("title") or "").startswith(HEADER_PREFIX) and not embed.get("url")


def tally(messages: Iterable[Posted]) -> ChannelTally:
    """Count a channel's digest messages (a header or a story embed), its story embeds (those
    linking a story) and the copies of each story url and each nonce."""
    digest_messages = headers = story_embeds = 0
    stories: Counter[str] = Counter()
    nonces: Counter[str] = Counter()
    for message in messages:
        linked = [str(e["url"]) for e in message.embeds if e.get("url")]
        header = sum(1 for e in message.embeds if is_header(e))
        if not linked and not header:
            continue
        digest_messages += 1
        headers += header
        story_embeds += len(linked)
        stories.update(linked)
        if message.nonce is not None:
            nonces[message.nonce] += 1
    return ChannelTally(digest_messages, headers, story_embeds, dict(stories), dict(nonces))


def missing_stories(planned_urls: Iterable[str], messages: Iterable[Posted]) -> list[str]:
    """Planned stories that no posted message mentions (as its link, or in the coverage a
    clustered story lists under it)."""
    posted = json.dumps([list(m.embeds) for m in messages])
    return [url for url in planned_urls if url not in posted]


# --- the world, the process, the database --------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """A study's outcome over all its servers."""

    duplicates: int
    """Extra copies of stories and digest headers, over all channels."""
    missing: int
    """Planned stories no message carried, over all channels."""
    channels_with_duplicates: int
    servers_without_digest: int
    servers_missing_stories: int


@dataclass(frozen=True)
class ShardAnswer:
    """/news on one shard: answered, and by how many sessions' worth of processes."""

    answered: bool
    sessions: int

    @property
    def ok(self) -> bool:
        return self.answered and self.sessions == 1


@dataclass
class Server:
    guild: Guild
    channel: Channel
    admin: Member


@dataclass
class Study:
    """One scenario's emulator, folder, database and newsbot processes. A subclass names the
    database: `database_env`, `_write_settings` (a thread) and `query`."""

    emu: DiscordEmulator
    repo: Path
    root: Path
    servers: list[Server] = field(default_factory=list)
    processes: list[asyncio.subprocess.Process] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    digest_count: int = DIGEST_COUNT

    @property
    def seeds(self) -> Path:
        return self.root / "seeds"

    def database_env(self) -> dict[str, str]:
        """The variables that point newsbot at the study's database."""
        raise NotImplementedError

    def env(self, **overrides: str) -> dict[str, str]:
        env = {
            **os.environ,
            "PYTHONPATH": str(self.repo),
            "DISCORD_TOKEN": self.emu.token,
            "DISCORD_API_BASE": self.emu.api_base,
            "DISCORD_GATEWAY_URL": self.emu.gateway_url,
            "NEWSBOT_SEEDS": str(self.seeds),
            "NEWSBOT_LOG_LEVEL": "INFO",
            **self.database_env(),
            **overrides,
        }
        env.pop("NEWSBOT_CONFIG", None)
        return env

    def add_servers(self, count: int, *, shard_count: int | None = None) -> None:
        """`count` servers with a #news channel and an admin; with `shard_count`, server n
        lands on shard n % shard_count, so that the shards get as many servers each."""
        for number in range(count):
            if shard_count is None:
                guild = self.emu.add_guild(f"Server {number}")
            else:
                guild = self.emu.add_guild(
                    f"Server {number}", shard=number % shard_count, shard_count=shard_count
                )
            channel = self.emu.add_channel(guild, "news")
            admin = self.emu.add_member(guild, "admin", permissions=MANAGE_GUILD)
            self.servers.append(Server(guild, channel, admin))

    async def cli(self, *args: str, **env: str) -> tuple[int, str]:
        """`python -m bot ARGS` to the end: exit code and output."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            *args,
            cwd=self.repo,
            env=self.env(**env),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await process.communicate()
        return process.returncode or 0, out.decode(errors="replace")

    async def start(self, **env: str) -> asyncio.subprocess.Process:
        """`python -m bot run` (`env` added to its environment), its output in a log file of
        its own."""
        log = self.root / f"newsbot-{len(self.processes) + 1}.log"
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "run",
                cwd=self.repo,
                env=self.env(**env),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.processes.append(process)
        self.logs.append(log)
        say(f"started newsbot #{len(self.processes)} (pid {process.pid}, log {log.name})")
        return process

    async def stop(self, process: asyncio.subprocess.Process, *, kill: bool = False) -> int:
        """SIGKILL, or SIGTERM and wait (SIGKILL after 30 s); the exit code."""
        if process.returncode is None:
            process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()
        how = "killed" if kill else "stopped"
        say(f"newsbot pid {process.pid} {how}: exit {process.returncode}")
        return process.returncode or 0

    async def kill_all(self) -> None:
        """Whatever is still running, at the end of a study (also after an error)."""
        for process in self.processes:
            if process.returncode is None:
                process.kill()
                await process.wait()

    async def load_seeds(self, stories: int = STORIES) -> None:
        """A synthetic seed folder, loaded with `python -m bot seeds load`."""
        generate(self.seeds, stories)
        code, out = await self.cli("seeds", "load")
        say(f"seeds load: exit {code}: {last_line(out)}")
        if code != 0:
            raise RuntimeError(f"seeds load failed: {out[-2000:]}")

    async def schedule(self, servers: Sequence[Server], at: datetime) -> None:
        """Write a digest for ``servers`` at ``at``'s minute (UTC), effective a minute before."""
        await self._write_settings(servers, at)
        say(f"{len(servers)} digest(s) due at {at:%H:%M} UTC, {self.digest_count} stories each")

    def settings_rows(self, servers: Sequence[Server], at: datetime) -> list[tuple[Any, ...]]:
        """digest_settings rows: guild_id, channel_id, local_time, timezone, topics, count,
        enabled, disabled_reason, effective_from."""
        effective_from = int((min(at, datetime.now(UTC)) - timedelta(minutes=1)).timestamp())
        return [
            (s.guild.id, s.channel.id, f"{at:%H:%M}", "UTC", "[]", self.digest_count, True, None,
             effective_from)
            for s in servers
        ]  # fmt: skip

    async def _write_settings(self, servers: Sequence[Server], at: datetime) -> None:
        raise NotImplementedError

    async def query(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        raise NotImplementedError

    async def ledger(self) -> list[dict[str, Any]]:
        return await self.query("SELECT * FROM digest_runs ORDER BY guild_id, local_date")

    async def wait_ledger(
        self, done: Callable[[list[dict[str, Any]]], bool], within: float, what: str
    ) -> bool:
        """Poll the ledger (the bot's state is not the emulator's: nothing wakes us)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if done(await self.ledger()):
                return True
            await asyncio.sleep(0.5)
        say(f"gave up after {within:.0f} s waiting for {what}")
        return False

    async def wait_posts(self, count: int, within: float, what: str) -> bool:
        """Until the bot created ``count`` channel messages in all (event-driven)."""
        try:
            await self.emu.wait_until(lambda: self.channel_posts() >= count, within, what)
        except TimeoutError as exc:
            say(str(exc))
            return False
        return True

    def channel_posts(self) -> int:
        return sum(len(self.posted(s.channel)) for s in self.servers)

    def posted(self, channel: Channel) -> list[Posted]:
        return [
            Posted(None if m.nonce is None else str(m.nonce), tuple(m.embeds))
            for m in self.emu.messages(channel)
            if m.source == "channel" and m.author_id == self.emu.bot_user.id
        ]

    async def stories_by_id(self) -> dict[int, dict[str, Any]]:
        rows = await self.query("SELECT id, url, title, source_path FROM stories")
        return {row["id"]: row for row in rows}

    async def wait_for_commands(self, within: float = 60) -> None:
        await self.emu.wait_until(
            lambda: any(c["name"] == "digest" for c in self.emu.registered_commands()),
            within,
            "the slash commands to be registered",
        )

    async def news_on_every_shard(self, shard_count: int) -> dict[int, ShardAnswer]:
        """One /news per shard, in a server of that shard: whether it was answered, and how
        many connected sessions run that shard (the emulator sends a server's interactions to
        its shard's sessions only, so with one session the answer came from its process)."""
        answers = {}
        for shard in range(shard_count):
            server = next(s for s in self.servers if shard_of(s.guild.id, shard_count) == shard)
            sessions = sum(1 for s in self.emu.sessions if s.shard_id == shard)
            handle = await self.emu.invoke(server.guild, server.channel, server.admin, "news")
            try:
                reply = await handle.response(timeout=10)
                answered = bool(reply.embeds or reply.content)
            except (TimeoutError, InteractionNotAnswered) as error:
                say(f"/news on shard {shard} was not answered: {error}")
                answered = False
            answers[shard] = ShardAnswer(answered, sessions)
        say(f"/news on each shard: {answers}")
        return answers

    # --- the report ------------------------------------------------------------------------------

    async def report(self, *, retired: Iterable[int] = (), log_lines: int = 12) -> Verdict:
        """Print the table, the ledger and the verdict, and return the verdict."""
        ledger = await self.ledger()
        stories = await self.stories_by_id()
        retired_ids = set(retired)
        planned: dict[int, list[int]] = {}
        for row in ledger:
            plan = json.loads(row["plan"] or "[]")
            planned.setdefault(row["channel_id"], []).extend(i for msg in plan for i in msg)
        duplicates = missing = 0
        rows = []
        for server in self.servers:
            messages = self.posted(server.channel)
            counted = tally(messages)
            urls = [
                stories[i]["url"]
                for i in planned.get(server.channel.id, [])
                if i in stories and i not in retired_ids
            ]
            unknown = [
                i
                for i in planned.get(server.channel.id, [])
                if i not in stories or i in retired_ids
            ]
            lost = missing_stories(urls, messages)
            duplicates += counted.duplicates
            missing += len(lost)
            rows.append((server, counted, lost, unknown))
        say("")
        say(f"{'channel':<12} {'POSTs':>5} {'digest msgs':>11} {'story embeds':>12} "
            f"{'repeated':>8} {'missing':>7}  nonce copies")  # fmt: skip
        say("(POSTs: message creations asked for, repeats answered from the nonce included)")
        shown = rows if len(rows) <= 10 else [r for r in rows if r[1].duplicates or r[2]]
        for server, counted, lost, unknown in shown:
            copies = {n: c for n, c in counted.nonces.items() if c > 1}
            note = f" (+{len(unknown)} planned stories retired or unknown)" if unknown else ""
            note += f" missing: {lost[:3]}" if lost else ""
            posts = len(self.emu.requests_to("POST", f"/channels/{server.channel.id}/messages"))
            say(
                f"{server.guild.name:<12} {posts:>5} {counted.digest_messages:>11} "
                f"{counted.story_embeds:>12} {len(counted.repeated):>8} {len(lost):>7}  "
                f"{copies or '-'}{note}"
            )
        if len(rows) > 10:
            with_dups = sum(1 for r in rows if r[1].duplicates)
            without = sum(1 for r in rows if not r[1].digest_messages)
            say(
                f"({len(rows)} channels: {with_dups} with duplicates, {without} without any "
                f"digest message; only channels with a problem are listed)"
            )
        say("")
        say("ledger (SELECT * FROM digest_runs; plan shown as stories per item):")
        troubled = {r[0].channel.id for r in rows if r[1].duplicates or r[2]}
        listed = ledger if len(ledger) <= 10 else [r for r in ledger if r["channel_id"] in troubled]
        for row in listed[:10]:
            plan = json.loads(row.get("plan") or "[]")
            shown_row = {**row, "plan": [len(m) for m in plan]}
            say(f"  {shown_row}")
        if len(ledger) > 10:
            kinds = Counter((r["status"], r["detail"]) for r in ledger)
            say(f"  ({len(ledger)} rows, listed above only for channels with a problem, at most"
                f" 10; by status and detail: {dict(kinds)})")  # fmt: skip
        if not ledger:
            say("  (no rows)")
        for log in self.logs:
            say(f"{log.name}: warnings and errors (last {log_lines}):")
            for line in notable_lines(log, log_lines):
                say(f"  {line}")
        say("")
        say(f"verdict: duplicates: {duplicates}, missing: {missing}")
        return Verdict(
            duplicates=duplicates,
            missing=missing,
            channels_with_duplicates=sum(1 for r in rows if r[1].duplicates),
            servers_without_digest=sum(1 for r in rows if not r[1].digest_messages),
            servers_missing_stories=sum(1 for r in rows if r[2]),
        )


@dataclass
class PostgresStudy(Study):
    """A study on a PostgreSQL database (`url`), which every process shares."""

    url: str = ""

    def database_env(self) -> dict[str, str]:
        return {"NEWSBOT_DATABASE_URL": self.url}

    async def _write_settings(self, servers: Sequence[Server], at: datetime) -> None:
        connection = await asyncpg.connect(self.url)
        try:
            await connection.executemany(
                "INSERT INTO digest_settings (guild_id, channel_id, local_time, timezone, topics,"
                " count, enabled, disabled_reason, effective_from)"
                " VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9)"
                " ON CONFLICT (guild_id) DO UPDATE SET channel_id = excluded.channel_id,"
                " local_time = excluded.local_time, timezone = excluded.timezone,"
                " topics = excluded.topics, count = excluded.count, enabled = excluded.enabled,"
                " disabled_reason = excluded.disabled_reason,"
                " effective_from = excluded.effective_from",
                self.settings_rows(servers, at),
            )
        finally:
            await connection.close()

    async def query(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """`sql` with `$n` parameters; JSON columns come back as text, as SQLite's do."""
        connection = await asyncpg.connect(self.url)
        try:
            return [dict(row) for row in await connection.fetch(sql, *args)]
        except asyncpg.PostgresError as exc:
            say(f"(reading the database failed: {exc})")
            return []
        finally:
            await connection.close()


def say(text: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {text}" if text else "", flush=True)


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def notable_lines(log: Path, limit: int) -> list[str]:
    if not log.exists():
        return ["(no log)"]
    lines = log.read_text(errors="replace").splitlines()
    notable = [
        line
        for line in lines
        if re.search(r"WARNING|ERROR|CRITICAL|Traceback|Error:|refus|lock", line)
        and "PyNaCl" not in line
        and "davey" not in line
    ]
    return [line[:300] for line in notable[-limit:]] or ["(none)"]


def final(rows: list[dict[str, Any]], expected: int) -> bool:
    return len(rows) >= expected and all(r["status"] in FINAL_STATUSES for r in rows)
