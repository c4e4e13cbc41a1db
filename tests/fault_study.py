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
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.discord_emulator import DiscordEmulator, InteractionHandle, InteractionNotAnswered
from tests.process_study import (
    Server,
    Study,
    final,
    last_line,
    say,
)

HERE_REPO = Path(__file__).resolve().parent.parent

# --- the SQLite database of one study ----------------------------------------------------------


@dataclass
class SqliteStudy(Study):
    """A study on a SQLite file under the study's folder (`db`)."""

    @property
    def db(self) -> Path:
        return self.root / "data" / "news.db"

    def database_env(self) -> dict[str, str]:
        return {"NEWSBOT_DB": str(self.db)}

    async def prepare(self, servers: int, *, due: int | None = None) -> None:
        """Seeds generated and loaded; one channel per server; the first ``due`` servers
        (default all) get a digest due now."""
        self.add_servers(servers)
        self.db.parent.mkdir(parents=True, exist_ok=True)
        await self.load_seeds()
        if due != 0:
            await self.schedule(self.servers[:due], datetime.now(UTC))

    async def _write_settings(self, servers: Sequence[Server], at: datetime) -> None:
        await asyncio.to_thread(self._write_settings_now, self.settings_rows(servers, at))

    def _write_settings_now(self, rows: list[tuple[Any, ...]]) -> None:
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
    study: SqliteStudy, answer_after: float
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


async def resume_after_edit(study: SqliteStudy) -> None:
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


async def db_unwritable(study: SqliteStudy) -> None:
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


async def kill_beyond_window(study: SqliteStudy) -> None:
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


async def second_instance(study: SqliteStudy) -> None:
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
    second = await study.start(NEWSBOT_DB=str(link))
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


async def db_deleted(study: SqliteStudy) -> None:
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


SCENARIOS: dict[str, Callable[[SqliteStudy], Awaitable[None]]] = {
    "resume-after-edit": resume_after_edit,
    "db-unwritable": db_unwritable,
    "kill-beyond-window": kill_beyond_window,
    "second-instance": second_instance,
    "db-deleted": db_deleted,
}


async def run(name: str, repo: Path) -> None:
    with tempfile.TemporaryDirectory(prefix=f"fault-study-{name}-") as tmp:
        async with DiscordEmulator() as emu:
            study = SqliteStudy(emu, repo, Path(tmp))
            say(f"scenario {name}: newsbot from {repo}, emulator at {emu.api_base}")
            try:
                await SCENARIOS[name](study)
            finally:
                await study.kill_all()
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
