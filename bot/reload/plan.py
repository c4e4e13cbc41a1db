"""Planning a reload: every decision, as pure functions of the stored seed index, the folder
scan and the files parsed (see bot.reload)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import NamedTuple

from bot.models import Problem, SeedResult, Story
from bot.reload.scan import FileStat
from bot.seeds import parse_files, rank
from bot.store import EncodedStory, ReloadChanges, SeedFileRecord, SeedIndex

# A skipped entry is never read, so it has no size or time a real file could match.
_SKIPPED_STAT = FileStat(-1, -1)


@dataclass(frozen=True, slots=True)
class StoryChange:
    """A story that a reload adds, updates or retires, with the file it comes (came) from."""

    story_id: int
    source: str
    title: str = ""


@dataclass(frozen=True, slots=True)
class Rejection:
    source: str
    reason: str
    # True when the file used to load: its last good story stays stored.
    kept_last_good: bool = False


@dataclass(frozen=True, slots=True)
class Duplicate:
    source: str
    kept: str


@dataclass(frozen=True, slots=True)
class ReloadReport:
    folder: str
    dry_run: bool = False
    added: tuple[StoryChange, ...] = ()
    updated: tuple[StoryChange, ...] = ()
    unchanged: int = 0
    retired: tuple[StoryChange, ...] = ()
    rejected: tuple[Rejection, ...] = ()
    duplicates: tuple[Duplicate, ...] = ()
    warnings: tuple[tuple[str, Problem], ...] = ()
    parsed: int = 0

    def summary(self) -> str:
        prefix = "dry run, would be: " if self.dry_run else ""
        return (
            f"{prefix}{len(self.added)} added, {len(self.updated)} updated, "
            f"{self.unchanged} unchanged, {len(self.retired)} retired, "
            f"{len(self.rejected)} rejected"
        )


class ParsedSeed(NamedTuple):
    """What a reload needs of one parsed seed file: the verdict, with the story already in
    the store's form. Plain values, so that worker processes send it back cheaply."""

    source: str
    content_hash: str
    story: EncodedStory | None
    rank: tuple[int, ...] = ()
    reason: str = ""
    warnings: tuple[Problem, ...] = ()

    @classmethod
    def of(cls, result: SeedResult, encode: Callable[[Story], EncodedStory]) -> ParsedSeed:
        story, file_hash = result.story, result.content_hash
        if story is None:
            return cls(result.source, file_hash, None, (), result.reason, result.warnings)
        return cls(result.source, file_hash, encode(story), rank(story), "", result.warnings)


def parse_for_reload(
    folder: str, sources: list[str], max_bytes: int, encode: Callable[[Story], EncodedStory]
) -> list[ParsedSeed]:
    """Parse and encode a batch of files: the unit of work of a reload's worker processes."""
    return [ParsedSeed.of(result, encode) for result in parse_files(folder, sources, max_bytes)]


@dataclass(slots=True)
class _Claim:
    """A file's bid to be the source of a story."""

    path: str
    rank: tuple[int, ...]
    # The freshly parsed story, or None when the stored record (or nothing) stands for it.
    story: EncodedStory | None
    rejected: bool = False


@dataclass(frozen=True, slots=True)
class ReloadPlan:
    changes: ReloadChanges
    report: ReloadReport
    # Unchanged files that now win a story whose stored record came from elsewhere: they must
    # be parsed before the plan can be applied.
    needs_parse: frozenset[str] = field(default_factory=frozenset)


def files_to_parse(index: SeedIndex, scan: Mapping[str, FileStat], folder: str) -> list[str]:
    """New files and files whose size or mtime changed (all of them for another folder)."""
    if index.folder != folder:
        return list(scan)
    files = index.files
    return [
        path
        for path, stat in scan.items()
        if (record := files.get(path)) is None
        or record.size != stat.size
        or record.mtime_ns != stat.mtime_ns
    ]


def plan_reload(
    index: SeedIndex,
    scan: Mapping[str, FileStat],
    parsed: Mapping[str, ParsedSeed],
    *,
    folder: str,
    now: datetime,
    dry_run: bool = False,
    skipped: Mapping[str, str] | None = None,
) -> ReloadPlan:
    """Decide everything a reload changes, from the stored index, the scan and the parses.

    `skipped` entries (path -> reason, see `scan_folder`) are rejected like unparsable files,
    so every report and `/seeds status` list them.
    """
    files_parsed = len(parsed)
    if skipped:
        scan = dict(sorted({**scan, **dict.fromkeys(skipped, _SKIPPED_STAT)}.items()))
        parsed = {**parsed, **{path: _skipped_verdict(path, why) for path, why in skipped.items()}}
    files = index.files
    verdicts = _file_verdicts(files, scan, parsed)
    outcome = _settle_claims(verdicts.claims, verdicts.records, verdicts.stored_source)
    stored_source, claims = verdicts.stored_source, verdicts.claims
    retired = [
        StoryChange(story_id, path)
        for story_id, path in stored_source.items()
        if story_id not in claims
    ]
    records = verdicts.records
    put_files = [record for path, record in records.items() if files.get(path) != record]
    changes = ReloadChanges(
        expected_generation=index.generation,
        reloaded_at=now,
        upsert=outcome.upsert,
        retire=[change.story_id for change in retired],
        put_files=put_files,
        delete_files=[path for path in files if path not in scan],
        folder=folder,
    )
    touched = {change.story_id for change in (*outcome.added, *outcome.updated)}
    report = ReloadReport(
        folder=folder,
        dry_run=dry_run,
        added=tuple(outcome.added),
        updated=tuple(outcome.updated),
        unchanged=sum(
            1 for story_id in stored_source if story_id in claims and story_id not in touched
        ),
        retired=tuple(retired),
        rejected=tuple(verdicts.rejected),
        duplicates=tuple(outcome.duplicates),
        warnings=tuple(verdicts.warnings),
        parsed=files_parsed,
    )
    return ReloadPlan(changes, report, frozenset(outcome.needs_parse))


