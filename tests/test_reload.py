"""Loading seed folders: atomic, incremental, and never losing a good story to a bad file."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.reload import SeedFolderError, SeedFolderMissing, SeedReloader, check_folder, scan_folder
from bot.reload import reloader as reloader_module
from bot.reload import scan as scan_module
from bot.store import ReloadChanges, StaleReload
from bot.store.sqlite import SqliteStore
from tests.hostile_corpus import DAMAGED, GOOD, write_hostile_corpus
from tests.odd_entries import write_odd_entries

SHIPPED = Path(__file__).resolve().parent.parent / "seeds"
POLITICO = "001_8439fb071992beae.txt"


def story_file(url: str, title: str, *, quality: int = 50, extra: str = "") -> str:
    return (
        f'---\ntitle: "{title}"\npublishedDateTime: 2024-03-01T10:00:00Z\n'
        f'webUrl: "{url}"\nquality: {quality}\ntopics: [AI]\n{extra}---\n'
    )


BROKEN = "---\ntitle: [broken\n---\n"


def touch_later(path: Path) -> None:
    """Give a file a new mtime, as an editor saving it would."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def edit(path: Path, text: str) -> None:
    """Save new content the way an editor would: the mtime moves even within one clock tick."""
    path.write_text(text)
    touch_later(path)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "seeds"
    shutil.copytree(SHIPPED, target)
    return target


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "news.db")
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
def reloader(store: SqliteStore, folder: Path) -> SeedReloader:
    return SeedReloader(store, folder, workers=1)


async def titles(store: SqliteStore) -> set[str]:
    return {story.title for story in await store.latest(100)}


async def test_first_load_adds_every_shipped_story(
    reloader: SeedReloader, store: SqliteStore
) -> None:
    report = await reloader.reload()

    assert len(report.added) == 5
    assert (report.rejected, report.retired, report.updated) == ((), (), ())
    assert await store.story_count() == 5


async def test_coverage_of_one_event_in_two_seeds_is_linked(
    reloader: SeedReloader, store: SqliteStore
) -> None:
    # Seed 001 is the politico article that seed 002 lists as related coverage.
    report = await reloader.reload()
    ids = {change.source: change.story_id for change in report.added}
    politico, techstory = ids[POLITICO], ids["002_3fff4a9a5337c682.txt"]

    linked = await store.linked_stories([politico, techstory])

    assert linked == {politico: {techstory}, techstory: {politico}}


async def test_unchanged_folder_is_not_parsed_again(reloader: SeedReloader) -> None:
    await reloader.reload()

    report = await reloader.reload()

    assert report.parsed == 0
    assert report.unchanged == 5
    assert not (report.added or report.updated or report.retired)


async def test_only_the_edited_file_is_parsed_and_updated(
    reloader: SeedReloader, store: SqliteStore, folder: Path
) -> None:
    await reloader.reload()
    path = folder / POLITICO
    edit(path, path.read_text().replace("calls for a ban", "demands a ban"))

    report = await reloader.reload()

    assert report.parsed == 1
    assert [change.title for change in report.updated] == [
        "European Parliament demands a ban on facial recognition"
    ]
    assert report.unchanged == 4
    assert "European Parliament demands a ban on facial recognition" in await titles(store)


async def test_touched_but_unedited_file_changes_nothing(
    reloader: SeedReloader, folder: Path
) -> None:
    await reloader.reload()
    touch_later(folder / POLITICO)

    report = await reloader.reload()
    again = await reloader.reload()

    assert report.parsed == 1
    assert not (report.added or report.updated or report.retired)
    assert again.parsed == 0


async def test_file_turned_bad_keeps_its_last_good_story_and_every_other(
    reloader: SeedReloader, store: SqliteStore, folder: Path
) -> None:
    await reloader.reload()
    before = await titles(store)
    path = folder / POLITICO
    edit(path, BROKEN)

    report = await reloader.reload()

    assert [(r.source, r.kept_last_good) for r in report.rejected] == [(POLITICO, True)]
    assert "invalid YAML" in report.rejected[0].reason
    assert not (report.added or report.updated or report.retired)
    assert await titles(store) == before


