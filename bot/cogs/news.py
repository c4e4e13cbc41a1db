"""/news and /topics: browse the stored stories.

The Previous/Next buttons under a /news page carry everything a press needs in their custom
ids (see `PageTurn`), so a press is answered by whichever newsbot process receives it: pages
keep turning across restarts until their buttons expire.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_limits import AUTOCOMPLETE_CHOICES, CHOICE_LIMIT, CUSTOM_ID_LIMIT
from bot.embeds import news_heading, page_starts, shorten, story_page, topics_embed
from bot.page_turns import KEPT, PAGE_BUTTON, LongSearches, PageTurn, decode_search, encode_search
from bot.search_query import (
    MATCH_COUNT_CAP,
    MAX_QUERY_LENGTH,
    Order,
    Query,
    order_for,
    parse_query,
    without_controls,
)
from bot.store import Store
from bot.topics import TwoTopics, UnknownTopic, resolve_search_topic
from bot.tree import UserFacingError, handle_error, reply

if TYPE_CHECKING:
    from bot.app import NewsBot

log = logging.getLogger(__name__)

NOT_YOURS = "These buttons belong to whoever ran this /news. Run /news yourself to browse."
EXPIRED = "These buttons have expired; run /news again."


@dataclass(frozen=True, slots=True)
class NewsQuery:
    """What a /news page shows: the topic (resolved), the words as typed, the order asked for."""

    topic: str | None
    words: str | None
    per_page: int
    asked: Order = Order.NEWEST
    # The words read once (QuerySyntaxError when they cannot be); every store call reuses them.
    parsed: Query | None = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "parsed", parse_query(self.words) if self.words else None)

    @property
    def order(self) -> Order:
        return order_for(self.parsed, self.asked)

    def heading(self, page: int, matched: int | None) -> str:
        return news_heading(
            topic=self.topic, query=self.parsed, asked=self.asked, matched=matched, page=page
        )


@dataclass(frozen=True, slots=True)
class Page:
    embeds: list[discord.Embed]
    offset: int
    next_offset: int | None


async def load_page(store: Store, query: NewsQuery, offset: int) -> Page:
    """The stories of one page from `offset`: as many as fit one message, up to per_page."""
    # One extra story tells whether a next page exists without counting the matches.
    stories = await store.latest(
        query.per_page + 1,
        offset=offset,
        topic=query.topic,
        query=query.parsed,
        order=query.order,
    )
    embeds, shown = story_page(stories[: query.per_page])
    more = len(stories) > shown
    return Page(embeds, offset, offset + shown if more else None)


async def page_before(store: Store, query: NewsQuery, offset: int) -> tuple[int, int]:
    """The start and the number of the page before the one that starts at `offset`.

    Pages hold as many stories as fit a message, so where they start is found by laying out
    the stories before `offset` again, from the first.
    """
    stories = (
        await store.latest(offset, topic=query.topic, query=query.parsed, order=query.order)
        if offset
        else []
    )
    starts = page_starts(stories, query.per_page)
    return starts[-1], len(starts)


async def count_matches(store: Store, query: NewsQuery) -> int | None:
    """How many stories the search matches, up to MATCH_COUNT_CAP; None without words."""
    parsed = query.parsed
    if parsed is None or not parsed.has_terms:
        return None
    return await store.count_matching(parsed, topic=query.topic, cap=MATCH_COUNT_CAP)


class PageButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=PAGE_BUTTON):
    """Previous or Next under a /news page, answered from its custom id alone."""

    def __init__(self, turn: PageTurn, *, disabled: bool = False) -> None:
        if turn.backwards:
            label, emoji, style = "Previous", "◀️", discord.ButtonStyle.secondary
        else:
            label, emoji, style = "Next", "▶️", discord.ButtonStyle.primary
        button: discord.ui.Button[Any] = discord.ui.Button(
            label=label, emoji=emoji, style=style, custom_id=turn.custom_id, disabled=disabled
        )
        super().__init__(button)
        self.turn = turn

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction,
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> PageButton:
        return cls(PageTurn.from_match(match))

    async def callback(self, interaction: discord.Interaction) -> None:
        # discord.py only logs what a dynamic item raises; the user would be left with
        # "This interaction failed".
        try:
            client = interaction.client
            assert isinstance(client, commands.AutoShardedBot), "/news runs in newsbot's bot"
            news = client.get_cog("News")
            assert isinstance(news, News), "the /news cog answers its own buttons"
            await news.turn_page(interaction, self.turn)
        except Exception as error:  # every failure gets the tree's answer, logged there
            await handle_error(interaction, error)


def _disable_buttons(view: discord.ui.View) -> None:
    for child in view.children:
        button = child.item if isinstance(child, discord.ui.DynamicItem) else child
        if isinstance(button, discord.ui.Button):
            button.disabled = True


def _stateless(view: discord.ui.View) -> discord.ui.View:
    # PageButton's template answers every press; a stopped view is sent without discord.py
    # keeping it in memory for a message that may never be pressed again.
    view.stop()
    return view


class ButtonExpiry:
    """Shows the buttons of a page disabled once `timeout` passes without a press.

    Only what the reader sees: the expiry time in each custom id is what refuses a late
    press, so pages whose timer died with a restart still expire.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._timers: dict[int, asyncio.Task[None]] = {}

    def restart(
        self, message_id: int, interaction: discord.Interaction, view: discord.ui.View
    ) -> None:
        """Start the message's timeout again; `interaction` is the latest that showed it."""
        if (previous := self._timers.pop(message_id, None)) is not None:
            previous.cancel()
        timer = asyncio.create_task(self._disable_later(interaction, view))
        self._timers[message_id] = timer
        timer.add_done_callback(functools.partial(self._forget, message_id))

    def cancel_all(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def _forget(self, message_id: int, timer: asyncio.Task[None]) -> None:
        if self._timers.get(message_id) is timer:
            del self._timers[message_id]

    async def _disable_later(self, interaction: discord.Interaction, view: discord.ui.View) -> None:
        await asyncio.sleep(self.timeout)
        _disable_buttons(view)
        try:
            await interaction.edit_original_response(view=view)
        except discord.HTTPException:
            # The interaction's token lives 15 minutes; a later press still gets "expired".
            log.debug("could not disable the buttons of an expired /news page", exc_info=True)


class News(commands.Cog):
    def __init__(self, bot: NewsBot) -> None:
        self.bot = bot
        self.store = bot.store
        self.page_timeout = bot.settings.discord.page_timeout
        self.long_searches = LongSearches()
        self.expiry = ButtonExpiry(self.page_timeout)

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(PageButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(PageButton)
        self.expiry.cancel_all()

    @app_commands.command(name="news")
    @app_commands.describe(
        topic="Only stories on this topic",
        query='Words to find: facial recognition, "exact phrase", ai OR robotics, -word',
        sort="Newest first (default) or most relevant first, for a search with words",
        count="Stories per page (1-10, default 5)",
        private="Show the answer only to you",
    )
    @app_commands.choices(
        sort=[
            app_commands.Choice(name="Newest first", value=Order.NEWEST.value),
            app_commands.Choice(name="Most relevant", value=Order.RELEVANCE.value),
        ]
    )
    async def news(
        self,
        interaction: discord.Interaction,
        topic: app_commands.Range[str, 1, 100] | None = None,
        query: app_commands.Range[str, 1, MAX_QUERY_LENGTH] | None = None,
        sort: app_commands.Choice[str] | None = None,
        count: app_commands.Range[int, 1, 10] = 5,
        private: bool = False,
    ) -> None:
        """The latest news, optionally on a topic or matching words."""
        in_query = parse_query(query).topic if query else None
        topic_name = await self._search_topic(topic, in_query)
        asked = Order(sort.value) if sort else Order.NEWEST
        news_query = NewsQuery(topic_name, query, count, asked)
        page = await load_page(self.store, news_query, 0)
        if not page.embeds:
            raise UserFacingError(_nothing_found(news_query))
        heading = news_query.heading(1, await count_matches(self.store, news_query))
        if page.next_offset is None:
            await reply(interaction, heading, embeds=page.embeds, ephemeral=private)
            return
        buttons = self._buttons(interaction.user.id, news_query, page, 1)
        # /news never defers, so this is the initial response; it tells the message's id.
        sent = await interaction.response.send_message(
            heading, embeds=page.embeds, view=buttons, ephemeral=private
        )
        if sent.message_id is not None:
            self.expiry.restart(sent.message_id, interaction, buttons)

    async def turn_page(self, interaction: discord.Interaction, turn: PageTurn) -> None:
        """Answer a press of Previous or Next: the page asked for, or why not."""
        if interaction.user.id != turn.owner_id:
            await interaction.response.send_message(NOT_YOURS, ephemeral=True)
            return
        search = self._recall(turn.search)
        if search is None or self._now() > turn.expires:
            await self._refuse_expired(interaction)
            return
        query = NewsQuery(*search, turn.per_page, turn.order)
        if turn.backwards:
            offset, number = await page_before(self.store, query, turn.offset)
        else:
            offset, number = turn.offset, turn.page
        page = await load_page(self.store, query, offset)
        if not page.embeds:  # the stories went away in a reload meanwhile
            page, number = await load_page(self.store, query, 0), 1
        if not page.embeds:
            raise UserFacingError(_nothing_found(query))
        buttons = self._buttons(turn.owner_id, query, page, number)
        heading = query.heading(number, await count_matches(self.store, query))
        await interaction.response.edit_message(content=heading, embeds=page.embeds, view=buttons)
        if interaction.message is not None:
            self.expiry.restart(interaction.message.id, interaction, buttons)

    def _buttons(self, owner_id: int, query: NewsQuery, page: Page, number: int) -> discord.ui.View:
        """Previous and Next for `page`, working until page_timeout from now."""
        now = self._now()
        expires = math.ceil(now + self.page_timeout)

        def turns(search: str) -> tuple[PageTurn, PageTurn]:
            following = page.next_offset if page.next_offset is not None else page.offset
            turn = functools.partial(
                PageTurn, owner_id=owner_id, expires=expires, per_page=query.per_page
            )
            return (
                turn(True, offset=page.offset, page=number, search=search, order=query.asked),
                turn(False, offset=following, page=number + 1, search=search, order=query.asked),
            )

        previous, following = turns(encode_search(query.topic, query.words))
        if len(following.custom_id) > CUSTOM_ID_LIMIT:
            key = self.long_searches.keep(query.topic, query.words, until=expires, now=now)
            previous, following = turns(key)
        view = discord.ui.View(timeout=None)
        view.add_item(PageButton(previous, disabled=page.offset == 0))
        view.add_item(PageButton(following, disabled=page.next_offset is None))
        return _stateless(view)

    def _recall(self, search: str) -> tuple[str | None, str | None] | None:
        if search.startswith(KEPT):
            return self.long_searches.recall(search)
        return decode_search(search)

    async def _refuse_expired(self, interaction: discord.Interaction) -> None:
        # Show the buttons disabled, as the timer would have, then say why in private.
        if interaction.message is not None:
            view = discord.ui.View.from_message(interaction.message, timeout=None)
            _disable_buttons(view)
            await interaction.response.edit_message(view=_stateless(view))
        await reply(interaction, EXPIRED, ephemeral=True)

    def _now(self) -> float:
        return self.bot.clock().timestamp()

    @news.autocomplete("topic")
    async def topic_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        # At every keystroke: from memory (bot.topic_cache), not the database.
        topics = await self.bot.topic_cache.matching(current, AUTOCOMPLETE_CHOICES)
        return [
            app_commands.Choice(
                name=shorten(f"{topic.name} ({topic.count})", CHOICE_LIMIT),
                value=topic.name[:CHOICE_LIMIT],
            )
            for topic in topics
        ]

    @app_commands.command(name="topics")
    @app_commands.describe(private="Show the answer only to you")
    async def topics(self, interaction: discord.Interaction, private: bool = False) -> None:
        """Topics with the number of stories on each."""
        await reply(interaction, embed=topics_embed(await self.store.topics()), ephemeral=private)

    async def _search_topic(self, option: str | None, in_query: str | None) -> str | None:
        try:
            return await resolve_search_topic(self.store, option, in_query)
        except UnknownTopic as unknown:
            hint = f" Did you mean {_either(unknown.suggestions)}?" if unknown.suggestions else ""
            raise UserFacingError(
                f"There is no topic “{discord.utils.escape_markdown(unknown.name)}”.{hint} "
                "/topics lists them all."
            ) from None
        except TwoTopics as two:
            raise UserFacingError(
                f"The topic option says **{discord.utils.escape_markdown(two.option)}** but the "
                f"query says topic:**{discord.utils.escape_markdown(two.in_query)}**: give one "
                "topic."
            ) from None


def _either(names: list[str]) -> str:
    quoted = [f"**{discord.utils.escape_markdown(name)}**" for name in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + f" or {quoted[-1]}"


def _nothing_found(query: NewsQuery) -> str:
    if query.words:
        # Echoed as typed, less what cannot be shown (NUL, direction marks): the query is
        # at most MAX_QUERY_LENGTH characters, well within a message.
        words = discord.utils.escape_markdown(" ".join(without_controls(query.words).split()))
        return f"No stories match “{words}”."
    return "No stories are loaded yet."


async def setup(bot: NewsBot) -> None:
    await bot.add_cog(News(bot))
