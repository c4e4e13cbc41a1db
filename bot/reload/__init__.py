"""Loading a seed folder into the store: incremental, atomic, and off the event loop.

A reload scans the folder (names, sizes, mtimes), parses only files that are new or changed,
decides per story which file's record is kept, and hands the store one set of changes that it
applies in a single transaction. `plan_reload` holds every decision and is a pure function;
`SeedReloader` does the I/O around it.

Rules: a file that fails keeps its last good story (and says so); a file that disappears
retires its story; two files with one canonical URL are one story, the better record wins.
"""

from bot.reload.plan import (
    Duplicate,
    ParsedSeed,
    Rejection,
    ReloadPlan,
    ReloadReport,
    StoryChange,
    files_to_parse,
    parse_for_reload,
    plan_reload,
)
from bot.reload.reloader import SeedReloader, check_folder
from bot.reload.scan import FileStat, FolderScan, SeedFolderError, SeedFolderMissing, scan_folder

__all__ = [
    "Duplicate",
    "FileStat",
    "FolderScan",
    "ParsedSeed",
    "Rejection",
    "ReloadPlan",
    "ReloadReport",
    "SeedFolderError",
    "SeedFolderMissing",
    "SeedReloader",
    "StoryChange",
    "check_folder",
    "files_to_parse",
    "parse_for_reload",
    "plan_reload",
    "scan_folder",
]
