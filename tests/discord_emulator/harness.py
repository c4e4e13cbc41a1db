"""Running a real discord.py bot against the emulator, safely.

- ``point_client_at(emu, monkeypatch)`` sets ``discord.http.Route.BASE`` and
  ``DiscordWebSocket.DEFAULT_GATEWAY`` (restored by monkeypatch at teardown);
- ``running_bot(bot, emu)`` starts ``bot.start(emu.token)`` as a task, waits for ``on_ready``,
  makes emulator waits fail fast if the task dies (a parser KeyError ends it without a log line),
  fails the test on ERROR records from ``discord.*`` loggers (exceptions in command callbacks are
  only logged), and closes the bot cleanly at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import discord
import discord.gateway
import discord.http
import pytest
import yarl

from .emulator import BotCrashed, DiscordEmulator


def point_client_at(emu: DiscordEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """Route every discord.py REST call and the gateway connection to ``emu``."""
    monkeypatch.setattr(discord.http.Route, "BASE", emu.api_base)
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(emu.gateway_url)
    )


class ErrorLogCapture(logging.Handler):
    """Collects ERROR (and worse) records from the ``discord`` logger tree."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []
        self.allowed: list[str] = []
        self.changed = asyncio.Event()
        self._loop = loop

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self._loop.call_soon_threadsafe(self.changed.set)  # discord.py logs from threads too

    def unexpected(self) -> list[logging.LogRecord]:
        return [r for r in self.records if not any(a in r.getMessage() for a in self.allowed)]


@dataclass
class RunningBot:
    bot: discord.Client
    task: asyncio.Task[None]
    logs: ErrorLogCapture

    def allow_error(self, substring: str) -> None:
        """Do not fail the test on ERROR log lines containing ``substring``."""
        self.logs.allowed.append(substring)

    async def wait_for_error(self, substring: str, timeout: float = 2.0) -> logging.LogRecord:  # noqa: ASYNC109
        """Wait for a ``discord.*`` ERROR record containing ``substring``.

        The record still fails the test at the end unless ``allow_error`` covers it.
        """
        async with asyncio.timeout(timeout):
            while True:
                self.logs.changed.clear()
                for record in self.logs.records:
                    if substring in record.getMessage():
                        return record
                await self.logs.changed.wait()


async def _until_ready(bot: discord.Client) -> None:
    """Until `bot` is ready. Its ready event exists only once login() has begun, which a bot
    may put off (newsbot opens its database first): until then wait_until_ready() refuses."""
    while True:
        try:
            await bot.wait_until_ready()
        except RuntimeError:
            await asyncio.sleep(0.01)
        else:
            return


@contextlib.asynccontextmanager
async def running_bot(
    bot: discord.Client,
    emu: DiscordEmulator,
    *,
    ready_timeout: float = 10.0,
    close_timeout: float = 5.0,
    loggers: tuple[str, ...] = ("discord",),
) -> AsyncIterator[RunningBot]:
    """Start ``bot`` against ``emu`` (already pointed at), yield once it is ready.

    ERROR records from ``loggers`` (and their children) fail the test unless allowed.
    """
    logs = ErrorLogCapture(asyncio.get_running_loop())
    watched = [logging.getLogger(name) for name in loggers]
    for logger in watched:
        logger.addHandler(logs)
    task = asyncio.create_task(bot.start(emu.token), name="bot-under-test")
    emu.watch(task)
    body_failed = False
    try:
        waiter = asyncio.create_task(_until_ready(bot))
        done, _ = await asyncio.wait(
            {task, waiter}, timeout=ready_timeout, return_when=asyncio.FIRST_COMPLETED
        )
        waiter.cancel()
        if task in done:
            exc = None if task.cancelled() else task.exception()
            raise BotCrashed(f"the bot stopped before on_ready: {exc!r}") from exc
        if waiter not in done:
            raise TimeoutError(f"the bot was not ready within {ready_timeout}s")
        yield RunningBot(bot, task, logs)
        if task.done():
            exc = None if task.cancelled() else task.exception()
            raise BotCrashed(f"the bot task ended during the test: {exc!r}") from exc
    except BaseException:
        body_failed = True
        raise
    finally:
        await bot.close()
        try:
            await asyncio.wait_for(asyncio.shield(task), close_timeout)
        except Exception as exc:
            if not body_failed:
                raise BotCrashed(f"the bot did not stop cleanly: {exc!r}") from exc
        finally:
            if not task.done():
                task.cancel()
            emu.unwatch(task)
            for logger in watched:
                logger.removeHandler(logs)
    if bad := logs.unexpected():
        lines = "\n".join(f"{r.name}: {r.getMessage()}" for r in bad)
        raise AssertionError(f"errors were logged during the test:\n{lines}")
