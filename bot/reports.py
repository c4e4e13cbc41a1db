"""What a seed report says, written once: the terminal (`newsbot seeds load`) and Discord
(/seeds reload, /seeds status) lay the same words out their own way.

Pure functions: a report in, its summary and its sections as plain text out. Markdown escaping,
cutting to Discord's limits and indentation belong to the renderers.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from bot.reload import ReloadReport


@dataclass(frozen=True, slots=True)
class Section:
    """One kind of change in a report, e.g. the files added."""

    heading: str  # "Added": names the section where it is shown as a block (an embed field)
    label: str  # "added": marks each line where lines are shown one after another (a terminal)
    lines: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ReloadDescription:
    dry_run: bool
    counts: str  # "1 added, 0 updated, 4 unchanged, 0 retired, 0 rejected"
    stored: str  # "5 stories stored"
    sections: tuple[Section, ...]  # only those with lines, always in the same order


def describe_reload(report: ReloadReport, *, stored: int) -> ReloadDescription:
    """What a reload changed (or would change, for a dry run), in words."""
    sections = (
        Section("Added", "added", tuple(f"{c.source}: {c.title}" for c in report.added)),
        Section("Updated", "updated", tuple(f"{c.source}: {c.title}" for c in report.updated)),
        Section(
            "Retired",
            "retired",
            tuple(f"{c.source}: {c.title}" if c.title else c.source for c in report.retired),
        ),
        Section(
            "Rejected",
            "rejected",
            tuple(rejection_line(r.source, r.reason, r.kept_last_good) for r in report.rejected),
        ),
        Section(
            "Duplicates",
            "duplicate",
            tuple(duplicate_line(d.source, d.kept) for d in report.duplicates),
        ),
        Section(
            "Warnings",
            "warning",
            tuple(f"{source}: {problem}" for source, problem in report.warnings),
        ),
    )
    return ReloadDescription(
        dry_run=report.dry_run,
        # The report's own summary, without its dry-run prefix: renderers say "dry run" where
        # it reads best (an embed's title).
        counts=replace(report, dry_run=False).summary(),
        stored=f"{n_stories(stored)} stored",
        sections=tuple(section for section in sections if section.lines),
    )


def rejection_line(source: str, reason: str, kept_last_good: bool) -> str:
    """A rejected seed file and why, and whether its last good story is still served."""
    return f"{source}: {reason}" + (" (last good version kept)" if kept_last_good else "")


def duplicate_line(source: str, kept: str) -> str:
    """A file that holds the same story as another, which is the one loaded."""
    return f"{source}: same story as {kept}, which is kept"


def n_stories(count: int) -> str:
    return "1 story" if count == 1 else f"{count} stories"
