"""The newsbot command line: check and load seeds, and read the news in the terminal.

Every error ends in one line on stderr, never a traceback. Exit codes: 0 done; 1 `seeds check`
rejected a file; 2 a mistake or a problem the user can fix (bad arguments, missing folder or
database, bad config, a busy database, Discord refusing a request); 3 Discord cannot be reached
or is failing (try again later); 70 a bug in newsbot (the traceback is logged at DEBUG);
130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any, NoReturn, TextIO

import aiohttp
import discord

from bot import command_sync, config, version
from bot.app import NewsBot, invite_url, use_endpoints
from bot.digest import parse_max_age, too_old_note
from bot.errors import DiscordUnavailable, SetupError, UserError
from bot.models import DigestSettings, SeedResult, Story
from bot.poster import select_digest
from bot.reload import ReloadReport, SeedReloader, check_folder
from bot.store import NoDatabase, Store, create_store
from bot.topics import suggest_topics

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_USAGE = 2
EXIT_DISCORD = 3
# sysexits.h EX_SOFTWARE: an internal software error (a bug), told apart from the rest.
EXIT_BUG = 70
EXIT_INTERRUPTED = 130

# Discord's JSON error code for a server the bot is not in (with 403 Forbidden).
MISSING_ACCESS = 50001
# Gateway close code: authentication failed (the token was revoked after login).
AUTHENTICATION_FAILED = 4004


class Parser(argparse.ArgumentParser):
    """argparse with one-line mistakes, like every other error of newsbot."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


@dataclass(frozen=True, slots=True)
class Context:
    settings: config.Settings
    out: TextIO


Command = Callable[[argparse.Namespace, Context], Awaitable[int]]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="newsbot", description="A Discord bot that delivers news.")
    parser.add_argument(
        "--config", type=Path, help="config file (default: $NEWSBOT_CONFIG or config/newsbot.yaml)"
    )
    parser.add_argument("--version", action="version", version=f"newsbot {version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the Discord bot (token from DISCORD_TOKEN)")
    run.set_defaults(handler=run_bot)
    sync = commands.add_parser("sync", help="register the slash commands with Discord now")
    sync.add_argument(
        "--guild", type=_snowflake, metavar="ID", help="only in this server (instant)"
    )
    sync.set_defaults(handler=sync_commands)

    seeds = commands.add_parser("seeds", help="check or load seed files")
    seed_commands = seeds.add_subparsers(dest="seeds_command", required=True, metavar="ACTION")
    check = seed_commands.add_parser("check", help="validate seed files without writing anything")
    check.add_argument("path", nargs="?", type=Path, help="seed folder (default: from config)")
    check.add_argument("--json", action="store_true", help="print the verdict per file as JSON")
    check.set_defaults(handler=seeds_check)
    load = seed_commands.add_parser("load", help="load seed files into the database")
    load.add_argument("path", nargs="?", type=Path, help="seed folder (default: from config)")
    load.add_argument("--json", action="store_true", help="print the report as JSON")
    load.set_defaults(handler=seeds_load)

    news = commands.add_parser("news", help="the latest stories (the offline twin of /news)")
    news.add_argument("--topic", help="only stories on this topic (any case)")
    news.add_argument("--query", help="only stories whose title or excerpt has these words")
    news.add_argument("--limit", type=_limit, default=5, help="how many stories (1-100, default 5)")
    news.add_argument("--json", action="store_true", help="print the stories as JSON")
    news.set_defaults(handler=show_news)

    digest = commands.add_parser("digest", help="daily digests")
    digest_commands = digest.add_subparsers(dest="digest_command", required=True, metavar="ACTION")
    preview = digest_commands.add_parser(
        "preview", help="what a digest would contain now (the twin of /digest preview)"
    )
    preview.add_argument("--topics", nargs="+", metavar="TOPIC", help="only these topics")
    preview.add_argument("--count", type=_count, default=5, help="how many stories (1-10)")
    preview.add_argument(
        "--max-age",
        type=_max_age,
        metavar="AGE",
        help="leave out stories older than this, e.g. 24h, 7d or off "
        "(default: digest.max_age_days)",
    )
    preview.set_defaults(handler=digest_preview)

    topics = commands.add_parser("topics", help="topics with story counts (the twin of /topics)")
    topics.add_argument("--json", action="store_true", help="print the topics as JSON")
    topics.set_defaults(handler=show_topics)
    return parser


