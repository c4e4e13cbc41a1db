"""One text and one JSON renderer per report of the command line (pure: values in, lines or
JSON-ready data out); the commands write them with `write_lines` and `write_json`."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from bot.digest import too_old_note
from bot.digest_plan import Selection
from bot.embeds import news_heading
from bot.feeds import FeedReport
from bot.models import SeedResult, Story, TopicCount
from bot.reload import ReloadReport
from bot.reports import describe_reload, duplicate_line
from bot.search_query import MATCH_COUNT_CAP, Order, Query, describe, order_for

CheckRow = dict[str, Any]


def write_lines(out: TextIO, lines: Iterable[str]) -> None:
    for line in lines:
        print(line, file=out)


def write_json(out: TextIO, value: Any) -> None:
    json.dump(value, out, ensure_ascii=False, indent=2)
    out.write("\n")


def json_id(snowflake: int) -> str:
    """A 64-bit id as JSON text: JavaScript (and jq) read JSON numbers as doubles, which lose
    ids above 2**53, so ids travel as strings, as in Discord's own API."""
    return str(snowflake)


# --- seeds check ------------------------------------------------------------------------------


def check_row(result: SeedResult, duplicate_of: str | None) -> CheckRow:
    """The verdict on one file, as both renderers of `seeds check` read it."""
    status = "rejected" if not result.ok else "duplicate" if duplicate_of else "ok"
    row: CheckRow = {
        "file": result.source,
        "status": status,
        "story_id": json_id(result.story.id) if result.story else None,
        "reasons": [str(problem) for problem in result.errors],
        "warnings": [str(problem) for problem in result.warnings],
    }
    if duplicate_of:
        row["duplicate_of"] = duplicate_of
    return row


def check_summary(rows: Sequence[CheckRow]) -> dict[str, int]:
    counts = {"files": len(rows), "ok": 0, "duplicate": 0, "rejected": 0}
    for row in rows:
        counts[row["status"]] += 1
    return counts


def check_json(folder: str, rows: Sequence[CheckRow]) -> dict[str, Any]:
    return {"folder": folder, "summary": check_summary(rows), "files": list(rows)}


def check_text(rows: Sequence[CheckRow]) -> list[str]:
    lines = [line for row in rows for line in _check_row_text(row)]
    summary = check_summary(rows)
    lines.append(
        f"{summary['files']} files: {summary['ok']} ok, {summary['duplicate']} duplicate, "
        f"{summary['rejected']} rejected"
    )
    return lines


def _check_row_text(row: CheckRow) -> list[str]:
    if row["status"] == "rejected":
        lines = [f"REJECTED  {row['file']}: {'; '.join(row['reasons'])}"]
    elif row["status"] == "duplicate":
        lines = [f"duplicate {duplicate_line(row['file'], row['duplicate_of'])}"]
    else:
        lines = [f"ok        {row['file']}"]
    return lines + [f"          warning: {warning}" for warning in row["warnings"]]


# --- seeds load -------------------------------------------------------------------------------


