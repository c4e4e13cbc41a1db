"""Settings: defaults, the config file, environment overrides and one-line errors."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from bot import config
from bot.config import ConfigError, Secret
from bot.digest import DEFAULT_CATCH_UP
from bot.seeds import DEFAULT_MAX_FILE_BYTES

REPO = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "newsbot.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_config_file_states_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    # The defaults' relative paths are seen from the folder newsbot starts in: the repo root.
    monkeypatch.chdir(REPO)
    defaults = config.Settings()

    shipped = config.load(REPO / "config" / "newsbot.yaml", environ={})

    assert shipped.seeds.folder == defaults.seeds.folder.resolve()
    assert replace(shipped.seeds, folder=defaults.seeds.folder) == defaults.seeds
    assert shipped.database.path == defaults.database.path.resolve()
    assert shipped.log_level == "INFO"


def test_file_values_are_read(tmp_path: Path) -> None:
    path = write(tmp_path, "seeds:\n  folder: elsewhere\n  workers: 2\ndatabase:\n  path: x.db\n")

    settings = config.load(path, environ={})

    assert settings.seeds.folder == tmp_path.resolve() / "elsewhere"
    assert settings.seeds.workers == 2
    assert settings.database.path == tmp_path.resolve() / "x.db"
    assert settings.config_path == path


def test_relative_paths_in_the_config_file_resolve_against_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "deploy" / "config"
    folder.mkdir(parents=True)
    path = write(folder, "seeds:\n  folder: ../seeds\ndatabase:\n  path: ../data/news.db\n")
    monkeypatch.chdir(tmp_path)

    settings = config.load(path, environ={})

    assert settings.seeds.folder == (tmp_path / "deploy" / "seeds").resolve()
    assert settings.database.path == (tmp_path / "deploy" / "data" / "news.db").resolve()


def test_the_config_file_folder_counts_when_the_file_is_named_relatively(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config").mkdir()
    write(tmp_path / "config", "seeds:\n  folder: ../seeds\n")
    monkeypatch.chdir(tmp_path)

    settings = config.load(Path("config/newsbot.yaml"), environ={})

    assert settings.seeds.folder == (tmp_path / "seeds").resolve()


def test_absolute_paths_in_the_config_file_are_kept(tmp_path: Path) -> None:
    database = tmp_path / "elsewhere" / "news.db"
    path = write(tmp_path, f"database:\n  path: {database}\n")

    assert config.load(path, environ={}).database.path == database.resolve()


def test_paths_from_the_environment_stay_relative_to_the_current_folder(tmp_path: Path) -> None:
    path = write(tmp_path, "seeds:\n  folder: file-seeds\ndatabase:\n  path: file.db\n")

    settings = config.load(path, environ={"NEWSBOT_SEEDS": "seeds", "NEWSBOT_DB": "data/x.db"})

    assert settings.seeds.folder == Path("seeds")
    assert settings.database.path == Path("data/x.db")


def test_paths_left_out_of_the_config_file_are_the_defaults(tmp_path: Path) -> None:
    settings = config.load(write(tmp_path, "log_level: INFO\n"), environ={})

    assert settings.seeds.folder == Path("seeds")
    assert settings.database.path == Path("data/newsbot.db")


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "database:\n  path: file.db\n")
    environ = {
        "NEWSBOT_DB": "env.db",
        "NEWSBOT_SEEDS": "env-seeds",
        "NEWSBOT_LOG_LEVEL": "debug",
    }

    settings = config.load(path, environ=environ)

    assert settings.database.path == Path("env.db")
    assert settings.seeds.folder == Path("env-seeds")
    assert settings.log_level == "DEBUG"


def test_newsbot_config_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "log_level: WARNING\n")

    settings = config.load(environ={"NEWSBOT_CONFIG": str(path)})

    assert settings.log_level == "WARNING"


def test_token_comes_from_the_environment_and_never_shows(tmp_path: Path) -> None:
    settings = config.load(write(tmp_path, ""), environ={"DISCORD_TOKEN": "sekret.token.value"})

    assert settings.discord_token is not None
    assert settings.discord_token.reveal() == "sekret.token.value"
    assert "sekret" not in repr(settings)
    assert "sekret" not in str(settings.discord_token)
    assert "sekret" not in f"{settings.discord_token}"


def test_token_can_come_from_a_secret_file_instead(tmp_path: Path) -> None:
    secret = tmp_path / "discord_token"
    secret.write_text("sekret.from.file\n")

    settings = config.load(write(tmp_path, ""), environ={"DISCORD_TOKEN_FILE": str(secret)})

    assert settings.discord_token is not None
    assert settings.discord_token.reveal() == "sekret.from.file"


def test_database_url_can_come_from_a_secret_file(tmp_path: Path) -> None:
    secret = tmp_path / "database_url"
    secret.write_text("postgresql://newsbot:pw@db/newsbot\n")

    settings = config.load(write(tmp_path, ""), environ={"NEWSBOT_DATABASE_URL_FILE": str(secret)})

    assert settings.database.url == "postgresql://newsbot:pw@db/newsbot"


@pytest.mark.parametrize(
    ("content", "environ", "message"),
    [
        pytest.param(
            None,
            {},
            "DISCORD_TOKEN_FILE: cannot read {file}: No such file or directory",
            id="missing",
        ),
        pytest.param(" \n", {}, "DISCORD_TOKEN_FILE: {file} is empty", id="empty"),
        pytest.param(
            "sekret",
            {"DISCORD_TOKEN": "other"},
            "set DISCORD_TOKEN or DISCORD_TOKEN_FILE, not both",
            id="both",
        ),
    ],
)
def test_a_token_file_that_cannot_serve_is_one_line_without_the_token(
    tmp_path: Path, content: str | None, environ: dict[str, str], message: str
) -> None:
    secret = tmp_path / "discord_token"
    if content is not None:
        secret.write_text(content)

    with pytest.raises(ConfigError) as raised:
        config.load(write(tmp_path, ""), environ={"DISCORD_TOKEN_FILE": str(secret), **environ})

    assert str(raised.value) == message.format(file=secret)
    assert "sekret" not in str(raised.value) and "other" not in str(raised.value)


def test_token_in_a_log_line_is_masked(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        logging.getLogger("test").info("token is %s", Secret("sekret"))

    assert "sekret" not in caplog.text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("seeds:\n  foldr: x\n", "unknown setting 'seeds.foldr'"),
        ("colour: blue\n", "unknown setting 'colour'"),
        ("seeds:\n  max_file_bytes: -1\n", "seeds.max_file_bytes"),
        ("seeds:\n  workers: many\n", "seeds.workers"),
        ("seeds: [a]\n", "'seeds' must be a mapping"),
        ("log_level: LOUD\n", "log_level must be one of"),
        ("seeds: {folder: [unclosed\n", "not valid YAML"),
        ("- a list\n", "must be a mapping"),
    ],
)
def test_bad_config_is_one_clear_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, text), environ={})

    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_named_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        config.load(environ={"NEWSBOT_CONFIG": str(tmp_path / "absent.yaml")})


def test_without_any_config_file_the_defaults_apply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    settings = config.load(environ={})

    assert settings == config.Settings()


def test_discord_endpoints_come_from_the_environment(tmp_path: Path) -> None:
    settings = config.load(
        write(tmp_path, ""),
        environ={
            "DISCORD_API_BASE": "http://127.0.0.1:8080/api/v10/",
            "DISCORD_GATEWAY_URL": "ws://127.0.0.1:8080/gateway",
        },
    )

    assert settings.discord.api_base == "http://127.0.0.1:8080/api/v10"
    assert settings.discord.gateway_url == "ws://127.0.0.1:8080/gateway"


def test_discord_endpoints_are_unset_by_default(tmp_path: Path) -> None:
    settings = config.load(write(tmp_path, ""), environ={})

    assert settings.discord.api_base is None
    assert settings.discord.gateway_url is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("discord:\n  api_base: ftp://x\n", "discord.api_base"),
        ("discord:\n  gateway_url: http://x\n", "discord.gateway_url"),
        ("discord:\n  sync_commands: always\n", "discord.sync_commands"),
        ("discord:\n  page_timeout: 0\n", "discord.page_timeout"),
    ],
)
def test_bad_discord_settings_are_one_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config.load(write(tmp_path, text), environ={})


def test_database_url_is_unset_by_default_so_sqlite_is_used(tmp_path: Path) -> None:
    shipped = config.load(REPO / "config" / "newsbot.yaml", environ={})

    assert config.DatabaseSettings().url is None
    assert shipped.database.url is None
    assert (
        config.load(write(tmp_path, ""), environ={"NEWSBOT_DATABASE_URL": ""}).database.url is None
    )


def test_database_url_comes_from_the_file_or_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "database:\n  url: postgresql://newsbot@db.example:5432/newsbot\n")

    from_file = config.load(path, environ={})
    from_env = config.load(path, environ={"NEWSBOT_DATABASE_URL": "postgres://other@127.0.0.1/x"})

    assert from_file.database.url == "postgresql://newsbot@db.example:5432/newsbot"
    assert from_env.database.url == "postgres://other@127.0.0.1/x"


@pytest.mark.parametrize(
    "url", ["mysql://newsbot:hunter2@db/newsbot", "newsbot:hunter2@db/newsbot", "sqlite:///x.db"]
)
def test_a_database_url_that_is_not_postgresql_is_one_line_naming_the_setting(
    tmp_path: Path, url: str
) -> None:
    with pytest.raises(
        ConfigError, match=r"setting 'database\.url' must be a postgresql://"
    ) as caught:
        config.load(write(tmp_path, ""), environ={"NEWSBOT_DATABASE_URL": url})

    assert "\n" not in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_a_password_in_the_database_url_never_shows(tmp_path: Path) -> None:
    environ = {"NEWSBOT_DATABASE_URL": "postgresql://newsbot:hunter2@db.example/newsbot"}

    settings = config.load(write(tmp_path, ""), environ=environ)

    assert settings.database.url == "postgresql://newsbot:hunter2@db.example/newsbot"
    assert "hunter2" not in repr(settings)
    assert "postgresql://newsbot:********@db.example/newsbot" in repr(settings)
    # What the start-up log line names as the database.
    assert settings.database.describe() == "postgresql://newsbot:********@db.example/newsbot"


def test_the_database_is_described_as_the_sqlite_file_without_a_url(tmp_path: Path) -> None:
    settings = config.load(write(tmp_path, "database:\n  path: news.db\n"), environ={})

    assert settings.database.describe() == str((tmp_path / "news.db").absolute())


def test_operator_guild_is_unset_by_default_and_read_as_a_server_id(tmp_path: Path) -> None:
    quoted = write(tmp_path, 'discord:\n  operator_guild: "123456789012345678"\n')

    assert config.load(REPO / "config" / "newsbot.yaml", environ={}).discord.operator_guild is None
    assert config.load(quoted, environ={}).discord.operator_guild == 123456789012345678


def test_operator_guild_that_is_not_an_id_is_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, "discord:\n  operator_guild: my server\n")

    with pytest.raises(ConfigError, match=r"'discord\.operator_guild' must be a Discord server ID"):
        config.load(path, environ={})


def test_digest_max_age_days_defaults_to_no_limit_and_is_read(tmp_path: Path) -> None:
    shipped = config.load(REPO / "config" / "newsbot.yaml", environ={})
    path = write(tmp_path, "digest:\n  max_age_days: 1.5\n")

    assert shipped.digest == config.GlobalDigestSettings()
    assert config.GlobalDigestSettings().max_age_days == 0
    assert config.load(path, environ={}).digest.max_age_days == 1.5


@pytest.mark.parametrize("value", ["-1", "soon", "true", ".nan", "40000"])
def test_a_bad_digest_max_age_days_is_one_line(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match=r"setting 'digest\.max_age_days' must be") as caught:
        config.load(write(tmp_path, f"digest:\n  max_age_days: {value}\n"), environ={})
    assert "\n" not in str(caught.value)


def test_the_scheduler_does_not_log_every_tick() -> None:
    root, apscheduler = logging.getLogger(), logging.getLogger("apscheduler")
    saved = root.level, apscheduler.level
    try:
        root.setLevel(logging.INFO)  # as `newsbot run` logs by default
        config.configure_logging("INFO")

        # APScheduler's "Running job" / "executed successfully" lines are INFO.
        executor = logging.getLogger("apscheduler.executors.default")
        assert not executor.isEnabledFor(logging.INFO)
        assert executor.isEnabledFor(logging.WARNING)
        assert logging.getLogger("bot.poster").isEnabledFor(logging.INFO)
    finally:
        root.setLevel(saved[0])
        apscheduler.setLevel(saved[1])


def test_an_empty_config_file_gives_every_dataclass_default(tmp_path: Path) -> None:
    defaults = config.Settings()

    loaded = config.load(write(tmp_path, ""), environ={})

    assert loaded.seeds == defaults.seeds
    assert loaded.database == defaults.database
    assert loaded.discord == defaults.discord
    assert loaded.digest == defaults.digest
    assert loaded.log_level == defaults.log_level


def test_the_seed_reader_and_the_poster_default_to_the_settings_defaults() -> None:
    assert config.SeedSettings().max_file_bytes == DEFAULT_MAX_FILE_BYTES
    assert timedelta(hours=config.GlobalDigestSettings().catch_up_hours) == DEFAULT_CATCH_UP


def test_shards_are_unset_by_default_one_process_running_them_all() -> None:
    discord = config.load(REPO / "config" / "newsbot.yaml", environ={}).discord

    assert (discord.shard_count, discord.shard_ids) == (None, None)
    assert discord.shards.owns(123456789012345678)


def test_shards_are_read_from_the_environment_as_text(tmp_path: Path) -> None:
    environ = {"NEWSBOT_SHARD_COUNT": "8", "NEWSBOT_SHARD_IDS": "2-3"}

    discord = config.load(write(tmp_path, ""), environ=environ).discord

    assert (discord.shard_count, discord.shard_ids) == (8, (2, 3))


def test_shards_are_read_from_the_file_as_a_list_or_text(tmp_path: Path) -> None:
    listed = write(tmp_path, "discord:\n  shard_count: 4\n  shard_ids: [0, 1]\n")
    assert config.load(listed, environ={}).discord.shard_ids == (0, 1)
    ranged = write(tmp_path, "discord:\n  shard_count: 4\n  shard_ids: 0,3\n")
    assert config.load(ranged, environ={}).discord.shard_ids == (0, 3)


def test_the_environment_overrides_the_file_shards(tmp_path: Path) -> None:
    path = write(tmp_path, "discord:\n  shard_count: 4\n  shard_ids: [0, 1]\n")
    environ = {"NEWSBOT_SHARD_COUNT": "2", "NEWSBOT_SHARD_IDS": "1"}

    discord = config.load(path, environ=environ).discord

    assert (discord.shard_count, discord.shard_ids) == (2, (1,))


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"NEWSBOT_SHARD_IDS": "0-1"}, r"'discord\.shard_ids' needs discord\.shard_count"),
        ({"NEWSBOT_SHARD_COUNT": "2", "NEWSBOT_SHARD_IDS": "0-2"}, "shard 2 is not one of 0-1"),
        ({"NEWSBOT_SHARD_COUNT": "4", "NEWSBOT_SHARD_IDS": "1,1"}, "lists shard 1 twice"),
        ({"NEWSBOT_SHARD_COUNT": "4", "NEWSBOT_SHARD_IDS": "first"}, "must be shard ids"),
        ({"NEWSBOT_SHARD_COUNT": "0"}, r"'discord\.shard_count' must be a positive whole"),
        ({"NEWSBOT_SHARD_COUNT": "many"}, r"'discord\.shard_count' must be a positive whole"),
    ],
)
def test_impossible_shards_in_the_environment_are_one_line(
    tmp_path: Path, environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        config.load(write(tmp_path, ""), environ=environ)

    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("shard_count: 4\n  shard_ids: []", "at least one shard id"),
        ("shard_count: 4\n  shard_ids: [0, one]", "must be shard ids"),
        ("shard_count: 4\n  shard_ids: [true]", "must be shard ids"),
        ("shard_count: 4\n  shard_ids: {0: 1}", "must be shard ids"),
        ("shard_count: 2.5", r"'discord\.shard_count' must be a positive whole"),
        ("shard_count: true", r"'discord\.shard_count' must be a positive whole"),
    ],
)
def test_impossible_shards_in_the_file_are_one_line(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, f"discord:\n  {text}\n")

    with pytest.raises(ConfigError, match=message) as raised:
        config.load(path, environ={})

    assert "\n" not in str(raised.value)


# --- metrics.listen -----------------------------------------------------------------------------


def test_the_health_listener_is_off_by_default() -> None:
    shipped = config.load(REPO / "config" / "newsbot.yaml", environ={})

    assert shipped.metrics.listen is None
    assert shipped.metrics.address is None


@pytest.mark.parametrize(
    ("value", "address"),
    [
        ("127.0.0.1:9108", ("127.0.0.1", 9108)),
        ("0.0.0.0:9108", ("0.0.0.0", 9108)),
        ("[::1]:9108", ("::1", 9108)),
        ("localhost:0", ("localhost", 0)),
    ],
)
def test_metrics_listen_is_read_from_the_file_as_host_and_port(
    tmp_path: Path, value: str, address: tuple[str, int]
) -> None:
    settings = config.load(write(tmp_path, f'metrics:\n  listen: "{value}"\n'), environ={})

    assert settings.metrics.listen == value
    assert settings.metrics.address == address


def test_the_environment_overrides_metrics_listen(tmp_path: Path) -> None:
    path = write(tmp_path, "metrics:\n  listen: 127.0.0.1:9108\n")

    settings = config.load(path, environ={"NEWSBOT_METRICS_LISTEN": "0.0.0.0:9200"})

    assert settings.metrics.address == ("0.0.0.0", 9200)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("localhost", "setting 'metrics.listen' must be host:port such as 127.0.0.1:9108"),
        ("127.0.0.1:70000", "setting 'metrics.listen' port must be a number from 0 to 65535"),
        ("127.0.0.1:http", "port must be a number from 0 to 65535, not 'http'"),
        (":9108", "must be host:port"),
        ("::1:9108", "must be host:port such as 127.0.0.1:9108 or [::1]:9108"),
        ("[::1]", "must be host:port"),
    ],
)
def test_a_malformed_metrics_listen_is_one_line_naming_the_setting(
    tmp_path: Path, value: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, ""), environ={"NEWSBOT_METRICS_LISTEN": value})

    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_metrics_listen_that_is_not_text_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'metrics\.listen' must be host:port, not 9108"):
        config.load(write(tmp_path, "metrics:\n  listen: 9108\n"), environ={})


def test_seed_watching_is_off_unless_switched_on_in_the_file(tmp_path: Path) -> None:
    assert not config.load(write(tmp_path, "seeds:\n  folder: x\n"), environ={}).seeds.watch

    settings = config.load(write(tmp_path, "seeds:\n  watch: true\n"), environ={})

    assert settings.seeds.watch


@pytest.mark.parametrize(
    ("word", "watch"),
    [("true", True), ("YES", True), ("1", True), ("false", False), ("no", False), ("0", False)],
)
def test_seed_watching_from_the_environment_overrides_the_file(
    tmp_path: Path, word: str, watch: bool
) -> None:
    path = write(tmp_path, f"seeds:\n  watch: {str(not watch).lower()}\n")

    settings = config.load(path, environ={"NEWSBOT_SEEDS_WATCH": word})

    assert settings.seeds.watch is watch


@pytest.mark.parametrize(
    ("text", "environ", "message"),
    [
        ("", {"NEWSBOT_SEEDS_WATCH": "sometimes"}, "NEWSBOT_SEEDS_WATCH must be true or false"),
        ("seeds:\n  watch: often\n", {}, "setting 'seeds.watch' must be true or false"),
        ("seeds:\n  watch: 1\n", {}, "setting 'seeds.watch' must be true or false"),
    ],
)
def test_a_seed_watch_switch_that_is_neither_on_nor_off_is_one_clear_line(
    tmp_path: Path, text: str, environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, text or "log_level: INFO\n"), environ=environ)

    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