def _whole_number(text: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"must be between {low} and {high}")
    return value


def _limit(text: str) -> int:
    return _whole_number(text, 1, 100)


def _count(text: str) -> int:
    return _whole_number(text, 1, 10)


def _snowflake(text: str) -> int:
    return _whole_number(text, 1, 2**64 - 1)


def _max_age(text: str) -> timedelta:
    try:
        return parse_max_age(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:  # --help, --version, or a mistake argparse has already shown
        return done.code if isinstance(done.code, int) else EXIT_USAGE
    stdout = out or sys.stdout
    try:
        settings = config.load(args.config)
        # Terminal commands print their own results; logs there are for problems (or DEBUG).
        quiet = args.command != "run" and settings.log_level != "DEBUG"
        config.configure_logging("WARNING" if quiet else settings.log_level)
        handler: Command = args.handler
        return asyncio.run(handler(args, Context(settings, stdout)))
    except (UserError, SetupError) as error:
        return _fail(str(error), EXIT_USAGE)
    except DiscordUnavailable as error:
        return _fail(str(error), EXIT_DISCORD)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`newsbot news | head`): not an error. Point stdout at devnull
        # so the interpreter's final flush does not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as error:
        # The file system said no (permissions, a full disk): the machine's, not newsbot's.
        where = f": {error.filename}" if error.filename else ""
        return _fail(f"{error.strerror or _one_line(error)}{where}", EXIT_USAGE)
    except Exception as error:
        # A bug. One line like every other error; the traceback is there for who asks for it.
        log.debug("unexpected error", exc_info=True)
        return _fail(
            f"unexpected {type(error).__name__}: {_one_line(error)} (a bug in newsbot; "
            "NEWSBOT_LOG_LEVEL=DEBUG shows the traceback)",
            EXIT_BUG,
        )


def _fail(message: str, code: int) -> int:
    print(f"newsbot: error: {_one_line(message)}", file=sys.stderr)
    return code


def _one_line(error: object) -> str:
    return " ".join(str(error).split()) or type(error).__name__


@asynccontextmanager
async def opened_store(settings: config.Settings, *, create: bool = True) -> AsyncIterator[Store]:
    """The configured store, open. Commands that only read pass create=False: a missing
    database is then a one-line pointer to `newsbot seeds load`, not a new empty file."""
    store = create_store(settings.database, create=create)
    try:
        await store.open()
    except NoDatabase as error:
        raise UserError(f"{error}: run `newsbot seeds load` first") from None
    try:
        yield store
    finally:
        await store.close()


# --- Discord ----------------------------------------------------------------------------------

MISSING_TOKEN = (
    "DISCORD_TOKEN is not set: create an application at https://discord.com/developers/"
    "applications, add a Bot, copy its token into DISCORD_TOKEN, and invite it with the scopes "
    "'bot applications.commands' and the permissions View Channels, Send Messages and Embed "
    "Links (the README has the invite link)"
)
REJECTED_TOKEN = (
    "Discord rejected the token in DISCORD_TOKEN: reset it in the Developer Portal (your "
    "application, Bot, Reset Token) and set DISCORD_TOKEN to the new one"
)


def _build_bot(settings: config.Settings, *, serving: bool = True) -> NewsBot:
    store = create_store(settings.database)
    reloader = SeedReloader(
        store,
        settings.seeds.folder,
        max_file_bytes=settings.seeds.max_file_bytes,
        workers=settings.seeds.workers,
    )
    return NewsBot(
        settings, store, reloader, reload_seeds_at_start=serving, schedule_digests=serving
    )


def _token(settings: config.Settings) -> str:
    if settings.discord_token is None:
        raise UserError(MISSING_TOKEN)
    return settings.discord_token.reveal()