def reload_json(report: ReloadReport, stored: int) -> dict[str, Any]:
    def changes(items: Sequence[Any]) -> list[dict[str, Any]]:
        return [
            {"story_id": json_id(c.story_id), "file": c.source, "title": c.title} for c in items
        ]

    return {
        "folder": report.folder,
        "stories": stored,
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


def reload_text(report: ReloadReport, stored: int) -> list[str]:
    """The report /seeds reload shows, in the same words, one line per file."""
    described = describe_reload(report, stored=stored)
    lines = [f"Loaded {report.folder}: {described.counts}; {described.stored}."]
    for section in described.sections:
        lines.extend(f"  {section.label:8} {line}" for line in section.lines)
    return lines


# --- seeds import -----------------------------------------------------------------------------


def import_summary(reports: Sequence[FeedReport]) -> dict[str, int]:
    return {
        "feeds": len(reports),
        "failed": sum(1 for report in reports if report.error),
        "new": sum(len(report.new) for report in reports),
        "updated": sum(len(report.updated) for report in reports),
        "unchanged": sum(len(report.unchanged) for report in reports),
        "skipped": sum(len(report.skipped) for report in reports),
    }


def import_json(folder: str, reports: Sequence[FeedReport]) -> dict[str, Any]:
    return {
        "folder": folder,
        "summary": import_summary(reports),
        "feeds": [
            {
                "feed": report.feed,
                "status": "failed" if report.error else "ok",
                "error": report.error,
                "new": report.new,
                "updated": report.updated,
                "unchanged": report.unchanged,
                "skipped": [
                    {"entry": skipped.entry, "reason": skipped.reason} for skipped in report.skipped
                ],
            }
            for report in reports
        ],
    }


def import_failures(reports: Sequence[FeedReport]) -> list[str]:
    """One line per feed that could not be imported: the feed and why."""
    return [f"{report.feed}: {report.error}" for report in reports if report.error]


def import_text(folder: str, reports: Sequence[FeedReport]) -> list[str]:
    """A line per feed imported, with its skipped entries, and the total. A failed feed's line
    is import_failures', which goes to stderr: said once, where errors go."""
    lines: list[str] = []
    for report in reports:
        if report.error:
            continue
        lines.append(f"{report.feed}: {_import_counts(import_summary([report]))}")
        lines.extend(f"  skipped {item.entry}: {item.reason}" for item in report.skipped)
    total = import_summary(reports)
    feeds = f"{total['feeds']} feed{'' if total['feeds'] == 1 else 's'}"
    lines.append(
        f"Imported {feeds} into {folder}: {_import_counts(total)}; {total['failed']} failed"
    )
    return lines


def _import_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{counts[key]} {key}" for key in ("new", "updated", "unchanged", "skipped"))


# --- news, topics -----------------------------------------------------------------------------


@dataclass(frozen=True)
class NewsSearch:
    """What `newsbot news` was asked for: the words as typed and as parsed, the topic (the
    option's or the query's, resolved), the order asked for, and how many stories matched
    (counted up to MATCH_COUNT_CAP; None without words)."""

    words: str | None = None
    query: Query | None = None
    topic: str | None = None
    asked: Order = Order.NEWEST
    matched: int | None = None

    @property
    def has_words(self) -> bool:
        return self.query is not None and self.query.has_terms

    @property
    def heading(self) -> str | None:
        """/news's header line without its page number, when /news would say more than
        "Latest stories": for a search with words, or relevance asked for without any."""
        if not self.has_words and self.asked is Order.NEWEST:
            return None
        return news_heading(
            topic=self.topic,
            query=self.query,
            asked=self.asked,
            matched=self.matched,
            markdown=False,
        )


def news_json(stories: Sequence[Story], search: NewsSearch | None = None) -> dict[str, Any]:
    """The stories, and how the search was read: `read_as` is the header's description,
    `matched` the count, exact when `matched_is_exact`, else there are more."""
    search = search or NewsSearch()
    counted = search.matched
    return {
        "query": search.words,
        "topic": search.topic,
        "order": order_for(search.query, search.asked).value,
        "read_as": describe(search.query, search.asked, markdown=False)
        if search.query is not None and search.has_words
        else None,
        "matched": None if counted is None else min(counted, MATCH_COUNT_CAP),
        "matched_is_exact": None if counted is None else counted <= MATCH_COUNT_CAP,
        "stories": [story_json(story) for story in stories],
    }


def story_json(story: Story) -> dict[str, Any]:
    """A story as JSON: its fields, topics, lead image and related links (never `secured`)."""
    lead = story.lead_image
    return {
        "id": json_id(story.id),
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


def news_text(stories: Sequence[Story], search: NewsSearch | None = None) -> list[str]:
    heading = search.heading if search else None
    lines = [heading, ""] if heading else []
    if not stories:
        return [*lines, "No stories match."]
    for story in stories:
        provider = story.provider.name if story.provider else "unknown outlet"
        when = story.published_at.strftime("%Y-%m-%d %H:%M UTC")
        lines.extend([story.title, f"  {provider} · {when}", f"  {story.url}", ""])
    return lines


def topics_json(topics: Sequence[TopicCount]) -> list[dict[str, Any]]:
    return [{"name": topic.name, "stories": topic.count} for topic in topics]


def topics_text(topics: Sequence[TopicCount]) -> list[str]:
    if not topics:
        return ["No topics yet: load seeds with `newsbot seeds load`."]
    return [f"{topic.count:6}  {topic.name}" for topic in topics]


# --- digest preview ---------------------------------------------------------------------------


def digest_preview_text(selection: Selection) -> list[str]:
    """The very embeds /digest preview shows, as text: the two previews cannot disagree."""
    header, *items = [embed for embeds, _ in selection.messages for embed in embeds]
    lines = [str(header.title), str(header.description)]
    note = too_old_note(selection.max_age, selection.too_old, selection.too_old_exact)
    if note:
        lines.append(note)
    lines.append("")
    if not items:
        lines.append("Nothing to post: no stories match.")
    for position, embed in enumerate(items, 1):
        lines.append(f"{position}. {embed.title}")
        outlet = embed.author.name or "unknown outlet"
        published = f"{embed.timestamp:%Y-%m-%d %H:%M} UTC" if embed.timestamp else "undated"
        lines.append(f"   {outlet} · {published} · {embed.url}")
        lines.extend(f"   also covered by {line}" for line in _also_covered(embed.fields))
        lines.append("")
    return lines


def _also_covered(fields: Sequence[Any]) -> list[str]:
    return [
        line
        for field in fields
        if field.name == "Also covered by" and field.value
        for line in field.value.splitlines()
    ]
