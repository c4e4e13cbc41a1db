"""Typed, frozen settings: defaults, then config/newsbot.yaml, then the environment.

Secrets (the Discord token) come only from the environment and are wrapped in `Secret`, whose
repr and str never show the value. Any mistake is a ConfigError with a one-line message.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from bot.discord_limits import MAX_SEND_RATE
from bot.errors import SetupError
from bot.log_format import formatter, quiet_voice_warnings, set_log_level
from bot.sharding import Shards, checked_shard_ids, parse_shard_ids

DEFAULT_CONFIG_PATH = Path("config/newsbot.yaml")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_LOG_FORMATS = ("text", "json")
_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class ConfigError(SetupError):
    """A setting is missing, malformed or unknown."""


@dataclass(frozen=True, slots=True)
class Secret:
    """A value that must never reach a log line or a repr."""

    _value: str = field(repr=False)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class SeedSettings:
    folder: Path = Path("seeds")
    max_file_bytes: int = 256 * 1024
    # Worker processes for parsing large reloads; 0 means one per CPU core.
    workers: int = 0
    # Reload on its own when files in the folder change (bot.reload.watch).
    watch: bool = False


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    path: Path = Path("data/newsbot.db")
    # A PostgreSQL server to use instead of the SQLite file at `path`; None: SQLite.
    url: str | None = None

    def __repr__(self) -> str:
        # The URL may hold a password: like the token, it never reaches a repr or a log line.
        url = None if self.url is None else without_password(self.url)
        return f"DatabaseSettings(path={self.path!r}, url={url!r})"

    def describe(self) -> str:
        """Which database newsbot uses, for logs: the PostgreSQL URL without its password,
        else the SQLite file."""
        return without_password(self.url) if self.url else str(self.path.absolute())


@dataclass(frozen=True, slots=True)
class DiscordSettings:
    # Another Discord to talk to, such as a local emulator; None means discord.com.
    api_base: str | None = None
    gateway_url: str | None = None
    # "auto": sync slash commands at start when their definitions changed; "never": only
    # `newsbot sync` does.
    sync_commands: str = "auto"
    # How long the Previous/Next buttons under /news keep working after the last press, in
    # seconds; a restart in between does not stop them.
    page_timeout: float = 180.0
    # The server whose managers may also run /seeds; None: only the application's owner or team.
    operator_guild: int | None = None
    # How many shards the bot's servers are split into (None: as many as Discord recommends),
    # and which of them this process runs (None: all of them).
    shard_count: int | None = None
    shard_ids: tuple[int, ...] | None = None

    @property
    def shards(self) -> Shards:
        return Shards(self.shard_count, self.shard_ids)


@dataclass(frozen=True, slots=True)
class GlobalDigestSettings:
    """How newsbot posts every server's digest (each server's own choices are its
    `bot.models.DigestSettings`)."""

    # A digest missed by less than this (downtime) is posted at start; older ones are skipped.
    catch_up_hours: float = 6.0
    # Digest messages sent per second across all servers: under Discord's global 50/s, with
    # room left for the bot's other requests (interaction answers do not count towards it).
    send_rate: float = float(MAX_SEND_RATE)
    # Stories older than this many days are left out of digests (a server can set its own
    # with /digest set max_age); 0 means no limit.
    max_age_days: float = 0.0


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    # Where `newsbot run` serves /healthz, /readyz and /metrics, as host:port ([::1]:9108 for
    # IPv6; port 0 lets the system pick one); None: it serves nothing.
    listen: str | None = None

    @property
    def address(self) -> tuple[str, int] | None:
        """(host, port) to listen on, or None."""
        return None if self.listen is None else split_listen(self.listen)


@dataclass(frozen=True, slots=True)
class Settings:
    seeds: SeedSettings = SeedSettings()
    database: DatabaseSettings = DatabaseSettings()
    discord: DiscordSettings = DiscordSettings()
    digest: GlobalDigestSettings = GlobalDigestSettings()
    metrics: MetricsSettings = MetricsSettings()
    log_level: str = "INFO"
    # "text" (lines for people) or "json" (one object per line, for log collectors).
    log_format: str = "text"
    discord_token: Secret | None = None
    config_path: Path | None = None


# Each default is the dataclass field's: the loader reads them from these.
_DEFAULT = Settings()


def load(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from `path` (else $NEWSBOT_CONFIG, else config/newsbot.yaml if present)."""
    env = os.environ if environ is None else environ
    explicit = path or (Path(env["NEWSBOT_CONFIG"]) if env.get("NEWSBOT_CONFIG") else None)
    config_path = explicit or (DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.is_file() else None)
    raw = _read(config_path) if config_path else {}
    known = {"seeds", "database", "discord", "digest", "metrics", "log_level", "log_format"}
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"{config_path}: unknown setting {sorted(unknown)[0]!r}")
    seeds = _seed_settings(raw, env, config_path)
    database = _database_settings(raw, env, config_path)
    discord = _discord_settings(raw, env)
    digest = _digest_settings(raw)
    metrics = _metrics_settings(raw, env)
    log_level = env.get("NEWSBOT_LOG_LEVEL") or _string(raw, "log_level", _DEFAULT.log_level)
    log_level = log_level.upper()
    if log_level not in _LOG_LEVELS:
        raise ConfigError(f"log_level must be one of {', '.join(_LOG_LEVELS)}, not {log_level!r}")
    log_format = env.get("NEWSBOT_LOG_FORMAT") or _string(raw, "log_format", _DEFAULT.log_format)
    log_format = log_format.lower()
    if log_format not in _LOG_FORMATS:
        raise ConfigError(f"log_format must be text or json, not {log_format!r}")
    token = _secret(env, "DISCORD_TOKEN")
    return Settings(
        seeds=seeds,
        database=database,
        discord=discord,
        digest=digest,
        metrics=metrics,
        log_level=log_level,
        log_format=log_format,
        discord_token=Secret(token) if token else None,
        config_path=config_path,
    )


