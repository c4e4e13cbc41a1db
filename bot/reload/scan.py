"""Scanning a seed folder: every seed file with its size and mtime, and every entry that cannot
be one (with why), without ever opening a file."""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_ISBLK, S_ISCHR, S_ISDIR, S_ISFIFO, S_ISREG, S_ISSOCK

from bot.errors import SetupError


class SeedFolderError(SetupError):
    """The seed folder cannot be used (missing, not a folder, unreadable)."""

    def __init__(self, folder: Path, problem: str) -> None:
        super().__init__(f"seed folder {folder} {problem}")
        self.folder = folder
        self.problem = problem


class SeedFolderMissing(SeedFolderError):
    """The seed folder does not exist (a wrong path in the settings, or an unmounted volume)."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder, "does not exist")


@dataclass(frozen=True, slots=True)
class FileStat:
    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class FolderScan:
    """What a seed folder holds: its seed files, and the entries that cannot be one.

    Both are keyed by '/'-separated path below the folder; `skipped` gives each entry's reason.
    """

    files: dict[str, FileStat]
    skipped: dict[str, str] = field(default_factory=dict)


def scan_folder(folder: Path) -> FolderScan:
    """Every seed file below `folder` (hidden names skipped), and every entry skipped, with why.

    One odd entry never stops a scan: a name that is not UTF-8, a FIFO or device (never opened:
    reading a FIFO would block), a symlink loop, a symlink leading out of the folder (not
    followed) or an unreadable subfolder is reported and the rest is read. Only a seed folder
    that cannot be used at all raises SeedFolderError.
    """
    root = _folder_identity(folder)
    real_root = os.path.realpath(folder)
    files: dict[str, FileStat] = {}
    skipped: dict[str, str] = {}
    visited = {root}
    # Real subfolders are read before any reached through a symlink, so that a symlink to a
    # folder that is read anyway is recognised as such whatever the order of the entries.
    pending: list[tuple[str, str]] = [(str(folder), "")]
    linked: list[tuple[str, str, os.stat_result]] = []
    while pending or linked:
        if pending:
            directory, prefix = pending.pop()
        else:
            directory, path, target = linked.pop()
            if (target.st_dev, target.st_ino) in visited:
                skipped[path] = _revisit_reason(directory)
                continue
            visited.add((target.st_dev, target.st_ino))
            prefix = f"{path}/"
        try:
            entries = _entries(directory)
        except OSError as error:
            if not prefix:
                raise SeedFolderError(folder, f"cannot be read: {error.strerror}") from None
            skipped[prefix.rstrip("/")] = f"cannot read folder: {error.strerror}"
            continue
        for entry in entries:
            if passed_over(entry.name):
                continue
            if not _is_utf8(entry.name):
                skipped[prefix + _display_name(entry.name)] = "file name is not valid UTF-8"
                continue
            path = prefix + entry.name
            found = _examine(entry, real_root)
            if found is None:
                continue
            if isinstance(found, str):
                skipped[path] = found
            elif S_ISDIR(found.st_mode):
                if entry.is_symlink():
                    linked.append((entry.path, path, found))
                else:
                    visited.add((found.st_dev, found.st_ino))
                    pending.append((entry.path, f"{path}/"))
            elif S_ISREG(found.st_mode):
                files[path] = FileStat(found.st_size, found.st_mtime_ns)
            else:
                skipped[path] = f"not a regular file ({_file_kind(found.st_mode)})"
    return FolderScan(dict(sorted(files.items())), dict(sorted(skipped.items())))


def passed_over(name: str) -> bool:
    """Whether a scan passes over an entry by its name alone, with all it holds: hidden names,
    which editors' swap, lock and temporary files have (.story.md.swp, .#story.md), and
    editors' backups (story.md~, #story.md#): an older copy of a story loaded beside it would
    make its link a duplicate, and might be the copy kept."""
    return (
        name.startswith(".")
        or name.endswith("~")
        or (len(name) > 1 and name.startswith("#") and name.endswith("#"))
    )


def passed_over_path(relative: str) -> bool:
    """Whether a '/'-separated path below the seed folder is one a scan never reaches."""
    return any(passed_over(part) for part in relative.split("/") if part)


def _revisit_reason(link: str) -> str:
    target = os.path.realpath(link)
    parent = os.path.realpath(os.path.dirname(link))
    if os.path.commonpath([target, parent]) == target:
        return "symlink loop"
    return "symlink to a folder that is read anyway"


def _folder_identity(folder: Path) -> tuple[int, int]:
    try:
        info = folder.stat()
    except FileNotFoundError:
        raise SeedFolderMissing(folder) from None
    except OSError as error:
        raise SeedFolderError(folder, f"cannot be read: {error.strerror}") from None
    if not S_ISDIR(info.st_mode):
        raise SeedFolderError(folder, "is not a folder")
    return info.st_dev, info.st_ino


def _entries(directory: str) -> list[os.DirEntry[str]]:
    with os.scandir(directory) as entries:
        return list(entries)


def _examine(entry: os.DirEntry[str], real_root: str) -> os.stat_result | str | None:
    """The entry's status (a symlink's target's, when it stays inside the folder), why the
    entry is skipped, or None when it was removed while the folder was read."""
    try:
        if not entry.is_symlink():
            return entry.stat(follow_symlinks=False)
    except FileNotFoundError:
        return None
    except OSError as error:
        return f"cannot read: {error.strerror}"
    try:
        target = os.stat(entry.path)
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "symlink loop"
        if error.errno == errno.ENOENT:
            return "symlink target does not exist"
        return f"cannot read: {error.strerror}"
    if os.path.commonpath([real_root, os.path.realpath(entry.path)]) != real_root:
        return "symlink points outside the seed folder"
    return target


def _is_utf8(name: str) -> bool:
    # os.scandir hands undecodable bytes over as lone surrogates, which no UTF-8 text (a
    # report, a JSON document, an SQLite value) can hold.
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _display_name(name: str) -> str:
    """A file name as text that can always be printed and stored: bytes that are not UTF-8
    appear as backslash escapes (b'caf\\xe9.txt' is shown as 'caf\\xe9.txt')."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


_FILE_KINDS = (
    (S_ISFIFO, "FIFO"),
    (S_ISCHR, "character device"),
    (S_ISBLK, "block device"),
    (S_ISSOCK, "socket"),
)


def _file_kind(mode: int) -> str:
    return next((kind for test, kind in _FILE_KINDS if test(mode)), "special file")