async def test_still_broken_file_is_reported_on_every_reload(
    reloader: SeedReloader, folder: Path
) -> None:
    await reloader.reload()
    path = folder / POLITICO
    edit(path, BROKEN)
    await reloader.reload()

    report = await reloader.reload()

    assert report.parsed == 0
    assert [(r.source, r.kept_last_good) for r in report.rejected] == [(POLITICO, True)]


async def test_repaired_file_replaces_its_kept_story(
    reloader: SeedReloader, store: SqliteStore, folder: Path
) -> None:
    await reloader.reload()
    path = folder / POLITICO
    original = path.read_text()
    edit(path, BROKEN)
    await reloader.reload()
    edit(path, original.replace("calls for a ban", "votes for a ban"))

    report = await reloader.reload()

    assert report.rejected == ()
    assert len(report.updated) == 1
    assert "European Parliament votes for a ban on facial recognition" in await titles(store)


async def test_new_file_that_is_bad_from_the_start_keeps_nothing(
    reloader: SeedReloader, folder: Path
) -> None:
    (folder / "new.txt").write_text("---\ntitle: only a title\n---\n")

    report = await reloader.reload()

    assert [(r.source, r.kept_last_good) for r in report.rejected] == [("new.txt", False)]
    assert len(report.added) == 5


async def test_removed_file_retires_its_story(
    reloader: SeedReloader, store: SqliteStore, folder: Path
) -> None:
    await reloader.reload()
    (folder / POLITICO).unlink()

    report = await reloader.reload()

    assert [change.title for change in report.retired] == [
        "European Parliament calls for a ban on facial recognition"
    ]
    assert await store.story_count() == 4


async def test_file_whose_link_changes_retires_the_old_story_and_adds_the_new(
    reloader: SeedReloader, store: SqliteStore, folder: Path
) -> None:
    await reloader.reload()
    path = folder / POLITICO
    edit(path, path.read_text().replace("www.politico.eu/article", "www.politico.eu/story"))

    report = await reloader.reload()

    assert len(report.added) == 1
    assert len(report.retired) == 1
    assert await store.story_count() == 5


async def test_two_files_with_one_canonical_url_are_one_story_the_better_kept(
    store: SqliteStore, tmp_path: Path
) -> None:
    folder = tmp_path / "dupes"
    folder.mkdir()
    (folder / "a.txt").write_text(
        story_file("https://n.example.com/x?utm_source=a", "Low", quality=10)
    )
    (folder / "b.txt").write_text(story_file("https://N.example.com/x#top", "High", quality=90))

    report = await SeedReloader(store, folder, workers=1).reload()

    assert [(d.source, d.kept) for d in report.duplicates] == [("a.txt", "b.txt")]
    assert await titles(store) == {"High"}


async def test_when_the_kept_duplicate_goes_the_other_record_takes_over(
    store: SqliteStore, tmp_path: Path
) -> None:
    folder = tmp_path / "dupes"
    folder.mkdir()
    (folder / "a.txt").write_text(story_file("https://n.example.com/x", "Low", quality=10))
    (folder / "b.txt").write_text(story_file("https://n.example.com/x", "High", quality=90))
    reloader = SeedReloader(store, folder, workers=1)
    await reloader.reload()
    (folder / "b.txt").unlink()

    report = await reloader.reload()

    assert report.retired == ()
    assert await titles(store) == {"Low"}


async def test_better_duplicate_arriving_later_replaces_the_stored_record(
    store: SqliteStore, tmp_path: Path
) -> None:
    folder = tmp_path / "dupes"
    folder.mkdir()
    (folder / "a.txt").write_text(story_file("https://n.example.com/x", "Low", quality=10))
    reloader = SeedReloader(store, folder, workers=1)
    await reloader.reload()
    (folder / "b.txt").write_text(story_file("https://n.example.com/x", "High", quality=90))

    report = await reloader.reload()

    assert [change.title for change in report.updated] == ["High"]
    assert await titles(store) == {"High"}
    assert await store.story_count() == 1


async def test_dry_run_reports_without_writing(reloader: SeedReloader, store: SqliteStore) -> None:
    report = await reloader.reload(dry_run=True)

    assert report.dry_run
    assert len(report.added) == 5
    assert await store.story_count() == 0