@contextmanager
def discord_errors() -> Iterator[None]:
    """Discord's failures as one-line errors: refusals are the user's to fix (exit 2), an
    unreachable or failing Discord is worth another try later (exit 3)."""
    try:
        yield
    except discord.LoginFailure:
        raise UserError(REJECTED_TOKEN) from None
    except discord.PrivilegedIntentsRequired:
        raise UserError("Discord refused an intent newsbot did not ask for") from None
    except discord.ConnectionClosed as error:
        if error.code == AUTHENTICATION_FAILED:
            raise UserError(REJECTED_TOKEN) from None
        raise DiscordUnavailable(
            f"Discord closed the gateway connection (code {error.code}: {error.reason or 'none'})"
        ) from None
    except discord.DiscordServerError as error:
        raise DiscordUnavailable(
            f"Discord is failing ({_one_line(error)}); try again later"
        ) from None
    except discord.HTTPException as error:
        raise UserError(f"Discord refused the request: {_one_line(error)}") from None
    except (aiohttp.ClientError, OSError, TimeoutError, discord.GatewayNotFound) as error:
        raise DiscordUnavailable(
            f"cannot reach Discord at {discord.http.Route.BASE}: {_one_line(error)}"
        ) from None


async def run_bot(args: argparse.Namespace, context: Context) -> int:
    """Run until SIGINT or SIGTERM, then close the gateway and the database and exit 0."""
    token = _token(context.settings)
    use_endpoints(context.settings.discord)
    bot = _build_bot(context.settings)
    loop = asyncio.get_running_loop()
    stopping: list[asyncio.Task[None]] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, lambda: stopping.append(loop.create_task(bot.close())))
    try:
        with discord_errors():
            await bot.start(token)
    finally:
        if not bot.is_closed():
            await bot.close()
        await asyncio.gather(*stopping)
    return EXIT_OK


async def sync_commands(args: argparse.Namespace, context: Context) -> int:
    token = _token(context.settings)
    use_endpoints(context.settings.discord)
    # This command decides what gets synced, so the start-up sync policy stays out of it.
    never = replace(context.settings.discord, sync_commands="never")
    bot = _build_bot(replace(context.settings, discord=never), serving=False)
    try:
        with discord_errors():
            # login() is REST only (no gateway session) and runs setup_hook: store and cogs.
            await bot.login(token)
            try:
                count = await command_sync.sync(bot.tree, bot.store, args.guild)
            except discord.Forbidden as error:
                if args.guild is None or error.code != MISSING_ACCESS:
                    raise
                raise UserError(_not_in_server(args.guild, bot.application_id)) from None
    finally:
        await bot.close()
    where = f"server {args.guild}" if args.guild else "all servers (may take a while to show)"
    print(f"Synced {count} slash commands to {where}.", file=context.out)
    return EXIT_OK


def _not_in_server(guild_id: int, application_id: int | None) -> str:
    invite = f"invite it with {invite_url(application_id)}" if application_id else "invite it"
    return f"newsbot is not in server {guild_id}: {invite}, or sync everywhere without --guild"


# --- seeds ------------------------------------------------------------------------------------


async def seeds_check(args: argparse.Namespace, context: Context) -> int:
    settings = context.settings.seeds
    folder = args.path or settings.folder
    results, report = await check_folder(
        folder, max_file_bytes=settings.max_file_bytes, workers=settings.workers
    )
    duplicates = {duplicate.source: duplicate.kept for duplicate in report.duplicates}
    rows = [_check_row(result, duplicates.get(source)) for source, result in results.items()]
    if args.json:
        _print_json(
            context.out, {"folder": str(folder), "summary": _check_summary(rows), "files": rows}
        )
    else:
        for row in rows:
            _print_check_row(context.out, row)
        summary = _check_summary(rows)
        print(
            f"{summary['files']} files: {summary['ok']} ok, {summary['duplicate']} duplicate, "
            f"{summary['rejected']} rejected",
            file=context.out,
        )
    return EXIT_REJECTED if report.rejected else EXIT_OK


