"""`newsbot seeds check`, `newsbot seeds load` and `newsbot seeds import`."""

from __future__ import annotations

import argparse
import sys

from bot.app import seed_reloader
from bot.cli.common import EXIT_OK, EXIT_REJECTED, EXIT_TEMPFAIL, Context, opened_store
from bot.cli.render import (
    check_json,
    check_row,
    check_text,
    import_failures,
    import_json,
    import_text,
    reload_json,
    reload_text,
    write_json,
    write_lines,
)
from bot.feeds import import_feeds
from bot.reload import check_folder
from bot.reload.scan import SeedFolderError, SeedFolderMissing
from bot.store import LockedElsewhere, TaskHolder


async def seeds_check(args: argparse.Namespace, context: Context) -> int:
    settings = context.settings.seeds
    folder = args.path or settings.folder
    results, report = await check_folder(
        folder, max_file_bytes=settings.max_file_bytes, workers=settings.workers
    )
    duplicates = {duplicate.source: duplicate.kept for duplicate in report.duplicates}
    rows = [check_row(result, duplicates.get(source)) for source, result in results.items()]
    if args.json:
        write_json(context.out, check_json(str(folder), rows))
    else:
        write_lines(context.out, check_text(rows))
    return EXIT_REJECTED if report.rejected else EXIT_OK


async def seeds_load(args: argparse.Namespace, context: Context) -> int:
    settings = context.settings
    async with opened_store(settings) as store:
        try:
            report = await seed_reloader(store, settings.seeds, args.path).reload()
        except LockedElsewhere as busy:
            # Not an error of the user's: the same work is under way; try again later.
            print(f"newsbot: error: {reload_elsewhere(busy.holder)}", file=sys.stderr)
            return EXIT_TEMPFAIL
        stored = await store.story_count()
    if args.json:
        write_json(context.out, reload_json(report, stored))
    else:
        write_lines(context.out, reload_text(report, stored))
    return EXIT_OK


async def seeds_import(args: argparse.Namespace, context: Context) -> int:
    settings = context.settings.seeds
    folder = args.folder or settings.folder
    # Checked first: a mistyped folder or an unmounted volume must not fill a new folder.
    if not folder.is_dir():
        raise (
            SeedFolderError(folder, "is not a folder")
            if folder.exists()
            else (SeedFolderMissing(folder))
        )
    reports = await import_feeds(args.feeds, folder, args.topics, settings.max_file_bytes)
    # Failures go to stderr as well, so that a cron job sending stdout to /dev/null still
    # mails them.
    for line in import_failures(reports):
        print(f"newsbot: error: {line}", file=sys.stderr)
    if args.json:
        write_json(context.out, import_json(str(folder), reports))
    else:
        write_lines(context.out, import_text(str(folder), reports))
    return EXIT_REJECTED if any(report.error for report in reports) else EXIT_OK


def reload_elsewhere(holder: TaskHolder) -> str:
    return (
        f"a seed reload is running in another newsbot process ({holder.who()}, since "
        f"{holder.since:%Y-%m-%d %H:%M:%S} UTC); try again when it is done"
    )
