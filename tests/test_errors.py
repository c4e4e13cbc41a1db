"""One hierarchy of errors, mapped the same way by the command line and the command tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot import errors
from bot.checks import NotOperator
from bot.config import ConfigError
from bot.delivery import PermanentFailure, TransientFailure
from bot.reload import SeedFolderError, SeedFolderMissing
from bot.store import (
    DatabaseLost,
    InstanceLocked,
    InstanceLost,
    NoDatabase,
    StaleReload,
    StoreError,
)
from bot.tree import UserFacingError, explain


@pytest.mark.parametrize(
    "error",
    [
        UserFacingError("Pick a number from 1 to 10."),
        NotOperator(),
        errors.UserError("no topic 'Quantum'"),
    ],
)
def test_mistakes_a_user_can_fix_are_user_errors(error: Exception) -> None:
    assert isinstance(error, errors.UserError)


@pytest.mark.parametrize(
    "error",
    [
        ConfigError("unknown setting 'seeds.foldr'"),
        SeedFolderError(Path("seeds"), "is not a folder"),
        SeedFolderMissing(Path("seeds")),
        StoreError("database is newer than newsbot"),
        InstanceLocked("another newsbot runs"),
        NoDatabase("no database"),
        StaleReload("plan again"),
    ],
)
def test_problems_of_the_installation_are_setup_errors(error: Exception) -> None:
    assert isinstance(error, errors.SetupError)
    assert not isinstance(error, errors.UserError)


@pytest.mark.parametrize("error", [DatabaseLost("deleted"), InstanceLost("taken over")])
def test_a_running_bot_losing_its_database_or_lease_is_unrecoverable(error: Exception) -> None:
    # The command line exits 75 for these (a supervisor restarts newsbot), not 2.
    assert isinstance(error, errors.Unrecoverable)
    assert isinstance(error, StoreError)


def test_every_error_newsbot_raises_on_purpose_shares_one_base() -> None:
    for error in (
        errors.DiscordUnavailable("Discord is not answering"),
        PermanentFailure("the channel no longer exists"),
        TransientFailure("HTTP 503"),
        ConfigError("x"),
        UserFacingError("x"),
    ):
        assert isinstance(error, errors.NewsbotError)


def test_the_tree_shows_any_user_error_as_it_is() -> None:
    assert explain(errors.UserError("No topic called 'Quantum'.")) == "No topic called 'Quantum'."


def test_the_tree_does_not_show_a_setup_error_to_a_server_member() -> None:
    # Its message may name the operator's files; the member gets the apology instead.
    assert explain(StoreError("cannot open /srv/newsbot/data/newsbot.db")) is None
    assert explain(ConfigError("unknown setting 'seeds.foldr'")) is None
