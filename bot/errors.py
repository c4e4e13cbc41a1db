"""newsbot's errors: one base, and branches that say who can act on them.

Every message is one line, written for whoever sees it. The CLI prints a `UserError` or a
`SetupError` as that line (exit status 2), an `Unrecoverable` too (status 75, "try again") and a
`DiscordUnavailable` (status 3); the command tree (bot.tree) shows a `UserError` to the member as
it is, while a `SetupError` reaching it is logged and apologised for, since a server member
cannot fix newsbot's installation and its message may name the operator's files.

The errors keep their homes next to the code that raises them (`ConfigError` in bot.config,
`StoreError` in bot.store, ...); they only share these bases.
"""

from __future__ import annotations


def one_line(error: object) -> str:
    """An error's message on one line (its type's name when it has none): what newsbot shows of
    errors raised by others, such as a library or the operating system."""
    return " ".join(str(error).split()) or type(error).__name__


class NewsbotError(Exception):
    """Anything newsbot raises on purpose; its message is one line."""


class UserError(NewsbotError):
    """A mistake the person who gave the command can fix: the message is the whole answer."""


class SetupError(NewsbotError):
    """newsbot's installation needs its operator: the settings, the database, the seed folder."""


class Unrecoverable(SetupError):
    """The running bot cannot go on (its database vanished, another newsbot took over): it
    stops, and only a restart (a supervisor's, exit status 75) puts it right."""


class DiscordUnavailable(NewsbotError):
    """Discord cannot be reached or is failing; trying again later may work."""


class DeliveryFailure(NewsbotError):
    """Posting one server's digest failed; the poster decides what that means for it."""