def _secret(env: Mapping[str, str], name: str) -> str:
    """A secret from the environment variable `name`, or from the file that `name`_FILE names
    (Docker and Compose secrets, systemd credentials: /run/secrets/..., never in the process's
    environment); "" when neither is set. The value is never part of an error message."""
    direct = env.get(name, "").strip()
    file_name = env.get(f"{name}_FILE", "").strip()
    if not file_name:
        return direct
    if direct:
        raise ConfigError(f"set {name} or {name}_FILE, not both")
    try:
        value = Path(file_name).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else "not UTF-8"
        raise ConfigError(f"{name}_FILE: cannot read {file_name}: {reason}") from None
    if not value:
        raise ConfigError(f"{name}_FILE: {file_name} is empty")
    return value


def _seed_settings(
    raw: Mapping[str, Any], env: Mapping[str, str], config_path: Path | None
) -> SeedSettings:
    section = _section(raw, "seeds", {"folder", "max_file_bytes", "workers", "watch"})
    default = _DEFAULT.seeds
    return SeedSettings(
        folder=_path(env, "NEWSBOT_SEEDS", section, "seeds.folder", config_path, default.folder),
        max_file_bytes=_positive_int(section, "seeds.max_file_bytes", default.max_file_bytes),
        workers=_positive_int(section, "seeds.workers", default.workers, allow_zero=True),
        watch=_switch(env, "NEWSBOT_SEEDS_WATCH", section, "seeds.watch", default.watch),
    )


def _database_settings(
    raw: Mapping[str, Any], env: Mapping[str, str], config_path: Path | None
) -> DatabaseSettings:
    section = _section(raw, "database", {"path", "url"})
    default = _DEFAULT.database
    return DatabaseSettings(
        path=_path(env, "NEWSBOT_DB", section, "database.path", config_path, default.path),
        url=_database_url(_secret(env, "NEWSBOT_DATABASE_URL") or section.get("url")),
    )


def _database_url(value: object) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.startswith(_POSTGRES_SCHEMES) and " " not in value:
        return value
    message = "setting 'database.url' must be a postgresql:// or postgres:// URL"
    # Only the scheme is shown: the rest of a URL may hold a password.
    if isinstance(value, str) and "://" in value:
        message += f", not {value.split('://', 1)[0]}://..."
    raise ConfigError(message)


