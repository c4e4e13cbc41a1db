"""Settings reloaded while newsbot runs (SIGHUP): the config file and the environment are read
again, and the settings that can change under a running bot are applied to it.

Which settings those are is APPLIERS' keys: each names one setting (as `changes` spells it,
dotted: "digest.send_rate") and how to apply its new value to the bot. Any other setting that
changed is named in a WARNING and takes effect at the next start. `changes` and `reloaded`
are pure; `SettingsReloader` reads the file, applies and logs one line.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, fields, is_dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from bot import config
from bot.config import ConfigError, Secret, Settings, without_password
from bot.log_format import set_log_level

if TYPE_CHECKING:
    from bot.app import NewsBot

log = logging.getLogger(__name__)

Applier = Callable[["NewsBot", Any], Awaitable[None] | None]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Change:
    """A setting, by its dotted name, that differs between two settings."""

    setting: str
    old: object
    new: object

    def __str__(self) -> str:
        return (
            f"{self.setting} {_shown(self.setting, self.old)} -> {_shown(self.setting, self.new)}"
        )


def changes(old: Settings, new: Settings) -> list[Change]:
    """Every setting whose value differs, in the order Settings declares them."""
    return list(_differences(old, new, ""))


def _differences(old: object, new: object, prefix: str) -> Iterator[Change]:
    for field in fields(old):  # type: ignore[arg-type]  # a settings dataclass
        before, after = getattr(old, field.name), getattr(new, field.name)
        name = prefix + field.name
        if is_dataclass(before) and not isinstance(before, Secret | type):
            yield from _differences(before, after, f"{name}.")
        elif before != after:
            yield Change(name, before, after)


def _shown(setting: str, value: object) -> str:
    """A value as a log line may show it: never a secret, never a database password."""
    if isinstance(value, Secret):
        return "[secret]"
    if setting == "database.url" and isinstance(value, str):
        return without_password(value)
    return str(value)


def reloaded(running: T, applied: list[Change]) -> T:
    """`running` settings with the applied changes' new values (the rest stay as they run)."""
    for change in applied:
        running = _with(running, change.setting.split("."), change.new)
    return running


def _with(settings: T, path: list[str], value: object) -> T:
    head, *rest = path
    inner = value if not rest else _with(getattr(settings, head), rest, value)
    return replace(settings, **{head: inner})  # type: ignore[type-var]  # a settings dataclass


def _set_send_rate(bot: NewsBot, rate: float) -> None:
    bot.send_pacer.set_rate(rate)
    # The Digest cog sizes its rounds of claims to what the rate sends within a run lease.
    digest = bot.get_cog("Digest")
    if digest is not None:
        digest.poster.set_send_rate(rate)  # type: ignore[attr-defined]


async def _set_seed_watch(bot: NewsBot, watch: bool) -> None:
    # The Seeds cog owns the watcher (and, on a shared database, the turn to be the watcher).
    seeds = bot.get_cog("Seeds")
    if seeds is None:
        return
    if watch:
        seeds.start_watching()  # type: ignore[attr-defined]
    else:
        await seeds.stop_watching()  # type: ignore[attr-defined]


# The settings a running newsbot takes up, and how; every other one needs a restart.
APPLIERS: Mapping[str, Applier] = {
    "log_level": lambda bot, level: set_log_level(level),
    "digest.send_rate": _set_send_rate,
    "seeds.watch": _set_seed_watch,
}


class SettingsReloader:
    """Reads the settings again (the config file at `path`, or where newsbot found it, and the
    environment) and applies what changed to `bot`, one reload at a time."""

    def __init__(
        self, bot: NewsBot, path: Path | None, appliers: Mapping[str, Applier] = APPLIERS
    ) -> None:
        self._bot = bot
        self._path = path
        self._appliers = appliers
        self._lock = asyncio.Lock()

    async def reload(self) -> None:
        async with self._lock:
            running = self._bot.settings
            try:
                # A small file, but a read all the same: off the event loop.
                fresh = await asyncio.to_thread(config.load, self._path)
            except ConfigError as error:
                log.error("settings not reloaded, the running ones stay: %s", error)
                return
            found = changes(running, fresh)
            applied: list[Change] = []
            for change in found:
                if change.setting in self._appliers:
                    if not await self._apply(change):
                        self._bot.settings = reloaded(running, applied)
                        return
                    applied.append(change)
            self._bot.settings = reloaded(running, applied)
            where = fresh.config_path or "the environment"
            if applied:
                log.info("settings reloaded from %s: %s", where, ", ".join(map(str, applied)))
            else:
                what = "no reloadable setting changed" if found else "nothing changed"
                log.info("settings reloaded from %s: %s", where, what)
            restart = [change for change in found if change.setting not in self._appliers]
            if restart:
                log.warning(
                    "settings changed that take effect only after a restart: %s",
                    ", ".join(map(str, restart)),
                )

    async def _apply(self, change: Change) -> bool:
        try:
            done = self._appliers[change.setting](self._bot, change.new)
            if inspect.isawaitable(done):
                await done
        except Exception:
            # A bug in an applier: said with its traceback, and the reload stops there (what
            # was applied before it stays applied; the settings recorded say so).
            log.exception("settings reload: applying %s failed", change)
            return False
        return True
