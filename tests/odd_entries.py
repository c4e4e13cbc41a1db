"""Folder entries that are not seed files at all, each with the reason a reload must report.

Used by the reload, CLI and /seeds tests: a reload skips each of these, says why, and loads the
rest. Creating a device file needs root; without it the device is left out.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

# A Latin-1 "é": not valid UTF-8, so Python hands it over as a lone surrogate.
NON_UTF8_NAME = b"caf\xe9.txt"
NON_UTF8_SHOWN = "caf\\xe9.txt"


def write_odd_entries(folder: Path, good_text: str) -> dict[str, str]:
    """Add odd entries to `folder` (created if needed); return shown name -> reason.

    `good_text` is written to a non-UTF-8 file name too, so that only the name can be what
    rejects it.
    """
    folder.mkdir(parents=True, exist_ok=True)
    expected = {
        NON_UTF8_SHOWN: "file name is not valid UTF-8",
        "loop_a": "symlink loop",
        "loop_b": "symlink loop",
        "etc": "symlink points outside the seed folder",
        "passwd.txt": "symlink points outside the seed folder",
        "dangling.txt": "symlink target does not exist",
        "queue.txt": "not a regular file (FIFO)",
        "nested/up": "symlink loop",
    }
    with open(os.path.join(os.fsencode(folder), NON_UTF8_NAME), "wb") as handle:
        handle.write(good_text.encode())
    (folder / "loop_a").symlink_to("loop_b")
    (folder / "loop_b").symlink_to("loop_a")
    (folder / "etc").symlink_to("/etc", target_is_directory=True)
    (folder / "passwd.txt").symlink_to("/etc/passwd")
    (folder / "dangling.txt").symlink_to(folder / "nowhere.txt")
    os.mkfifo(folder / "queue.txt")
    (folder / "nested").mkdir()
    (folder / "nested" / "up").symlink_to("..", target_is_directory=True)
    try:
        os.mknod(folder / "null.txt", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    except PermissionError:
        pass
    else:
        expected["null.txt"] = "not a regular file (character device)"
    return expected