async def test_hostile_folder_loads_only_the_good_stories(
    store: SqliteStore, tmp_path: Path
) -> None:
    folder = tmp_path / "hostile"
    expected = write_hostile_corpus(folder)

    report = await SeedReloader(store, folder, workers=1).reload()

    assert {r.source for r in report.rejected} == set(expected)
    # Files whose optional fields are damaged load without those fields.
    assert sorted(change.source for change in report.added) == sorted(["good.txt", *DAMAGED])
    assert await store.story_count() == 1 + len(DAMAGED)


async def test_failed_apply_leaves_the_store_as_it_was(
    reloader: SeedReloader, store: SqliteStore, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await reloader.reload()
    before = await titles(store)
    (folder / POLITICO).unlink()
    (folder / "new.txt").write_text(story_file("https://n.example.com/new", "New"))

    async def broken_apply(changes: ReloadChanges) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(store, "apply_reload", broken_apply)
    with pytest.raises(OSError, match="disk full"):
        await reloader.reload()
    monkeypatch.undo()

    assert await titles(store) == before
    report = await reloader.reload()
    assert (len(report.added), len(report.retired)) == (1, 1)


async def test_reload_plans_again_when_another_writer_got_there_first(
    reloader: SeedReloader, store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_apply = store.apply_reload
    calls = 0

    async def apply_once_stale(changes: ReloadChanges) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise StaleReload("seed index changed")
        await real_apply(changes)

    monkeypatch.setattr(store, "apply_reload", apply_once_stale)

    report = await reloader.reload()

    assert calls == 2
    assert len(report.added) == 5


async def test_large_reloads_parse_in_worker_processes(
    store: SqliteStore, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reloader_module, "_PROCESS_POOL_THRESHOLD", 2)
    monkeypatch.setattr(reloader_module, "_CHUNK", 2)

    report = await SeedReloader(store, folder, workers=2).reload()

    assert len(report.added) == 5
    assert await store.story_count() == 5


async def test_missing_folder_is_a_clear_error(store: SqliteStore, tmp_path: Path) -> None:
    with pytest.raises(SeedFolderMissing, match="does not exist"):
        await SeedReloader(store, tmp_path / "nowhere", workers=1).reload()


async def test_a_file_given_as_the_folder_is_a_clear_error(
    store: SqliteStore, tmp_path: Path
) -> None:
    (tmp_path / "seeds.txt").write_text(GOOD)

    with pytest.raises(SeedFolderError, match="is not a folder"):
        await SeedReloader(store, tmp_path / "seeds.txt", workers=1).reload()


async def test_check_folder_gives_a_verdict_per_file_and_spots_duplicates(tmp_path: Path) -> None:
    folder = tmp_path / "hostile"
    expected = write_hostile_corpus(folder)

    results, report = await check_folder(folder, workers=1)

    assert set(results) == {*expected, *DAMAGED, "good.txt", "good_duplicate.txt"}
    assert [(d.source, d.kept) for d in report.duplicates] == [("good_duplicate.txt", "good.txt")]


async def test_hidden_files_are_ignored_and_subfolders_are_read(
    store: SqliteStore, tmp_path: Path
) -> None:
    folder = tmp_path / "nested"
    (folder / "2024").mkdir(parents=True)
    (folder / ".DS_Store").write_bytes(b"\x00\x01")
    (folder / "2024" / "a.txt").write_text(story_file("https://n.example.com/a", "Nested"))

    report = await SeedReloader(store, folder, workers=1).reload()

    assert [change.source for change in report.added] == ["2024/a.txt"]
    assert report.rejected == ()


async def test_editor_backups_are_not_seeds(store: SqliteStore, tmp_path: Path) -> None:
    folder = tmp_path / "edited"
    folder.mkdir()
    (folder / "a.txt").write_text(story_file("https://n.example.com/a", "Edited title"))
    for backup in ("a.txt~", "#a.txt#"):
        (folder / backup).write_text(story_file("https://n.example.com/a", "Title before"))

    report = await SeedReloader(store, folder, workers=1).reload()

    assert [change.source for change in report.added] == ["a.txt"]
    assert report.duplicates == ()
    assert await titles(store) == {"Edited title"}


async def test_odd_entries_are_reported_and_skipped_and_the_rest_loads(
    store: SqliteStore, tmp_path: Path
) -> None:
    folder = tmp_path / "odd"
    expected = write_odd_entries(folder, GOOD)
    (folder / "good.txt").write_text(GOOD)

    report = await SeedReloader(store, folder, workers=1).reload()

    assert {r.source: r.reason for r in report.rejected} == expected
    assert [change.source for change in report.added] == ["good.txt"]
    assert await titles(store) == {"A good story"}
    status = await store.seed_status()
    assert {path for path, _, _ in status.rejected} == set(expected)


async def test_odd_entries_are_reported_again_without_changing_anything(
    store: SqliteStore, tmp_path: Path
) -> None:
    folder = tmp_path / "odd"
    expected = write_odd_entries(folder, GOOD)
    (folder / "good.txt").write_text(GOOD)
    reloader = SeedReloader(store, folder, workers=1)
    await reloader.reload()

    report = await reloader.reload()

    assert {r.source: r.reason for r in report.rejected} == expected
    assert report.parsed == 0
    assert not (report.added or report.updated or report.retired)


async def test_symlinks_inside_the_folder_are_followed(store: SqliteStore, tmp_path: Path) -> None:
    folder = tmp_path / "linked"
    (folder / "2024").mkdir(parents=True)
    (folder / "2024" / "a.txt").write_text(story_file("https://n.example.com/a", "Linked"))
    (folder / "latest.txt").symlink_to(folder / "2024" / "a.txt")

    report = await SeedReloader(store, folder, workers=1).reload()

    assert [change.source for change in report.added] == ["2024/a.txt"]
    assert [(d.source, d.kept) for d in report.duplicates] == [("latest.txt", "2024/a.txt")]
    assert report.rejected == ()


def test_a_symlink_to_a_folder_that_is_read_anyway_is_reported_once(tmp_path: Path) -> None:
    folder = tmp_path / "aliased"
    (folder / "2024").mkdir(parents=True)
    (folder / "2024" / "a.txt").write_text(GOOD)
    (folder / "current").symlink_to("2024", target_is_directory=True)

    scan = scan_folder(folder)

    assert list(scan.files) == ["2024/a.txt"]
    assert scan.skipped == {"current": "symlink to a folder that is read anyway"}


async def test_a_loaded_file_replaced_by_a_fifo_keeps_its_last_good_story(
    reloader: SeedReloader, store: SqliteStore, folder: Path
) -> None:
    await reloader.reload()
    before = await titles(store)
    (folder / POLITICO).unlink()
    os.mkfifo(folder / POLITICO)

    report = await reloader.reload()

    assert [(r.source, r.reason, r.kept_last_good) for r in report.rejected] == [
        (POLITICO, "not a regular file (FIFO)", True)
    ]
    assert await titles(store) == before


async def test_an_unreadable_subfolder_is_reported_and_the_rest_loads(
    store: SqliteStore, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (folder / "private").mkdir()
    (folder / "private" / "a.txt").write_text(GOOD)
    real_entries = scan_module._entries

    def entries(directory: str) -> list[os.DirEntry[str]]:
        # Permission bits do not stop root, who runs some test machines: refuse by hand.
        if directory.endswith("private"):
            raise PermissionError(13, "Permission denied")
        return real_entries(directory)

    monkeypatch.setattr(scan_module, "_entries", entries)

    report = await SeedReloader(store, folder, workers=1).reload()

    assert [(r.source, r.reason) for r in report.rejected] == [
        ("private", "cannot read folder: Permission denied")
    ]
    assert len(report.added) == 5


async def test_check_folder_gives_odd_entries_the_verdict_a_reload_gives(tmp_path: Path) -> None:
    folder = tmp_path / "odd"
    expected = write_odd_entries(folder, GOOD)

    results, report = await check_folder(folder, workers=1)

    assert {source: r.reason for source, r in results.items()} == expected
    assert {r.source: r.reason for r in report.rejected} == expected


async def test_an_unreadable_seed_folder_is_a_clear_error(
    store: SqliteStore, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def entries(directory: str) -> list[os.DirEntry[str]]:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(scan_module, "_entries", entries)

    with pytest.raises(SeedFolderError, match="cannot be read: Permission denied"):
        await SeedReloader(store, folder, workers=1).reload()
