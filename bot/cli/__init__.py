"""The newsbot command line: run the bot, check and load seeds, and read the news in the
terminal.

Every error ends in one line on stderr, never a traceback. Exit codes: 0 done; 1 `seeds check`
rejected a file or `seeds import` could not read a feed; 2 a mistake or a problem the user can
fix (bad arguments, missing folder or database, bad config, a busy database, Discord refusing a
request); 3 Discord cannot be reached or is failing (try again later); 70 a bug in newsbot (the
traceback is logged at DEBUG); 75 `run` stopped because its database was deleted or replaced,
or another newsbot took it over (restart it), or `seeds load` found another process reloading
(try again); 130 interrupted.

The package: `parser` (arguments), `serve` (run, sync), `seeds` (seeds check|load|import),
`reading` (news, topics, digest preview), `render` (one text and one JSON renderer per report),
`common` (exit codes, errors, the opened store); bot.feeds does the work of `seeds import`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from bot import config
from bot.cli.common import (
    EXIT_BUG,
    EXIT_DISCORD,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TEMPFAIL,
    EXIT_USAGE,
    Command,
    Context,
)
from bot.cli.parser import build_parser
from bot.errors import DiscordUnavailable, SetupError, Unrecoverable, UserError, one_line

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:  # --help, --version, or a mistake argparse has already shown
        return done.code if isinstance(done.code, int) else EXIT_USAGE
    stdout = out or sys.stdout
    try:
        settings = config.load(args.config)
        # Terminal commands print their own results; logs there are for problems (or DEBUG).
        quiet = args.command != "run" and settings.log_level != "DEBUG"
        token = settings.discord_token.reveal() if settings.discord_token else ""
        config.configure_logging(
            "WARNING" if quiet else settings.log_level, settings.log_format, [token]
        )
        handler: Command = args.handler
        return asyncio.run(handler(args, Context(settings, stdout)))
    except Unrecoverable as error:
        return _fail(str(error), EXIT_TEMPFAIL)
    except (UserError, SetupError) as error:
        return _fail(str(error), EXIT_USAGE)
    except DiscordUnavailable as error:
        return _fail(str(error), EXIT_DISCORD)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`newsbot news | head`): not an error. Point stdout at devnull
        # so the interpreter's final flush does not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as error:
        # The file system said no (permissions, a full disk): the machine's, not newsbot's.
        where = f": {error.filename}" if error.filename else ""
        return _fail(f"{error.strerror or one_line(error)}{where}", EXIT_USAGE)
    except Exception as error:
        # A bug. One line like every other error; the traceback is there for who asks for it.
        log.debug("unexpected error", exc_info=True)
        return _fail(
            f"unexpected {type(error).__name__}: {one_line(error)} (a bug in newsbot; "
            "NEWSBOT_LOG_LEVEL=DEBUG shows the traceback)",
            EXIT_BUG,
        )


def _fail(message: str, code: int) -> int:
    print(f"newsbot: error: {one_line(message)}", file=sys.stderr)
    return code


__all__ = ["main"]
