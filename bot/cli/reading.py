"""The reading commands, offline twins of the slash commands: `newsbot news`, `newsbot topics`
and `newsbot digest preview`."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, time, timedelta

from bot.cli.common import EXIT_OK, Context, UserError, opened_store
from bot.cli.render import (
    NewsSearch,
    digest_preview_text,
    news_json,
    news_text,
    topics_json,
    topics_text,
    write_json,
    write_lines,
)
from bot.digest_plan import select_digest
from bot.models import DigestSettings
from bot.search_query import MATCH_COUNT_CAP, Order, order_for, parse_query
from bot.store import Store
from bot.topics import TwoTopics, UnknownTopic, resolve_search_topic, resolve_topic


async def show_news(args: argparse.Namespace, context: Context) -> int:
    query = parse_query(args.query) if args.query else None
    asked = Order(args.sort)
    async with opened_store(context.settings, create=False) as store:
        topic_name = await _search_topic(store, args.topic, query.topic if query else None)
        order = order_for(query, asked)
        stories = await store.latest(args.limit, topic=topic_name, query=query, order=order)
        matched = (
            await store.count_matching(query, topic=topic_name, cap=MATCH_COUNT_CAP)
            if query is not None and query.has_terms
            else None
        )
    search = NewsSearch(args.query, query, topic_name, asked, matched)
    if args.json:
        write_json(context.out, news_json(stories, search))
    else:
        write_lines(context.out, news_text(stories, search))
    return EXIT_OK


async def show_topics(args: argparse.Namespace, context: Context) -> int:
    async with opened_store(context.settings, create=False) as store:
        topics = await store.topics()
    if args.json:
        write_json(context.out, topics_json(topics))
    else:
        write_lines(context.out, topics_text(topics))
    return EXIT_OK


async def digest_preview(args: argparse.Namespace, context: Context) -> int:
    async with opened_store(context.settings, create=False) as store:
        names = [name.strip() for given in args.topics or () for name in given.split(",")]
        topics = tuple([await _resolve_topic(store, name) for name in names if name])
        # Channel 0 has received nothing, so every stored story is a candidate.
        settings = DigestSettings(0, 0, time(0), "UTC", topics, args.count, max_age=args.max_age)
        default_age = timedelta(days=context.settings.digest.max_age_days)
        selection = await select_digest(store, settings, datetime.now(UTC), default_age)
    write_lines(context.out, digest_preview_text(selection))
    return EXIT_OK


async def _search_topic(store: Store, option: str | None, in_query: str | None) -> str | None:
    """--topic's topic or the query's topic:, resolved alike; both must name the same one."""
    try:
        return await resolve_search_topic(store, option, in_query)
    except UnknownTopic as unknown:
        raise _no_such_topic(unknown) from None
    except TwoTopics as two:
        raise UserError(
            f"--topic is {two.option!r} but the query says topic:{two.in_query!r}; give one topic"
        ) from None


async def _resolve_topic(store: Store, name: str) -> str:
    try:
        return await resolve_topic(store, name)
    except UnknownTopic as unknown:
        raise _no_such_topic(unknown) from None


def _no_such_topic(unknown: UnknownTopic) -> UserError:
    close = unknown.suggestions
    hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
    return UserError(f"no topic {unknown.name!r}; {hint}`newsbot topics` lists them")