@dataclass(slots=True)
class _Verdicts:
    """Per file of the scan: its record as it will be stored, and its bid for a story."""

    # Story id -> the path of the file it is stored from now.
    stored_source: dict[int, str]
    claims: dict[int, list[_Claim]] = field(default_factory=dict)
    records: dict[str, SeedFileRecord] = field(default_factory=dict)
    rejected: list[Rejection] = field(default_factory=list)
    warnings: list[tuple[str, Problem]] = field(default_factory=list)

    def claim(self, story_id: int, claim: _Claim) -> None:
        self.claims.setdefault(story_id, []).append(claim)


def _file_verdicts(
    files: Mapping[str, SeedFileRecord],
    scan: Mapping[str, FileStat],
    parsed: Mapping[str, ParsedSeed],
) -> _Verdicts:
    """The first pass: each scanned file's record and claim, from its parse or, for a file
    that was not parsed (or only touched), from what is stored."""
    verdicts = _Verdicts(
        stored_source={
            record.story_id: path
            for path, record in files.items()
            if record.story_id is not None and record.status != "duplicate"
        }
    )
    for path, stat in scan.items():
        record = files.get(path)
        result = parsed.get(path)
        if (
            result is not None
            and record is not None
            and record.content_hash == result.content_hash
            and record.status != "duplicate"
        ):
            result = None  # touched, not edited: the stored verdict stands
        if result is None:
            if record is not None:
                _keep_stored_verdict(verdicts, path, stat, record)
            continue
        verdicts.warnings.extend((path, warning) for warning in result.warnings)
        if result.story is not None:
            story = result.story
            verdicts.claim(story.id, _Claim(path, result.rank, story))
            verdicts.records[path] = SeedFileRecord(
                path, stat.size, stat.mtime_ns, result.content_hash, "loaded", story.id, result.rank
            )
        else:
            _reject(verdicts, path, stat, record, result)
    return verdicts


def _keep_stored_verdict(
    verdicts: _Verdicts, path: str, stat: FileStat, record: SeedFileRecord
) -> None:
    verdicts.records[path] = replace(record, size=stat.size, mtime_ns=stat.mtime_ns)
    if record.status == "rejected":
        verdicts.rejected.append(Rejection(path, record.error or "", record.story_id is not None))
    if record.story_id is not None:
        verdicts.claim(
            record.story_id, _Claim(path, record.rank, None, record.status == "rejected")
        )


def _reject(
    verdicts: _Verdicts,
    path: str,
    stat: FileStat,
    record: SeedFileRecord | None,
    result: ParsedSeed,
) -> None:
    # A file that used to be the source of a story keeps it while it is broken.
    previous = record.story_id if record is not None else None
    kept = previous is not None and verdicts.stored_source.get(previous) == path
    verdicts.rejected.append(Rejection(path, result.reason, kept))
    verdicts.records[path] = SeedFileRecord(
        path,
        stat.size,
        stat.mtime_ns,
        result.content_hash,
        "rejected",
        previous if kept else None,
        record.rank if kept and record is not None else (),
        result.reason,
    )
    if kept and previous is not None:
        verdicts.claim(previous, _Claim(path, verdicts.records[path].rank, None, True))


@dataclass(slots=True)
class _Outcome:
    """What settling the claims decided."""

    upsert: list[tuple[EncodedStory, str]] = field(default_factory=list)
    added: list[StoryChange] = field(default_factory=list)
    updated: list[StoryChange] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    needs_parse: set[str] = field(default_factory=set)


def _settle_claims(
    claims: Mapping[int, list[_Claim]],
    records: dict[str, SeedFileRecord],
    stored_source: Mapping[int, str],
) -> _Outcome:
    """The second pass: per story, the file that wins it; the others become duplicates (or,
    when broken, hold nothing). Updates `records` to match."""
    outcome = _Outcome()
    for story_id, bids in claims.items():
        # Fresh, good records beat kept ones; then rank; ties go to the first path by name.
        winner = max(sorted(bids, key=lambda c: c.path), key=lambda c: (not c.rejected, c.rank))
        current = stored_source.get(story_id)
        if winner.story is not None:
            outcome.upsert.append((winner.story, winner.path))
            change = StoryChange(story_id, winner.path, winner.story.title)
            (outcome.updated if current is not None else outcome.added).append(change)
        elif winner.path != current:
            outcome.needs_parse.add(winner.path)
        for bid in bids:
            if bid is not winner:
                outcome.duplicates.append(Duplicate(bid.path, winner.path))
                records[bid.path] = _losing_record(records[bid.path])
        if records[winner.path].status == "duplicate":
            records[winner.path] = replace(records[winner.path], status="loaded")
    return outcome


def _losing_record(loser: SeedFileRecord) -> SeedFileRecord:
    # A broken file that loses simply holds nothing; a good one is a duplicate.
    if loser.status == "rejected":
        return replace(loser, story_id=None, rank=())
    return replace(loser, status="duplicate")


def _skipped_verdict(path: str, reason: str) -> ParsedSeed:
    # The content hash stands for what is known of the entry: a new reason is a new verdict.
    return ParsedSeed(path, f"skipped: {reason}", None, (), reason)
