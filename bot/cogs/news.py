"""/news and /topics: browse the stored stories."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.embeds import CHOICE_LIMIT, shorten, story_page, topics_embed
from bot.store import Store
from bot.topics import suggest_topics
from bot.tree import UserFacingError, handle_error, reply

if TYPE_CHECKING:
    from bot.app import NewsBot

log = logging.getLogger(__name__)

AUTOCOMPLETE_CHOICES = 25


@dataclass(frozen=True, slots=True)
class NewsQuery:
    topic: str | None
    words: str | None
    per_page: int

    def heading(self, page: int) -> str:
        about = f" on **{discord.utils.escape_markdown(self.topic)}**" if self.topic else ""
        matching = f" matching “{discord.utils.escape_markdown(self.words)}”" if self.words else ""
        return shorten(f"Latest stories{about}{matching} · page {page}", 2000)


@dataclass(frozen=True, slots=True)
class Page:
    embeds: list[discord.Embed]
    offset: int
    next_offset: int | None


async def load_page(store: Store, query: NewsQuery, offset: int) -> Page:
    """The stories of one page from `offset`: as many as fit one message, up to per_page."""
    # One extra story tells whether a next page exists without counting the matches.
    stories = await store.latest(
        query.per_page + 1, offset=offset, topic=query.topic, query=query.words
    )
    embeds, shown = story_page(stories[: query.per_page])
    more = len(stories) > shown
    return Page(embeds, offset, offset + shown if more else None)


class NewsPager(discord.ui.View):
    """Previous/Next buttons for the person who asked; they stop working after a timeout."""

    def __init__(self, store: Store, query: NewsQuery, owner_id: int, *, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.store = store
        self.query = query
        self.owner_id = owner_id
        # Start offsets of the pages shown so far: pages hold as many stories as fit, so the
        # way back is remembered rather than computed.
        self.offsets: list[int] = []
        self.page: Page | None = None
        self.origin: discord.Interaction | None = None

    def show(self, page: Page) -> None:
        if not self.offsets or self.offsets[-1] != page.offset:
            self.offsets.append(page.offset)
        self.page = page
        self.previous.disabled = len(self.offsets) <= 1
        self.next.disabled = page.next_offset is None

    @property
    def heading(self) -> str:
        return self.query.heading(len(self.offsets))

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id == self.owner_id:
            return True
        await interaction.response.send_message(
            "These buttons belong to whoever ran this /news. Run /news yourself to browse.",
            ephemeral=True,
        )
        return False

    @discord.ui.button(label="Previous", emoji="◀️", style=discord.ButtonStyle.secondary)
    async def previous(self, interaction: discord.Interaction, _: discord.ui.Button) -> None:
        self.offsets.pop()
        await self._turn(interaction, self.offsets[-1])

    @discord.ui.button(label="Next", emoji="▶️", style=discord.ButtonStyle.primary)
    async def next(self, interaction: discord.Interaction, _: discord.ui.Button) -> None:
        assert self.page is not None and self.page.next_offset is not None
        await self._turn(interaction, self.page.next_offset)

    async def _turn(self, interaction: discord.Interaction, offset: int) -> None:
        page = await load_page(self.store, self.query, offset)
        if not page.embeds:  # the stories went away in a reload meanwhile
            page = await load_page(self.store, self.query, 0)
            self.offsets.clear()
        self.show(page)
        await interaction.response.edit_message(content=self.heading, embeds=page.embeds, view=self)

    async def on_timeout(self) -> None:
        for item in self.children:
            if isinstance(item, discord.ui.Button):
                item.disabled = True
        if self.origin is not None:
            try:
                await self.origin.edit_original_response(view=self)
            except discord.HTTPException:
                log.debug("could not disable the buttons of an expired /news page", exc_info=True)

    async def on_error(
        self, interaction: discord.Interaction, error: Exception, item: discord.ui.Item
    ) -> None:
        await handle_error(interaction, error)


class News(commands.Cog):
    def __init__(self, bot: NewsBot) -> None:
        self.store = bot.store
        self.page_timeout = bot.settings.discord.page_timeout

    @app_commands.command(name="news")
    @app_commands.describe(
        topic="Only stories on this topic",
        query="Only stories with these words in the title or summary",
        count="Stories per page (1-10, default 5)",
        private="Show the answer only to you",
    )
    async def news(
        self,
        interaction: discord.Interaction,
        topic: app_commands.Range[str, 1, 100] | None = None,
        query: app_commands.Range[str, 1, 200] | None = None,
        count: app_commands.Range[int, 1, 10] = 5,
        private: bool = False,
    ) -> None:
        """The latest news, optionally on a topic or matching words."""
        topic_name = await self._resolve_topic(topic) if topic else None
        news_query = NewsQuery(topic_name, query, count)
        page = await load_page(self.store, news_query, 0)
        if not page.embeds:
            raise UserFacingError(_nothing_found(news_query))
        pager = NewsPager(self.store, news_query, interaction.user.id, timeout=self.page_timeout)
        pager.show(page)
        if page.next_offset is None:
            await reply(interaction, pager.heading, embeds=page.embeds, ephemeral=private)
            pager.stop()
            return
        pager.origin = interaction
        await reply(interaction, pager.heading, embeds=page.embeds, view=pager, ephemeral=private)

    @news.autocomplete("topic")
    async def topic_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        topics = await self.store.topics(matching=current, limit=AUTOCOMPLETE_CHOICES)
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

    async def _resolve_topic(self, name: str) -> str:
        found = await self.store.topic(name)
        if found is not None:
            return found.name
        suggestions = suggest_topics(name, [topic.name for topic in await self.store.topics()])
        hint = f" Did you mean {_either(suggestions)}?" if suggestions else ""
        raise UserFacingError(
            f"There is no topic “{discord.utils.escape_markdown(name)}”.{hint} "
            "/topics lists them all."
        )


def _either(names: list[str]) -> str:
    quoted = [f"**{discord.utils.escape_markdown(name)}**" for name in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + f" or {quoted[-1]}"


def _nothing_found(query: NewsQuery) -> str:
    if query.words:
        return f"No stories match “{discord.utils.escape_markdown(query.words)}”."
    return "No stories are loaded yet."


async def setup(bot: NewsBot) -> None:
    await bot.add_cog(News(bot))