def _check_row(result: SeedResult, duplicate_of: str | None) -> dict[str, Any]:
    status = "rejected" if not result.ok else "duplicate" if duplicate_of else "ok"
    row: dict[str, Any] = {
        "file": result.source,
        "status": status,
        "story_id": _json_id(result.story.id) if result.story else None,
        "reasons": [str(problem) for problem in result.errors],
        "warnings": [str(problem) for problem in result.warnings],
    }
    if duplicate_of:
        row["duplicate_of"] = duplicate_of
    return row


def _check_summary(rows: list[dict[str, Any]]) -> dict[str, int]:
    counts = {"files": len(rows), "ok": 0, "duplicate": 0, "rejected": 0}
    for row in rows:
        counts[row["status"]] += 1
    return counts


def _print_check_row(out: TextIO, row: dict[str, Any]) -> None:
    if row["status"] == "rejected":
        print(f"REJECTED  {row['file']}: {'; '.join(row['reasons'])}", file=out)
    elif row["status"] == "duplicate":
        print(
            f"duplicate {row['file']}: same story as {row['duplicate_of']}, which is kept", file=out
        )
    else:
        print(f"ok        {row['file']}", file=out)
    for warning in row["warnings"]:
        print(f"          warning: {warning}", file=out)


async def seeds_load(args: argparse.Namespace, context: Context) -> int:
    settings = context.settings
    folder = args.path or settings.seeds.folder
    async with opened_store(settings) as store:
        reloader = SeedReloader(
            store,
            folder,
            max_file_bytes=settings.seeds.max_file_bytes,
            workers=settings.seeds.workers,
        )
        report = await reloader.reload()
        total = await store.story_count()
    if args.json:
        _print_json(context.out, _report_json(report, total))
    else:
        _print_report(context.out, report, total)
    return EXIT_OK


def _report_json(report: ReloadReport, total: int) -> dict[str, Any]:
    def changes(items: Sequence[Any]) -> list[dict[str, Any]]:
        return [
            {"story_id": _json_id(c.story_id), "file": c.source, "title": c.title} for c in items
        ]

    return {
        "folder": report.folder,
        "stories": total,
        "added": changes(report.added),
        "updated": changes(report.updated),
        "unchanged": report.unchanged,
        "retired": changes(report.retired),
        "rejected": [
            {"file": r.source, "reason": r.reason, "kept_last_good": r.kept_last_good}
            for r in report.rejected
        ],
        "duplicates": [{"file": d.source, "kept": d.kept} for d in report.duplicates],
        "warnings": [
            {"file": source, "warning": str(problem)} for source, problem in report.warnings
        ],
    }


def _print_report(out: TextIO, report: ReloadReport, total: int) -> None:
    print(f"Loaded {report.folder}: {report.summary()}; {total} stories stored.", file=out)
    for label, items in (
        ("added", report.added),
        ("updated", report.updated),
        ("retired", report.retired),
    ):
        for change in items:
            print(f"  {label:8} {change.source}: {change.title}", file=out)
    for rejection in report.rejected:
        kept = " (its last good version stays loaded)" if rejection.kept_last_good else ""
        print(f"  rejected {rejection.source}: {rejection.reason}{kept}", file=out)
    for duplicate in report.duplicates:
        print(
            f"  duplicate {duplicate.source}: same story as {duplicate.kept}, which is kept",
            file=out,
        )
    for source, problem in report.warnings:
        print(f"  warning  {source}: {problem}", file=out)


# --- reading ----------------------------------------------------------------------------------


async def show_news(args: argparse.Namespace, context: Context) -> int:
    async with opened_store(context.settings, create=False) as store:
        topic_name = await _resolve_topic(store, args.topic) if args.topic else None
        stories = await store.latest(args.limit, topic=topic_name, query=args.query)
    if args.json:
        _print_json(context.out, [story_json(story) for story in stories])
        return EXIT_OK
    if not stories:
        print("No stories match.", file=context.out)
    for story in stories:
        provider = story.provider.name if story.provider else "unknown outlet"
        when = story.published_at.strftime("%Y-%m-%d %H:%M UTC")
        print(f"{story.title}\n  {provider} · {when}\n  {story.url}\n", file=context.out)
    return EXIT_OK


