"""The command tree's error handling and the single way newsbot answers an interaction."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, Literal

import discord
import pytest
from discord import app_commands

from bot.metrics import Metrics
from bot.tree import (
    APOLOGY,
    BadOptionValue,
    UserFacingError,
    explain,
    handle_error,
    is_acceptable,
    option_rule,
    reply,
)
from tests.helpers import World


async def _news_callback(interaction: discord.Interaction, topic: str) -> None:
    raise AssertionError("never invoked")


NEWS = app_commands.Command(name="news", description="Read the news", callback=_news_callback)
SEEDS = app_commands.Group(name="seeds", description="Manage seeds")


async def _reload_callback(interaction: discord.Interaction, dry_run: bool = False) -> None:
    raise AssertionError("never invoked")


SEEDS_RELOAD = app_commands.Command(
    name="reload", description="Reload seeds", callback=_reload_callback, parent=SEEDS
)


def invoke_error(original: Exception, command: app_commands.Command = NEWS) -> Exception:
    """What discord.py raises when a command's callback raises `original`."""
    return app_commands.CommandInvokeError(command, original)


# explain


def test_a_user_facing_error_is_shown_as_it_is() -> None:
    assert explain(UserFacingError("No topic called 'Quantum'.")) == "No topic called 'Quantum'."


def test_a_user_facing_error_raised_by_a_command_is_shown_as_it_is() -> None:
    error = invoke_error(UserFacingError("Pick a number from 1 to 10."))
    assert explain(error) == "Pick a number from 1 to 10."


def test_missing_permissions_name_the_permission_as_discord_shows_it() -> None:
    # discord.py says "manage_guild"; Discord's settings screens say "Manage Server".
    message = explain(app_commands.MissingPermissions(["manage_guild"]))
    assert message == "You need the Manage Server permission to use this command."


def test_several_missing_permissions_are_all_named() -> None:
    message = explain(app_commands.MissingPermissions(["manage_guild", "manage_messages"]))
    assert message is not None
    assert "Manage Server" in message
    assert "Manage Messages" in message


def test_no_private_message_says_the_command_needs_a_server() -> None:
    assert explain(app_commands.NoPrivateMessage()) == "This command only works in a server."


def test_a_failed_check_says_the_command_cannot_be_used_here() -> None:
    assert explain(app_commands.CheckFailure()) == "You cannot use this command here."


def test_a_cooldown_says_how_long_to_wait() -> None:
    error = app_commands.CommandOnCooldown(app_commands.Cooldown(1, 30.0), 12.4)
    assert explain(error) == "Slow down: try again in 12 s."


@pytest.mark.parametrize(
    "error",
    [
        invoke_error(RuntimeError("database is locked")),
        invoke_error(KeyError("topic")),
        RuntimeError("boom"),
        app_commands.AppCommandError("something internal"),
    ],
    ids=["wrapped-runtime", "wrapped-key", "bare-runtime", "bare-app-command-error"],
)
def test_an_unexpected_error_has_no_explanation(error: Exception) -> None:
    assert explain(error) is None


# option values outside what a command declares


async def _settings_callback(
    interaction: discord.Interaction,
    count: app_commands.Range[int, 1, 10],
    ratio: app_commands.Range[float, 0.5],
    label: app_commands.Range[str, None, 20],
    size: Literal["small", "large"],
    loud: bool,
    anything: int,
) -> None:
    raise AssertionError("never invoked")


SETTINGS = app_commands.Command(name="settings", description="Set", callback=_settings_callback)
OPTION = {parameter.name: parameter for parameter in SETTINGS.parameters}


def test_a_bad_option_value_is_explained_by_what_the_option_accepts() -> None:
    assert explain(BadOptionValue(OPTION["count"], 0)) == (
        "count must be a whole number between 1 and 10."
    )


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("ratio", "ratio must be a number of at least 0.5."),
        ("label", "label must be at most 20 characters long."),
        ("size", "size must be one of small, large."),
        ("loud", "loud must be true or false."),
        ("anything", "anything must be a whole number."),
    ],
)
def test_each_kind_of_option_says_what_it_accepts(name: str, rule: str) -> None:
    assert option_rule(OPTION[name]) == rule


@pytest.mark.parametrize(
    ("name", "value", "acceptable"),
    [
        ("count", 10, True),
        ("count", 11, False),
        ("count", True, False),
        ("anything", 2**2000, True),
        ("anything", 1.0, False),
        ("ratio", 2, True),
        ("ratio", float("nan"), False),
        ("ratio", "2", False),
        ("label", "x" * 20, True),
        ("label", "x" * 21, False),
        ("size", "medium", False),
        ("size", "large", True),
        ("loud", False, True),
        ("loud", "false", False),
    ],
)
def test_values_are_checked_against_the_declared_type_limits_and_choices(
    name: str, value: object, acceptable: bool
) -> None:
    assert is_acceptable(OPTION[name], value) is acceptable


# A fake interaction: only what reply and handle_error touch.


