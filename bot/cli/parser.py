"""The command line's arguments: commands, their options, and one-line argument mistakes."""

from __future__ import annotations

import argparse
from datetime import timedelta
from pathlib import Path
from typing import NoReturn, TypeAlias

from bot import version
from bot.cli.common import EXIT_USAGE
from bot.cli.reading import digest_preview, show_news, show_topics
from bot.cli.seeds import seeds_check, seeds_import, seeds_load
from bot.cli.serve import run_bot, sync_commands
from bot.digest import parse_max_age
from bot.feeds import NotAWebURL, check_source
from bot.search_query import Order


class Parser(argparse.ArgumentParser):
    """argparse with one-line mistakes, like every other error of newsbot."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


# What add_subparsers returns (argparse names no public type for it).
Subcommands: TypeAlias = "argparse._SubParsersAction[Parser]"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="newsbot", description="A Discord bot that delivers news.")
    parser.add_argument(
        "--config", type=Path, help="config file (default: $NEWSBOT_CONFIG or config/newsbot.yaml)"
    )
    parser.add_argument("--version", action="version", version=f"newsbot {version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_discord_commands(commands)
    _add_seed_commands(commands)
    _add_reading_commands(commands)
    return parser


def _add_discord_commands(commands: Subcommands) -> None:
    run = commands.add_parser("run", help="run the Discord bot (token from DISCORD_TOKEN)")
    run.set_defaults(handler=run_bot)
    sync = commands.add_parser("sync", help="register the slash commands with Discord now")
    sync.add_argument(
        "--guild", type=_snowflake, metavar="ID", help="only in this server (instant)"
    )
    sync.set_defaults(handler=sync_commands)


def _add_seed_commands(commands: Subcommands) -> None:
    seeds = commands.add_parser("seeds", help="check or load seed files")
    seed_commands = seeds.add_subparsers(dest="seeds_command", required=True, metavar="ACTION")
    check = seed_commands.add_parser("check", help="validate seed files without writing anything")
    check.add_argument("path", nargs="?", type=Path, help="seed folder (default: from config)")
    check.add_argument("--json", action="store_true", help="print the verdict per file as JSON")
    check.set_defaults(handler=seeds_check)
    load = seed_commands.add_parser(
        "load",
        help="load seed files into the database",
        description="Load seed files into the database. Exit code 75 (try again later) when "
        "another newsbot process is reloading the same database.",
    )
    load.add_argument("path", nargs="?", type=Path, help="seed folder (default: from config)")
    load.add_argument("--json", action="store_true", help="print the report as JSON")
    load.set_defaults(handler=seeds_load)
    _add_seeds_import(seed_commands)


def _add_seeds_import(seed_commands: Subcommands) -> None:
    feeds = seed_commands.add_parser(
        "import",
        help="turn RSS or Atom feeds into seed files",
        description="Turn RSS or Atom feeds into seed files in the seed folder: one file per "
        "entry, named after the entry's id, so importing again rewrites nothing that did not "
        "change. Exit code 1 when any feed could not be read; the others are imported anyway.",
    )
    feeds.add_argument(
        "feeds", nargs="+", type=_feed, metavar="FEED", help="an http(s) URL or a file"
    )
    feeds.add_argument(
        "--topic",
        dest="topics",
        action="append",
        default=[],
        metavar="TOPIC",
        help="add this topic to every story, besides the entry's own categories (repeatable)",
    )
    feeds.add_argument(
        "--folder", type=Path, metavar="DIR", help="seed folder to write to (default: from config)"
    )
    feeds.add_argument("--json", action="store_true", help="print the report as JSON")
    feeds.set_defaults(handler=seeds_import)


def _add_reading_commands(commands: Subcommands) -> None:
    news = commands.add_parser("news", help="the latest stories (the offline twin of /news)")
    news.add_argument("--topic", help="only stories on this topic (any case)")
    news.add_argument(
        "--query",
        help="only stories whose title or excerpt has these words: facial recognition, "
        '"exact phrase", ai OR robotics, -word, topic:AI',
    )
    news.add_argument(
        "--sort",
        choices=[order.value for order in Order],
        default=Order.NEWEST.value,
        help="newest first (default), or most relevant first for a search with words",
    )
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


def _feed(text: str) -> str:
    try:
        return check_source(text)
    except NotAWebURL as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _max_age(text: str) -> timedelta:
    try:
        return parse_max_age(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
