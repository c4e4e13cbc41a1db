"""Fault study: `newsbot run` as a user runs it, against a local Discord that misbehaves.

    python -m tests.fault_study SCENARIO [--repo PATH]

A tool, not a test. It starts the Discord emulator (tests/discord_emulator) in its own event
loop on 127.0.0.1, generates a seed folder of synthetic stories (bench.corpus), loads it with
`python -m bot seeds load`, writes digest settings that are due at once into the database, and
runs `python -m bot run` as a subprocess (cwd and PYTHONPATH = --repo, default the checkout this
file is in, so an older checkout can be measured with the same tool). Each scenario then breaks
something, and prints per channel the digest messages, story embeds and stories posted more than
once, the ledger (`SELECT * FROM digest_runs`, the plan shown as stories per item) and a
one-line verdict "duplicates: N, missing: N". Nothing but 127.0.0.1 is contacted.

Scenarios:
  resume-after-edit   the bot is killed while message 1 is in flight; a story already sent is
                      retitled and a later one retired; `seeds load`; restart
  db-unwritable       the database refuses writes (chattr +i) for 3 minutes after message 0
  kill-beyond-window  100 servers, 300 ms answers, killed mid fan-out, restarted after the
                      emulator's (shortened, 20 s) nonce window and 90 s more
  second-instance     a second `newsbot run` on the same database through a symlink, and a
                      third after the lock file next to it is deleted
  db-deleted          the database file is deleted under the running bot; /digest set; restart
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.corpus import generate
from tests.discord_emulator import DiscordEmulator, InteractionHandle, InteractionNotAnswered
from tests.discord_emulator.state import MANAGE_GUILD, Channel, Guild, Member

HERE_REPO = Path(__file__).resolve().parent.parent
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


@dataclass
class Server:
    guild: Guild
    channel: Channel
    admin: Member


@dataclass
class Study:
    """One scenario's emulator, folder, database and newsbot processes."""

    emu: DiscordEmulator
    repo: Path
    root: Path
    servers: list[Server] = field(default_factory=list)
    processes: list[asyncio.subprocess.Process] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    @property
    def seeds(self) -> Path:
        return self.root / "seeds"

    @property
    def db(self) -> Path:
        return self.root / "data" / "news.db"

    def env(self, db: Path | None = None) -> dict[str, str]:
        env = {
            **os.environ,
            "PYTHONPATH": str(self.repo),
            "DISCORD_TOKEN": self.emu.token,
            "DISCORD_API_BASE": self.emu.api_base,
            "DISCORD_GATEWAY_URL": self.emu.gateway_url,
            "NEWSBOT_DB": str(db or self.db),
            "NEWSBOT_SEEDS": str(self.seeds),
            "NEWSBOT_LOG_LEVEL": "INFO",
        }
        env.pop("NEWSBOT_CONFIG", None)
        return env

    def add_servers(self, count: int) -> None:
        for number in range(count):
            guild = self.emu.add_guild(f"Server {number}")
            channel = self.emu.add_channel(guild, "news")
            admin = self.emu.add_member(guild, "admin", permissions=MANAGE_GUILD)
            self.servers.append(Server(guild, channel, admin))

    async def cli(self, *args: str) -> tuple[int, str]:
        """`python -m bot ARGS` to the end: exit code and output."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            *args,
            cwd=self.repo,
            env=self.env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await process.communicate()
        return process.returncode or 0, out.decode(errors="replace")

    async def start(self, db: Path | None = None) -> asyncio.subprocess.Process:
        """`python -m bot run`, its output in a log file of its own."""
        log = self.root / f"newsbot-{len(self.processes) + 1}.log"
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "run",
                cwd=self.repo,
                env=self.env(db),
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

    async def prepare(self, servers: int, *, due: int | None = None) -> None:
        """Seeds generated and loaded; one channel per server; the first ``due`` servers
        (default all) get a digest due now."""
        self.add_servers(servers)
        generate(self.seeds, STORIES)
        self.db.parent.mkdir(parents=True, exist_ok=True)
        code, out = await self.cli("seeds", "load")
        say(f"seeds load: exit {code}: {last_line(out)}")
        if due != 0:
            await self.schedule(self.servers[:due], datetime.now(UTC))

    async def schedule(self, servers: Sequence[Server], at: datetime) -> None:
        """Write a digest for ``servers`` at ``at``'s minute (UTC), effective a minute before."""
        await asyncio.to_thread(self._write_settings, servers, at)
        say(f"{len(servers)} digest(s) due at {at:%H:%M} UTC, {DIGEST_COUNT} stories each")

    def _write_settings(self, servers: Sequence[Server], at: datetime) -> None:
        effective_from = int((min(at, datetime.now(UTC)) - timedelta(minutes=1)).timestamp())
        rows = [
            (s.guild.id, s.channel.id, f"{at:%H:%M}", "UTC", "[]", DIGEST_COUNT, 1, None,
             effective_from)
            for s in servers
        ]  # fmt: skip
        db = sqlite3.connect(self.db, timeout=10)
        try:
            with db:
                db.executemany(
                    "INSERT OR REPLACE INTO digest_settings (guild_id, channel_id, local_time,"
                    " timezone, topics, count, enabled, disabled_reason, effective_from)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
        finally:
            db.close()

    async def query(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self._query, sql, args)

    def _query(self, sql: str, args: Sequence[Any]) -> list[dict[str, Any]]:
        if not self.db.exists():
            return []
        db = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)
        try:
            db.row_factory = sqlite3.Row
            return [dict(row) for row in db.execute(sql, tuple(args))]
        except sqlite3.Error as exc:
            say(f"(reading the database failed: {exc})")
            return []
        finally:
            db.close()

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

    # --- the report ------------------------------------------------------------------------------

    async def report(self, *, retired: Iterable[int] = (), log_lines: int = 12) -> tuple[int, int]:
        """Print the table, the ledger and the verdict; returns (duplicates, missing)."""
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
        return duplicates, missing


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