class Recorder:
    """An async callable that records its calls, and raises `error` when one is set."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        self.error: Exception | None = None

    async def __call__(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append((args, kwargs))
        if self.error is not None:
            raise self.error


class FakeResponse:
    def __init__(self, done: bool) -> None:
        self.done = done
        self.send_message = Recorder()

    def is_done(self) -> bool:
        return self.done


class Options:
    """Iterates (name, value) pairs, as app_commands.Namespace does."""

    def __init__(self, **values: Any) -> None:
        self._values = values

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        return iter(self._values.items())


class FakeInteraction:
    def __init__(
        self,
        *,
        done: bool = False,
        command: app_commands.Command | None = NEWS,
        namespace: Any = None,
    ) -> None:
        self.response = FakeResponse(done)
        self.followup = SimpleNamespace(send=Recorder())
        self.command = command
        self.namespace = namespace if namespace is not None else Options(topic="AI")
        self.user = SimpleNamespace(id=1234)
        self.guild_id = 5678
        self.channel_id = 9012
        self.extras: dict[str, Any] = {}
        # newsbot's client, as far as log_command reads it.
        self.client = SimpleNamespace(metrics=Metrics())
        # What app_commands.Namespace reads from an interaction when it is built.
        self._state = None
        self.guild = None

    def sent(self) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
        return self.response.send_message.calls + self.followup.send.calls


def http_error(status: int = 404, code: int = 10062) -> discord.HTTPException:
    response = SimpleNamespace(status=status, reason="Not Found")
    return discord.HTTPException(response, {"code": code, "message": "Unknown interaction"})


# reply


async def test_reply_sends_the_initial_response_when_none_was_sent() -> None:
    interaction = FakeInteraction(done=False)
    await reply(interaction, "Hello", ephemeral=True)
    assert interaction.response.send_message.calls == [(("Hello",), {"ephemeral": True})]
    assert interaction.followup.send.calls == []


async def test_reply_sends_a_followup_when_the_interaction_was_answered_or_deferred() -> None:
    interaction = FakeInteraction(done=True)
    embed = discord.Embed(title="A story")
    await reply(interaction, embeds=[embed])
    assert interaction.followup.send.calls == [((None,), {"embeds": [embed]})]
    assert interaction.response.send_message.calls == []


# handle_error


@pytest.mark.parametrize("done", [False, True], ids=["initial", "followup"])
async def test_a_user_mistake_is_explained_ephemerally(done: bool) -> None:
    interaction = FakeInteraction(done=done)
    await handle_error(interaction, invoke_error(UserFacingError("No such topic.")))
    assert interaction.sent() == [(("No such topic.",), {"ephemeral": True})]


async def test_a_user_mistake_is_not_logged_as_an_error(caplog: pytest.LogCaptureFixture) -> None:
    interaction = FakeInteraction()
    with caplog.at_level(logging.DEBUG, logger="bot.tree"):
        await handle_error(interaction, app_commands.NoPrivateMessage())
    assert [record for record in caplog.records if record.levelno >= logging.WARNING] == []
    assert interaction.sent() == [(("This command only works in a server.",), {"ephemeral": True})]


async def test_refused_and_failed_commands_are_counted_by_command_and_outcome() -> None:
    refused, failed = FakeInteraction(), FakeInteraction(command=SEEDS_RELOAD)
    refused.extras["newsbot_started"] = 0.0  # as interaction_check notes it (monotonic)

    await handle_error(refused, invoke_error(UserFacingError("No such topic.")))
    await handle_error(failed, invoke_error(RuntimeError("boom"), SEEDS_RELOAD))

    def count(interaction: FakeInteraction, command: str, outcome: str) -> float | None:
        metrics: Metrics = interaction.client.metrics
        labels = {"command": command, "outcome": outcome}
        return metrics.registry.get_sample_value("newsbot_commands_total", labels)

    assert count(refused, "news", "refused") == 1
    assert count(failed, "seeds reload", "failed") == 1
    latency = refused.client.metrics.registry.get_sample_value(
        "newsbot_command_duration_seconds_count", {"command": "news"}
    )
    assert latency == 1
    # No start noted, no time to tell: counted, not timed.
    assert (
        failed.client.metrics.registry.get_sample_value(
            "newsbot_command_duration_seconds_count", {"command": "seeds reload"}
        )
        is None
    )


async def test_an_unexpected_error_is_logged_with_the_command_and_its_options(
    caplog: pytest.LogCaptureFixture,
) -> None:
    original = RuntimeError("database is locked")
    interaction = FakeInteraction(command=SEEDS_RELOAD, namespace=Options(dry_run=True))
    with caplog.at_level(logging.ERROR, logger="bot.tree"):
        await handle_error(interaction, invoke_error(original, SEEDS_RELOAD))
    [record] = [record for record in caplog.records if record.name == "bot.tree"]
    assert record.levelno == logging.ERROR
    message = record.getMessage()
    assert "/seeds reload" in message
    assert "'dry_run': True" in message
    assert "1234" in message
    assert "5678" in message
    # The traceback logged is the command's own exception, not discord.py's wrapper.
    assert record.exc_info is not None and record.exc_info[1] is original


@pytest.mark.parametrize("done", [False, True], ids=["initial", "followup"])
async def test_an_unexpected_error_gets_an_apology_without_the_exception_text(
    done: bool, caplog: pytest.LogCaptureFixture
) -> None:
    interaction = FakeInteraction(done=done)
    with caplog.at_level(logging.CRITICAL, logger="bot.tree"):
        await handle_error(interaction, invoke_error(RuntimeError("secret path /var/db")))
    assert interaction.sent() == [((APOLOGY,), {"ephemeral": True})]
    assert "secret path" not in APOLOGY
    assert "RuntimeError" not in APOLOGY


async def test_an_error_outside_a_command_is_logged_as_a_component(
    caplog: pytest.LogCaptureFixture,
) -> None:
    interaction = FakeInteraction(command=None, namespace=Options())
    with caplog.at_level(logging.ERROR, logger="bot.tree"):
        await handle_error(interaction, RuntimeError("button broke"))
    [record] = caplog.records
    assert record.getMessage().startswith("/component failed (options {}")
    assert interaction.sent() == [((APOLOGY,), {"ephemeral": True})]


async def test_an_unexpected_error_with_a_real_namespace_is_logged_and_apologised_for(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # app_commands.Namespace answers None for every unknown attribute (so `dict(namespace)`
    # would call its None "keys"): the options must be read by iterating it.
    interaction = FakeInteraction()
    interaction.namespace = app_commands.Namespace(
        interaction,  # type: ignore[arg-type]
        {},
        [
            {"type": 3, "name": "topic", "value": "AI"},
            {"type": 4, "name": "count", "value": 3},
        ],
    )
    with caplog.at_level(logging.ERROR, logger="bot.tree"):
        await handle_error(interaction, invoke_error(RuntimeError("database is locked")))
    [record] = caplog.records
    assert "{'topic': 'AI', 'count': 3}" in record.getMessage()
    assert interaction.sent() == [((APOLOGY,), {"ephemeral": True})]


@pytest.mark.parametrize("done", [False, True], ids=["initial", "followup"])
@pytest.mark.parametrize(
    "error",
    [UserFacingError("No such topic."), invoke_error(RuntimeError("boom"))],
    ids=["user-mistake", "unexpected"],
)
async def test_handle_error_does_not_raise_when_discord_refuses_the_answer(
    done: bool, error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    interaction = FakeInteraction(done=done)
    interaction.response.send_message.error = http_error()
    interaction.followup.send.error = http_error(status=500, code=0)
    with caplog.at_level(logging.WARNING, logger="bot.tree"):
        await handle_error(interaction, error)
    assert len(interaction.sent()) == 1
    assert any(
        record.levelno == logging.WARNING and "could not tell the user" in record.getMessage()
        for record in caplog.records
    )


def test_several_missing_permissions_are_named_in_the_plural() -> None:
    message = explain(app_commands.MissingPermissions(["manage_guild", "embed_links"]))

    assert message == "You need the Manage Server and Embed Links permissions to use this command."


def test_an_unresolvable_channel_is_explained_as_not_in_this_server() -> None:
    transformer = app_commands.transformers.BaseChannelTransformer(discord.TextChannel)
    error = app_commands.TransformerError("123", discord.AppCommandOptionType.channel, transformer)

    assert explain(error) == (
        "That channel is not in this server (or newsbot cannot see it). Nothing was done."
    )


# --- what the log says about each command ------------------------------------------------------


def tree_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "bot.tree"]


async def until_logged(caplog: pytest.LogCaptureFixture, lines: int) -> None:
    # A command's completion is logged by a listener, just after its answer.
    for _ in range(500):
        if len(tree_records(caplog)) >= lines:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not {lines} log lines from bot.tree within 5 s")


async def test_every_command_is_logged_once_with_who_where_and_how_long(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="bot.tree"):
        await (await world.invoke("news", {"query": '"facial recognition"'})).response()
        await (await world.invoke("news", {"topic": "Computer Visoin"})).response()
        await until_logged(caplog, 2)

    answered, refused = sorted(tree_records(caplog), key=lambda r: "refused" in r.getMessage())
    assert {answered.levelno, refused.levelno} == {logging.INFO}
    assert re.fullmatch(
        rf"/news answered in \d+ ms \(user {world.reader.id}, server {world.guild.id}, "
        rf"channel {world.channel.id}\)",
        answered.getMessage(),
    )
    assert refused.getMessage().startswith("/news refused in ")
    assert (answered.server, answered.channel) == (world.guild.id, world.channel.id)
    # What the user typed is theirs: not at INFO.
    assert not any("facial" in r.getMessage() for r in tree_records(caplog))


async def test_a_commands_options_are_logged_at_debug_only(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="bot.tree"):
        await (await world.invoke("news", {"query": "facial recognition"})).response()
        await until_logged(caplog, 2)

    debug = [r.getMessage() for r in tree_records(caplog) if r.levelno == logging.DEBUG]
    assert debug == ["/news options: {'query': 'facial recognition'}"]