async def _resolve_topic(store: Store, name: str) -> str:
    topic = await store.topic(name)
    if topic is not None:
        return topic.name
    close = suggest_topics(name, [known.name for known in await store.topics()])
    hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
    raise UserError(f"no topic {name!r}; {hint}`newsbot topics` lists them")


async def show_topics(args: argparse.Namespace, context: Context) -> int:
    async with opened_store(context.settings, create=False) as store:
        topics = await store.topics()
    if args.json:
        _print_json(context.out, [{"name": t.name, "stories": t.count} for t in topics])
        return EXIT_OK
    if not topics:
        print("No topics yet: load seeds with `newsbot seeds load`.", file=context.out)
    for topic in topics:
        print(f"{topic.count:6}  {topic.name}", file=context.out)
    return EXIT_OK


async def digest_preview(args: argparse.Namespace, context: Context) -> int:
    async with opened_store(context.settings, create=False) as store:
        names = [name.strip() for given in args.topics or () for name in given.split(",")]
        topics = tuple([await _resolve_topic(store, name) for name in names if name])
        # Channel 0 has received nothing, so every stored story is a candidate.
        settings = DigestSettings(0, 0, time(0), "UTC", topics, args.count, max_age=args.max_age)
        default_age = timedelta(days=context.settings.digest.max_age_days)
        selection = await select_digest(store, settings, datetime.now(UTC), default_age)
    # The very embeds /digest preview shows, as text: the two previews cannot disagree.
    header, *items = [embed for embeds, _ in selection.messages for embed in embeds]
    print(header.title, file=context.out)
    print(header.description, file=context.out)
    note = too_old_note(selection.max_age, selection.too_old, selection.too_old_exact)
    if note:
        print(note, file=context.out)
    print(file=context.out)
    if not items:
        print("Nothing to post: no stories match.", file=context.out)
    for position, embed in enumerate(items, 1):
        print(f"{position}. {embed.title}", file=context.out)
        outlet = embed.author.name or "unknown outlet"
        published = f"{embed.timestamp:%Y-%m-%d %H:%M} UTC" if embed.timestamp else "undated"
        print(f"   {outlet} · {published} · {embed.url}", file=context.out)
        for field in embed.fields:
            if field.name == "Also covered by" and field.value:
                for line in field.value.splitlines():
                    print(f"   also covered by {line}", file=context.out)
        print(file=context.out)
    return EXIT_OK


def story_json(story: Story) -> dict[str, Any]:
    """A story as JSON: its fields, topics, lead image and related links (never `secured`)."""
    lead = story.lead_image
    return {
        "id": _json_id(story.id),
        "title": story.title,
        "excerpt": story.excerpt,
        "url": story.url,
        "published_at": story.published_at.isoformat(),
        "provider": {"name": story.provider.name, "domain": story.provider.domain}
        if story.provider
        else None,
        "topics": list(story.topics),
        "lead_image": {"url": lead.url, "width": lead.width, "height": lead.height}
        if lead
        else None,
        "quality": story.quality,
        "heat": story.heat,
        "category": story.category,
        "type": story.kind,
        "related": [
            {
                "title": related.title,
                "url": related.url,
                "provider": related.provider.name if related.provider else None,
                "published_at": related.published_at.isoformat() if related.published_at else None,
            }
            for related in story.related
        ],
    }


def _json_id(snowflake: int) -> str:
    """A 64-bit id as JSON text: JavaScript (and jq) read JSON numbers as doubles, which lose
    ids above 2**53, so ids travel as strings, as in Discord's own API."""
    return str(snowflake)


def _print_json(out: TextIO, value: Any) -> None:
    json.dump(value, out, ensure_ascii=False, indent=2)
    out.write("\n")


if __name__ == "__main__":
    sys.exit(main())