def without_password(url: str) -> str:
    """`url` with its password, if any, masked (for display)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:********@{host}"))


def _discord_settings(raw: Mapping[str, Any], env: Mapping[str, str]) -> DiscordSettings:
    section = _section(
        raw,
        "discord",
        {
            "api_base",
            "gateway_url",
            "sync_commands",
            "page_timeout",
            "operator_guild",
            "shard_count",
            "shard_ids",
        },
    )
    default = _DEFAULT.discord
    shards = _shards(section, env)
    return DiscordSettings(
        api_base=_endpoint(
            env.get("DISCORD_API_BASE") or section.get("api_base"),
            "discord.api_base",
            ("http://", "https://"),
        ),
        gateway_url=_endpoint(
            env.get("DISCORD_GATEWAY_URL") or section.get("gateway_url"),
            "discord.gateway_url",
            ("ws://", "wss://"),
        ),
        sync_commands=_choice(
            section, "discord.sync_commands", ("auto", "never"), default.sync_commands
        ),
        page_timeout=_positive_number(section, "discord.page_timeout", default.page_timeout),
        operator_guild=_snowflake(section, "discord.operator_guild"),
        shard_count=shards.count,
        shard_ids=shards.ids,
    )


def _shards(section: Mapping[str, Any], env: Mapping[str, str]) -> Shards:
    count: object = env.get("NEWSBOT_SHARD_COUNT") or section.get("shard_count")
    if isinstance(count, str) and count.strip().isdigit():
        count = int(count)
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise ConfigError(
            f"setting 'discord.shard_count' must be a positive whole number, not {count!r}"
        )
    ids = _shard_ids(env.get("NEWSBOT_SHARD_IDS") or section.get("shard_ids"))
    if ids is not None and count is None:
        # Without the total, an id names no particular servers.
        raise ConfigError("setting 'discord.shard_ids' needs discord.shard_count set too")
    try:
        return Shards(count, ids)
    except ValueError as error:
        raise ConfigError(f"setting 'discord.shard_ids': {error}") from None


def _shard_ids(value: object) -> tuple[int, ...] | None:
    """Shard ids as text (`0-3`, `0,1,2,3`: the environment, or the file) or a YAML list."""
    if value is None:
        return None
    try:
        if isinstance(value, str):
            return parse_shard_ids(value)
        if isinstance(value, list) and all(_is_whole(shard) for shard in value):
            return checked_shard_ids(value)
    except ValueError as error:
        raise ConfigError(f"setting 'discord.shard_ids' {error}") from None
    raise ConfigError(
        f"setting 'discord.shard_ids' must be shard ids such as 0-3 or [0, 1], not {value!r}"
    )


def _is_whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _digest_settings(raw: Mapping[str, Any]) -> GlobalDigestSettings:
    section = _section(raw, "digest", {"catch_up_hours", "send_rate", "max_age_days"})
    default = _DEFAULT.digest
    catch_up = _positive_number(section, "digest.catch_up_hours", default.catch_up_hours)
    if catch_up >= 24:
        raise ConfigError("setting 'digest.catch_up_hours' must be under 24")
    max_age_days = _positive_number(
        section, "digest.max_age_days", default.max_age_days, allow_zero=True
    )
    if not max_age_days <= 36500:  # also refuses .nan
        raise ConfigError("setting 'digest.max_age_days' must be at most 36500 (0 = no limit)")
    send_rate = _positive_number(section, "digest.send_rate", default.send_rate)
    return GlobalDigestSettings(
        catch_up_hours=catch_up,
        # Discord's global limit, less the headroom newsbot keeps; more would only bounce off it.
        send_rate=min(send_rate, float(MAX_SEND_RATE)),
        max_age_days=max_age_days,
    )


def _metrics_settings(raw: Mapping[str, Any], env: Mapping[str, str]) -> MetricsSettings:
    section = _section(raw, "metrics", {"listen"})
    value = env.get("NEWSBOT_METRICS_LISTEN") or section.get("listen")
    if value is None or value == "":
        return MetricsSettings()
    if not isinstance(value, str):
        raise ConfigError(f"setting 'metrics.listen' must be host:port, not {value!r}")
    try:
        host, port = split_listen(value)
    except ValueError as error:
        raise ConfigError(f"setting 'metrics.listen' {error}") from None
    return MetricsSettings(listen=f"[{host}]:{port}" if ":" in host else f"{host}:{port}")


def split_listen(value: str) -> tuple[str, int]:
    """("127.0.0.1", 9108) from "127.0.0.1:9108", ("::1", 9108) from "[::1]:9108"; ValueError
    saying what is wrong otherwise."""
    text = value.strip()
    host, colon, port_text = text.rpartition(":")
    if text.startswith("["):
        host = host[1:-1] if host.endswith("]") else ""
    if not colon or not host or " " in host or (":" in host and not text.startswith("[")):
        raise ValueError(f"must be host:port such as 127.0.0.1:9108 or [::1]:9108, not {value!r}")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"port must be a number from 0 to 65535, not {port_text!r}")
    return host, int(port_text)


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"config file {path} is not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must be a mapping of settings")
    return data


def _section(raw: Mapping[str, Any], name: str, known: set[str]) -> dict[str, Any]:
    section = raw.get(name) or {}
    if not isinstance(section, dict):
        raise ConfigError(f"setting {name!r} must be a mapping")
    unknown = set(section) - known
    if unknown:
        raise ConfigError(f"unknown setting '{name}.{sorted(unknown)[0]}'")
    return section


def _string(raw: Mapping[str, Any], name: str, default: str) -> str:
    value = raw.get(name.rsplit(".", 1)[-1], default)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"setting {name!r} must be a non-empty text")
    return value.strip()


def _path(
    env: Mapping[str, str],
    variable: str,
    raw: Mapping[str, Any],
    name: str,
    config_path: Path | None,
    default: Path,
) -> Path:
    """A path from the environment (as given: relative to the current folder), else from the
    config file (relative to the file's folder, so that the bot started from anywhere finds its
    files), else the default (relative to the current folder)."""
    if env.get(variable):
        return Path(env[variable])
    if name.rsplit(".", 1)[-1] not in raw or config_path is None:
        return default
    return (config_path.parent / _string(raw, name, str(default))).resolve()


def _positive_int(
    raw: Mapping[str, Any], name: str, default: int, *, allow_zero: bool = False
) -> int:
    value = raw.get(name.rsplit(".", 1)[-1], default)
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if allow_zero else 1):
        bound = "zero or more" if allow_zero else "a positive whole number"
        raise ConfigError(f"setting {name!r} must be {bound}, not {value!r}")
    return value


_SWITCH_WORDS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def _switch(
    env: Mapping[str, str], variable: str, raw: Mapping[str, Any], name: str, default: bool
) -> bool:
    """An on/off setting: true or false in the file; in the environment also yes/no, 1/0."""
    if env.get(variable):
        word = env[variable].strip().lower()
        if word not in _SWITCH_WORDS:
            raise ConfigError(f"{variable} must be true or false (or yes/no, 1/0), not {word!r}")
        return _SWITCH_WORDS[word]
    value = raw.get(name.rsplit(".", 1)[-1], default)
    if not isinstance(value, bool):
        raise ConfigError(f"setting {name!r} must be true or false, not {value!r}")
    return value


def _snowflake(raw: Mapping[str, Any], name: str) -> int | None:
    value = raw.get(name.rsplit(".", 1)[-1])
    if value is None:
        return None
    # Discord shows IDs as text ("Copy Server ID"): a quoted one is fine too.
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"setting {name!r} must be a Discord server ID (a number), not {value!r}")
    return value


def _endpoint(value: object, name: str, schemes: tuple[str, ...]) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.startswith(schemes) or " " in value:
        raise ConfigError(f"setting {name!r} must be a {' or '.join(schemes)} URL, not {value!r}")
    return value.rstrip("/")


def _choice(raw: Mapping[str, Any], name: str, choices: tuple[str, ...], default: str) -> str:
    value = raw.get(name.rsplit(".", 1)[-1], default)
    if value not in choices:
        raise ConfigError(f"setting {name!r} must be one of {', '.join(choices)}, not {value!r}")
    return str(value)


def _positive_number(
    raw: Mapping[str, Any], name: str, default: float, *, allow_zero: bool = False
) -> float:
    value = raw.get(name.rsplit(".", 1)[-1], default)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or value < 0
        or (value == 0 and not allow_zero)
    ):
        bound = "zero or a positive number" if allow_zero else "a positive number"
        raise ConfigError(f"setting {name!r} must be {bound}, not {value!r}")
    return float(value)


def configure_logging(level: str, log_format: str = "text", secrets: Iterable[str] = ()) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(log_format, secrets))
    logging.basicConfig(level=level, handlers=[handler])
    set_log_level(level)
    quiet_voice_warnings()