async def chattr(flag: str, paths: Iterable[Path], *more: str) -> tuple[int, str]:
    """Root ignores file modes: the immutable attribute (ext4, xfs) refuses writes to root too."""
    process = await asyncio.create_subprocess_exec(
        "chattr",
        flag,
        *more,
        *map(str, paths),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode(errors="replace").strip()


def retitle(path: Path, title: str) -> None:
    text = path.read_text(encoding="utf-8")
    path.write_text(
        re.sub(r"^title: .*$", f"title: {json.dumps(title)}", text, count=1, flags=re.M),
        encoding="utf-8",
    )


# --- scenarios -----------------------------------------------------------------------------------


async def message_1_in_flight(
    study: Study, answer_after: float
) -> tuple[Server, asyncio.subprocess.Process] | None:
    """One server's digest, started by newsbot, with message 0 posted and message 1 created on
    Discord but answered only `answer_after` s later; None (reported) if it never got there."""
    await study.prepare(1)
    [server] = study.servers
    process = await study.start()
    if not await study.wait_posts(1, 90, "digest message 0"):
        await study.stop(process, kill=True)
        await study.report()
        return None
    slow = study.emu.after_create("delay", delay=answer_after, channel=server.channel)
    say(f"message 0 created; message 1's creation will be answered after {answer_after:g} s")
    await study.emu.wait_until(lambda: slow.message_ids, 30, "message 1 to be created")
    return server, process


async def resume_after_edit(study: Study) -> None:
    started = await message_1_in_flight(study, answer_after=30)
    if started is None:
        return
    server, process = started
    await asyncio.sleep(0.5)
    await study.stop(process, kill=True)
    say("SIGKILL while message 1 was in flight (created on Discord, not yet answered)")

    [run] = await study.ledger()
    plan = json.loads(run["plan"])
    stories = await study.stories_by_id()
    say(f"ledger at the kill: status {run['status']}, sent_messages {run['sent_messages']}, "
        f"{len(plan)} items planned")  # fmt: skip
    by_url = {row["url"]: story_id for story_id, row in stories.items()}
    first, *_ = study.posted(server.channel)
    sent_story = next(by_url[str(e["url"])] for e in first.embeds if e.get("url") in by_url)
    posted = json.dumps([list(m.embeds) for m in study.posted(server.channel)])
    unsent = [i for item in plan for i in item if i in stories and stories[i]["url"] not in posted]
    retired = unsent[0]  # the first story of message 2: the messages after it re-pack
    lengthened = study.seeds / stories[sent_story]["source_path"]
    longer = stories[sent_story]["title"] + ", updated:" + " with much more detail" * 12
    retitle(lengthened, longer[:250])  # Discord's title limit is 256
    (study.seeds / stories[retired]["source_path"]).unlink()
    item = next(n for n, m in enumerate(plan) if retired in m)
    say(f"retitled story {sent_story} (sent in message 0); retired story {retired} "
        f"(planned as item {item}, not sent yet)")  # fmt: skip
    code, out = await study.cli("seeds", "load")
    say(f"seeds load: exit {code}: {last_line(out)}")

    restarted = await study.start()
    await study.wait_ledger(lambda rows: final(rows, 1), 150, "the ledger row to be final")
    await asyncio.sleep(2)
    await study.stop(restarted)
    await study.report(retired=[retired])


async def db_unwritable(study: Study) -> None:
    started = await message_1_in_flight(study, answer_after=3)
    if started is None:
        return
    _, process = started
    files = [p for p in (study.db, study.db.with_name(study.db.name + "-wal")) if p.exists()]
    # Root ignores chmod; the immutable attribute stops root too (ext4 here).
    code, out = await chattr("+i", files)
    say(f"message 0 sent, message 1 in flight: chattr +i {[p.name for p in files]}: "
        f"exit {code} {out}")  # fmt: skip
    try:
        await asyncio.sleep(180)
    finally:
        await chattr("-i", files)
    say("the database is writable again (chattr -i)")
    await study.wait_ledger(lambda rows: final(rows, 1), 180, "the ledger row to be final")
    await asyncio.sleep(2)
    alive = process.returncode is None
    say(f"newsbot still running after the fault: {alive}")
    await study.stop(process)
    await study.report(log_lines=20)


async def kill_beyond_window(study: Study) -> None:
    emu = study.emu
    await study.prepare(100)
    emu.after_create("delay", delay=0.3, times=1_000_000)
    process = await study.start()
    if await study.wait_posts(120, 180, "120 digest messages (mid fan-out)"):
        await study.stop(process, kill=True)
        say(f"SIGKILL mid fan-out, after {study.channel_posts()} messages")
    else:
        await study.stop(process, kill=True)
    emu.limits.nonce_window = 20
    say("the emulator's nonce window is now 20 s; waiting 95 s before the restart")
    await asyncio.sleep(95)
    restarted = await study.start()
    await study.wait_ledger(lambda rows: final(rows, 100), 240, "every ledger row to be final")
    await asyncio.sleep(2)
    await study.stop(restarted)
    await study.report()


async def second_instance(study: Study) -> None:
    emu = study.emu
    await study.prepare(2, due=1)
    _, second_server = study.servers
    # Slow answers keep a digest in progress while the other instances start.
    emu.after_create("delay", delay=2.0, times=1_000_000)
    first = await study.start()
    await study.wait_posts(1, 90, "the first instance's digest message 0")
    link_dir = study.root / "elsewhere"
    link_dir.mkdir()
    link = link_dir / "news.db"
    link.symlink_to(study.db)
    second = await study.start(db=link)
    await asyncio.sleep(15)
    say(f"second instance (symlinked path) still running after 15 s: {second.returncode is None}"
        f" (exit {second.returncode})")  # fmt: skip
    locks = sorted(study.db.parent.glob("*.lock")) + sorted(link_dir.glob("*.lock"))
    for path in locks:
        path.unlink()
    say(f"deleted {[str(p.relative_to(study.root)) for p in locks] or 'no lock files'}")
    third = await study.start()
    await asyncio.sleep(15)
    say(f"third instance (lock file deleted) still running after 15 s: {third.returncode is None}"
        f" (exit {third.returncode})")  # fmt: skip
    running = [p for p in (first, second, third) if p.returncode is None]
    # A digest that comes due while they all run: every running instance ticks at that minute.
    await study.schedule([second_server], datetime.now(UTC) + timedelta(minutes=1))
    say(f"{len(running)} instance(s) running when Server 1's digest comes due")
    await study.wait_ledger(lambda rows: final(rows, 2), 150, "both ledger rows to be final")
    await asyncio.sleep(5)
    for process in (first, second, third):
        await study.stop(process)
    say(f"gateway IDENTIFYs: {emu.gateway.identifies}")
    await study.report()


async def db_deleted(study: Study) -> None:
    emu = study.emu
    await study.prepare(1, due=0)
    [server] = study.servers
    process = await study.start()
    await emu.wait_for_ready(timeout=60)
    await study.wait_for_commands()
    removed = []
    for path in study.db.parent.glob(study.db.name + "*"):
        if not path.name.endswith(".lock"):
            path.unlink()
            removed.append(path.name)
    say(f"deleted {removed} under the running bot")
    when = (datetime.now(UTC) + timedelta(minutes=5)).strftime("%H:%M")
    options = {"channel": server.channel, "time": when, "timezone": "UTC"}
    handle = await emu.invoke(
        server.guild, server.channel, server.admin, "digest", options, subcommand="set"
    )
    say(f"/digest set time:{when} timezone:UTC -> {await answer_text(handle)}")
    await asyncio.sleep(90)
    say(f"after 90 s the database file exists again: {study.db.exists()}")
    code = await study.stop(process)
    say(f"exit code of the first run: {code}")
    restarted = await study.start()
    await emu.wait_until(lambda: emu.gateway.identifies >= 2 and emu.gateway.ready_sent, 60)
    await study.wait_for_commands()
    await asyncio.sleep(2)
    handle = await emu.invoke(server.guild, server.channel, server.admin, "digest", {},
                              subcommand="show")  # fmt: skip
    say(f"/digest show after the restart -> {await answer_text(handle)}")
    await study.stop(restarted)
    await study.report(log_lines=20)


async def answer_text(handle: InteractionHandle) -> str:
    """What the admin saw: the reply's content and embed titles/descriptions/fields."""
    try:
        reply = await handle.response(timeout=10)
    except (TimeoutError, InteractionNotAnswered) as exc:
        return f"no answer ({exc})"
    parts = [reply.content or ""]
    for embed in reply.embeds:
        parts += [str(embed.get("title") or ""), str(embed.get("description") or "")]
        parts += [f"{f['name']}: {f['value']}" for f in embed.get("fields", [])]
    text = " | ".join(p for p in parts if p)
    return f"{'(ephemeral) ' if reply.ephemeral else ''}{text}"


SCENARIOS: dict[str, Callable[[Study], Awaitable[None]]] = {
    "resume-after-edit": resume_after_edit,
    "db-unwritable": db_unwritable,
    "kill-beyond-window": kill_beyond_window,
    "second-instance": second_instance,
    "db-deleted": db_deleted,
}


async def run(name: str, repo: Path) -> None:
    with tempfile.TemporaryDirectory(prefix=f"fault-study-{name}-") as tmp:
        async with DiscordEmulator() as emu:
            study = Study(emu, repo, Path(tmp))
            say(f"scenario {name}: newsbot from {repo}, emulator at {emu.api_base}")
            try:
                await SCENARIOS[name](study)
            finally:
                for process in study.processes:
                    if process.returncode is None:
                        process.kill()
                        await process.wait()
                await chattr("-R", [Path(tmp)], "-i")
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument(
        "--repo", type=Path, default=HERE_REPO, help="the newsbot checkout to run (default: this)"
    )
    args = parser.parse_args()
    asyncio.run(run(args.scenario, args.repo.resolve()))


if __name__ == "__main__":
    main()
