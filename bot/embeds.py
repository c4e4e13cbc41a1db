"""Discord embeds for stories, topics and seed reports: pure functions within Discord's limits.

Texts are stored whole; this is where they are cut to what Discord accepts (on a word boundary,
ending in "…"). Every function returns embeds that Discord takes as they are, and `pack` splits
any list of embeds into messages that respect the per-message limits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime

import discord

from bot.discord_limits import (
    AUTHOR_LIMIT,
    CONTENT_LIMIT,
    DESCRIPTION_LIMIT,
    EMBEDS_PER_MESSAGE,
    FIELD_VALUE_LIMIT,
    MESSAGE_TEXT_LIMIT,
    TITLE_LIMIT,
)
from bot.models import Story, TopicCount
from bot.reload import ReloadReport
from bot.reports import describe_reload, n_stories, rejection_line
from bot.search_query import Order, Query, describe, describe_matches
from bot.store import SeedStatus
from bot.urls import is_web_url

RELATED_SHOWN = 3
NEWS_COLOUR = discord.Colour(0x1F6FEB)
ADMIN_COLOUR = discord.Colour(0x6E7781)
WARNING_COLOUR = discord.Colour(0xBF8700)
ELLIPSIS = "…"


def shorten(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters on a word boundary, ending in "…" when cut."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    # Prefer a word boundary, unless that would throw away most of the room.
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:-–—") + ELLIPSIS


def _link_text(text: str) -> str:
    # Square brackets would end the Markdown link text early; URLs inside the text are escaped
    # too (ignore_links=False), or a trailing backslash would escape the closing bracket.
    return discord.utils.escape_markdown(
        text.replace("[", "(").replace("]", ")"), ignore_links=False
    )


def _link_target(url: str) -> str:
    # A bare ")" or space would end the Markdown link target early.
    return url.replace(" ", "%20").replace("(", "%28").replace(")", "%29")


def markdown_link(text: str, url: str) -> str:
    return f"[{_link_text(text)}]({_link_target(url)})"


def story_embed(
    story: Story, *, also: Sequence[Story] = (), related_shown: int = RELATED_SHOWN
) -> discord.Embed:
    """One story: linked title, excerpt, lead image, outlet, time, topics, other coverage.

    `also` are stored stories about the same event (a digest's cluster); they lead the
    coverage list, before the seed's own related links.
    """
    embed = discord.Embed(
        title=shorten(story.title, TITLE_LIMIT),
        url=story.url,
        description=shorten(story.excerpt, DESCRIPTION_LIMIT) or None,
        timestamp=story.published_at,
        colour=NEWS_COLOUR,
    )
    if story.provider is not None:
        domain = story.provider.domain
        embed.set_author(
            name=shorten(story.provider.name, AUTHOR_LIMIT),
            url=f"https://{domain}" if domain and is_web_url(f"https://{domain}") else None,
        )
    lead = story.lead_image
    if lead is not None and is_web_url(lead.url):
        embed.set_image(url=lead.url)
    if story.topics:
        embed.add_field(
            name="Topics", value=shorten(" · ".join(story.topics), FIELD_VALUE_LIMIT), inline=True
        )
    coverage = _coverage_lines(story, also, related_shown)
    if coverage:
        embed.add_field(name="Also covered by", value=coverage, inline=False)
    return _within_message_limit(embed)


def _coverage_lines(story: Story, also: Sequence[Story], shown: int) -> str:
    lines: list[str] = []
    used = 0
    clustered = {other.id for other in also}
    coverage = [(other.title, other.url, other.provider) for other in also] + [
        (related.title, related.url, related.provider)
        for related in story.related
        if related.story_id not in clustered
    ][:shown]
    for title, url, provider in coverage:
        outlet = f" — {provider.name}" if provider else ""
        line = markdown_link(shorten(title, 150), url) + shorten(outlet, 60)
        # A line is never cut: half a Markdown link would show its raw syntax.
        if used + len(line) + 1 > FIELD_VALUE_LIMIT:
            continue
        lines.append(line)
        used += len(line) + 1
    return "\n".join(lines)


def _within_message_limit(embed: discord.Embed) -> discord.Embed:
    """Shorten the description so that this embed alone fits a message."""
    excess = len(embed) - MESSAGE_TEXT_LIMIT
    if excess > 0 and embed.description:
        embed.description = shorten(embed.description, max(1, len(embed.description) - excess))
    return embed


def pack(embeds: Iterable[discord.Embed], *, reserve: int = 0) -> list[list[discord.Embed]]:
    """Split embeds, in order, into messages of at most 10 embeds and 6,000 characters, less
    `reserve` characters kept free in each (for a footer added afterwards)."""
    limit = MESSAGE_TEXT_LIMIT - reserve
    messages: list[list[discord.Embed]] = []
    current: list[discord.Embed] = []
    size = 0
    for embed in embeds:
        length = len(embed)
        if current and (len(current) == EMBEDS_PER_MESSAGE or size + length > limit):
            messages.append(current)
            current, size = [], 0
        current.append(embed)
        size += length
    if current:
        messages.append(current)
    return messages


def story_page(stories: Sequence[Story]) -> tuple[list[discord.Embed], int]:
    """Embeds for as many of `stories` as fit one message, and how many that is (>= 1)."""
    if not stories:
        return [], 0
    first = pack(story_embed(story) for story in stories)[0]
    return first, len(first)


def news_heading(
    *,
    topic: str | None,
    query: Query | None,
    asked: Order = Order.NEWEST,
    matched: int | None = None,
    page: int | None = None,
    markdown: bool = True,
) -> str:
    """The line above a /news page (numbered `page`), and the first line of `newsbot news`.

    A search says how its words were read and how many stories `matched` (as counted up to
    a cap); without words it is "Latest stories", noting that relevance needs words when it
    was asked for. The description gives way to the count and page number when it is long.
    Without `markdown` (a terminal), nothing is emphasised or escaped.
    """
    about = ""
    if topic:
        about = f" on **{discord.utils.escape_markdown(topic)}**" if markdown else f" on {topic}"
    if query is not None and query.has_terms:
        # describe() starts with "stories": the topic goes right after it.
        described = describe(query, asked, markdown=markdown)
        head = "Stories" + about + described.removeprefix("stories")
    else:
        head = f"Latest stories{about}"
        if asked is not Order.NEWEST:
            head += ", newest first: only a search with words can be sorted by relevance"
    tail = [describe_matches(matched)] if matched is not None else []
    tail += [f"page {page}"] if page is not None else []
    suffix = "".join(f" · {part}" for part in tail)
    return shorten(head, CONTENT_LIMIT - len(suffix)) + suffix


def page_starts(stories: Sequence[Story], per_page: int) -> list[int]:
    """Where each page begins when `stories` are shown from the first, at most `per_page` a
    page and as many as `story_page` fits: [0] for one page or none."""
    starts = [0]
    while True:
        _, shown = story_page(stories[starts[-1] : starts[-1] + per_page])
        following = starts[-1] + shown
        if shown == 0 or following >= len(stories):
            return starts
        starts.append(following)


def digest_header(local_date: date, stories: int, topics: Sequence[str]) -> discord.Embed:
    about = ", ".join(topics) if topics else "all topics"
    return discord.Embed(
        title=f"Daily news — {local_date:%A} {local_date.day} {local_date:%B %Y}",
        description=shorten(f"{n_stories(stories)} on {about}.", DESCRIPTION_LIMIT),
        colour=NEWS_COLOUR,
    )


def digest_messages(
    local_date: date,
    topics: Sequence[str],
    items: Sequence[tuple[Story, Sequence[Story]]],
    reference: str | None = None,
) -> list[tuple[list[discord.Embed], tuple[int, ...]]]:
    """A digest as messages: a header embed, then one embed per item (a story and the other
    stories clustered with it), split as Discord's limits require. Each message comes with
    the ids of the stories it delivers. The header counts the story embeds: coverage listed
    under a story is part of it, not a story of its own.

    With a `reference` (a digest being posted), the last embed of each message gets a footer
    naming it and the part: what finds the message in the channel's history when newsbot
    cannot tell whether a send got through."""
    embeds = [digest_header(local_date, len(items), topics)]
    delivered: list[tuple[int, ...]] = [()]
    for story, also in items:
        embeds.append(story_embed(story, also=also))
        delivered.append((story.id, *(other.id for other in also)))
    reserve = 0 if reference is None else len(digest_footer(reference, 999, 999))
    messages = []
    position = 0
    for message in pack(embeds, reserve=reserve):
        ids = tuple(i for group in delivered[position : position + len(message)] for i in group)
        messages.append((message, ids))
        position += len(message)
    if reference is not None:
        for number, (message, _) in enumerate(messages, start=1):
            message[-1].set_footer(text=digest_footer(reference, number, len(messages)))
    return messages


def digest_footer(reference: str, number: int, total: int) -> str:
    """The marker of part `number` of `total` of the digest `reference` (see digest_messages)."""
    part = f"Part {number} of {total} · " if total > 1 else ""
    return f"{part}digest {reference}"


def topics_embed(topics: Sequence[TopicCount]) -> discord.Embed:
    """All topics with their story counts, as many as fit, saying how many were left out."""
    embed = discord.Embed(title="Topics", colour=NEWS_COLOUR)
    if not topics:
        embed.description = "No stories yet: newsbot's operator loads them with /seeds reload."
        return embed
    lines = [f"**{discord.utils.escape_markdown(t.name)}** — {n_stories(t.count)}" for t in topics]
    embed.description = _fit_lines(lines, DESCRIPTION_LIMIT)
    embed.set_footer(text="Use /news topic:<name> to read a topic.")
    return embed


def reload_report_embed(report: ReloadReport, *, stored: int) -> discord.Embed:
    """What a seed reload changed (or would change, for a dry run), cut to fit."""
    described = describe_reload(report, stored=stored)
    title = "Seed reload (dry run: nothing changed)" if described.dry_run else "Seed reload"
    embed = discord.Embed(
        title=title,
        description=shorten(f"{described.counts}. {described.stored}.", DESCRIPTION_LIMIT),
        colour=WARNING_COLOUR if report.rejected else ADMIN_COLOUR,
    )
    # Six full fields of 1,024 would exceed the 6,000 a message holds: share what is left.
    room = (MESSAGE_TEXT_LIMIT - len(embed) - 200) // max(1, len(described.sections))
    for section in described.sections:
        listing = _listing(section.lines, min(FIELD_VALUE_LIMIT, room))
        embed.add_field(
            name=f"{section.heading} ({len(section.lines)})", value=listing, inline=False
        )
    return _within_message_limit(embed)


def seed_status_embed(status: SeedStatus, *, stored: int, folder: str) -> discord.Embed:
    embed = discord.Embed(title="Seeds", colour=ADMIN_COLOUR)
    embed.add_field(name="Stories", value=str(stored), inline=True)
    embed.add_field(
        name="Seed folder", value=shorten(f"`{folder}`", FIELD_VALUE_LIMIT), inline=True
    )
    embed.add_field(name="Last reload", value=when(status.reloaded_at), inline=True)
    rejected = [rejection_line(path, reason, kept) for path, reason, kept in status.rejected]
    embed.add_field(
        name=f"Rejected files ({len(rejected)})",
        value=_listing(rejected) if rejected else "None",
        inline=False,
    )
    return _within_message_limit(embed)


def when(moment: datetime | None, *, never: str = "never") -> str:
    """A moment as Discord shows it to each reader: in their own time zone, and how long ago."""
    if moment is None:
        return never
    return f"{discord.utils.format_dt(moment, 'F')} ({discord.utils.format_dt(moment, 'R')})"


def _listing(lines: Sequence[str], limit: int = FIELD_VALUE_LIMIT) -> str:
    """Bulleted lines (each at most 200 characters) within `limit`."""
    entries = ["• " + shorten(discord.utils.escape_markdown(line), 200) for line in lines]
    return _fit_lines(entries, limit)


def _fit_lines(lines: Sequence[str], limit: int) -> str:
    """As many whole lines as fit `limit`, then "… and N more" for the rest."""
    shown: list[str] = []
    used = 0
    for position, line in enumerate(lines):
        # Keep room for the "… and N more" line that a cut list needs.
        if used + len(line) + 1 > limit - 20:
            shown.append(f"… and {len(lines) - position} more")
            break
        shown.append(line)
        used += len(line) + 1
    return "\n".join(shown)
