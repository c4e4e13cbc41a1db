"""The command line: checking, loading and reading news, and one-line errors for mistakes."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import shutil
import socket
import sqlite3
import sys
from importlib import metadata
from pathlib import Path

import discord
import pytest

from bot.cli import main
from bot.store.sqlite import SqliteStore
from bot.store.sqlite import connection as sqlite_connection
from tests.discord_emulator import DiscordEmulator
from tests.factories import SHIPPED_TITLES_NEWEST_FIRST
from tests.helpers import run_module
from tests.hostile_corpus import DAMAGED, GOOD, write_hostile_corpus
from tests.odd_entries import write_odd_entries

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "seeds"


@pytest.fixture(autouse=True)
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own database; the shipped seeds are the default folder."""
    database = tmp_path / "data" / "news.db"
    monkeypatch.setenv("NEWSBOT_DB", str(database))
    monkeypatch.setenv("NEWSBOT_SEEDS", str(SHIPPED))
    monkeypatch.delenv("NEWSBOT_CONFIG", raising=False)
    return database


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def test_check_accepts_every_shipped_seed() -> None:
    code, out = run("seeds", "check", str(SHIPPED))

    assert code == 0
    assert out.count("ok ") == 5
    assert "5 files: 5 ok, 0 duplicate, 0 rejected" in out


def test_check_json_lists_every_file_with_status_and_id() -> None:
    code, out = run("seeds", "check", "--json")

    files = json.loads(out)["files"]
    assert code == 0
    assert [row["status"] for row in files] == ["ok"] * 5
    assert all(row["story_id"].isdigit() for row in files)
    assert any(row["warnings"] for row in files)  # seed 004's mojibake repair is reported


def test_check_of_a_hostile_folder_gives_every_file_a_verdict_and_writes_nothing(
    tmp_path: Path, environment: Path
) -> None:
    folder = tmp_path / "hostile"
    expected = write_hostile_corpus(folder)
    env = {**os.environ, "NEWSBOT_DB": str(environment)}

    # A separate process: a crash in a parser would kill it, not the test run.
    finished = run_module("bot", "seeds", "check", str(folder), "--json", env=env)

    assert finished.returncode == 1, finished.stderr
    verdicts = {row["file"]: row for row in json.loads(finished.stdout)["files"]}
    assert set(verdicts) == {*expected, *DAMAGED, "good.txt", "good_duplicate.txt"}
    for name, phrase in expected.items():
        assert verdicts[name]["status"] == "rejected"
        assert any(phrase in reason for reason in verdicts[name]["reasons"]), name
    for name, (_, phrase) in DAMAGED.items():
        assert verdicts[name]["status"] == "ok", name
        assert any(phrase in warning for warning in verdicts[name]["warnings"]), name
    assert verdicts["good_duplicate.txt"]["status"] == "duplicate"
    assert not environment.exists()
    assert not environment.parent.exists()


def test_seeds_check_and_seeds_load_agree_on_every_file(tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    odd = write_odd_entries(folder, GOOD)
    write_hostile_corpus(folder)

    check_code, check_out = run("seeds", "check", str(folder), "--json")
    load_code, load_out = run("seeds", "load", str(folder), "--json")

    rows = json.loads(check_out)["files"]
    report = json.loads(load_out)
    rejected_by_check = {
        row["file"]: "; ".join(row["reasons"]) for row in rows if row["status"] == "rejected"
    }
    assert rejected_by_check == {r["file"]: r["reason"] for r in report["rejected"]}
    assert {name: rejected_by_check[name] for name in odd} == odd
    assert {row["file"] for row in rows if row["status"] == "ok"} == {
        change["file"] for change in report["added"]
    }
    assert {row["file"]: row["duplicate_of"] for row in rows if row["status"] == "duplicate"} == {
        duplicate["file"]: duplicate["kept"] for duplicate in report["duplicates"]
    }
    assert (check_code, load_code) == (1, 0)
    # Printable anywhere: a name that is not UTF-8 is shown escaped, not as a lone surrogate.
    check_out.encode("utf-8")
    load_out.encode("utf-8")


def test_load_lists_skipped_entries_with_their_reasons(tmp_path: Path) -> None:
    folder = tmp_path / "odd"
    odd = write_odd_entries(folder, GOOD)
    (folder / "good.txt").write_text(GOOD)

    code, out = run("seeds", "load", str(folder))

    assert code == 0
    assert "1 added" in out
    for name, reason in odd.items():
        assert f"  rejected {name}: {reason}\n" in out


def test_load_prints_the_report() -> None:
    code, out = run("seeds", "load")

    assert code == 0
    assert "5 added, 0 updated, 0 unchanged, 0 retired, 0 rejected; 5 stories stored" in out


def test_load_json_report() -> None:
    run("seeds", "load")

    code, out = run("seeds", "load", "--json")

    report = json.loads(out)
    assert code == 0
    assert (report["stories"], report["unchanged"], report["added"]) == (5, 5, [])


def test_news_on_a_topic_lists_stories_newest_first_with_provider_date_and_link() -> None:
    run("seeds", "load")

    code, out = run("news", "--topic", "ai")

    assert code == 0
    blocks = [block.splitlines() for block in out.strip().split("\n\n")]
    assert [block[0] for block in blocks] == SHIPPED_TITLES_NEWEST_FIRST
    assert blocks[0][1].strip() == "Euronews · 2023-06-14 11:29 UTC"
    assert blocks[0][2].strip().startswith("https://www.euronews.com/my-europe/2023/06/14/")


def test_news_json_carries_fields_topics_lead_image_and_related_links() -> None:
    run("seeds", "load")

    code, out = run("news", "--query", "entreats", "--json")

    [story] = json.loads(out)["stories"]
    assert code == 0
    assert story["title"] == "European Parliament entreats a ban on facial recognition."
    assert story["topics"] == ["Computer Vision", "AI"]
    assert story["lead_image"]["url"].startswith("https://techstory.in/")
    assert len(story["related"]) == 6
    assert story["related"][0]["provider"] == "TechCrunch"
    assert "secured" not in story


def test_news_limit_and_empty_result() -> None:
    run("seeds", "load")

    assert len(json.loads(run("news", "--limit", "2", "--json")[1])["stories"]) == 2
    code, out = run("news", "--query", "zeppelin")

    assert code == 0
    assert out.strip().splitlines()[-1] == "No stories match."


def test_topics_lists_counts() -> None:
    run("seeds", "load")

    code, out = run("topics")

    assert code == 0
    assert [line.split(None, 1) for line in out.strip().splitlines()] == [
        ["5", "AI"],
        ["5", "Computer Vision"],
    ]


def test_topics_json() -> None:
    run("seeds", "load")

    assert json.loads(run("topics", "--json")[1]) == [
        {"name": "AI", "stories": 5},
        {"name": "Computer Vision", "stories": 5},
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("news", "--topic", "Gardening"), "no topic 'Gardening'"),
        (("seeds", "load", "/nonexistent/seeds"), "does not exist"),
        (("seeds", "check", "/nonexistent/seeds"), "does not exist"),
    ],
)
def test_user_mistakes_are_one_line_and_a_nonzero_exit(
    argv: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run("seeds", "load")
    capsys.readouterr()

    code, _ = run(*argv)

    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_unreadable_database_is_one_line(
    environment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    environment.parent.mkdir(parents=True)
    environment.write_bytes(b"this is not a database" * 100)

    code, _ = run("topics")

    err = capsys.readouterr().err
    assert code == 2
    assert str(environment) in err
    assert err.count("\n") == 1


def test_bad_config_file_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("seeds:\n  foldr: x\n")
    monkeypatch.setenv("NEWSBOT_CONFIG", str(bad))

    code, _ = run("topics")

    assert code == 2
    assert "unknown setting 'seeds.foldr'" in capsys.readouterr().err


def test_python_dash_m_bot_is_the_same_command() -> None:
    finished = run_module("bot", "--help")

    assert finished.returncode == 0
    assert "seeds" in finished.stdout
    assert "news" in finished.stdout


def test_run_without_a_token_says_how_to_get_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)

    code, _ = run("run")

    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("newsbot: error: DISCORD_TOKEN is not set")
    assert "applications.commands" in err
    assert err.count("\n") == 1


def test_digest_preview_prints_the_ranked_clustered_digest() -> None:
    run("seeds", "load")

    code, out = run("digest", "preview", "--topics", "ai", "--count", "3")

    lines = out.splitlines()
    assert code == 0
    assert lines[0].startswith("Daily news — ")
    # The header counts the stories listed, as the posted digest's header does.
    assert lines[1] == "3 stories on AI."
    assert sum(1 for line in lines if line[:3] in {"1. ", "2. ", "3. "}) == 3
    assert "4. " not in out
    # Seeds 001 and 002 cover one event: wherever that item lands, the other is its coverage.
    assert "also covered by" in out


def test_digest_preview_with_a_maximum_age_says_how_many_it_left_out() -> None:
    run("seeds", "load")

    code, out = run("digest", "preview", "--max-age", "7d")

    lines = out.splitlines()
    assert code == 0
    # The shipped stories are from 2021-2023: all of them are too old.
    assert lines[1:3] == ["0 stories on all topics.", "Left out as older than 7 days: 5 stories."]
    assert "Nothing to post" in out


def test_digest_preview_refuses_a_bad_maximum_age_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _ = run("digest", "preview", "--max-age", "3x")

    err = one_line(capsys.readouterr().err)
    assert code == 2
    assert "invalid maximum age '3x': use a number and a unit, e.g. 24h" in err


def test_digest_preview_of_an_unknown_topic_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    run("seeds", "load")

    code, _ = run("digest", "preview", "--topics", "Gardening")

    assert code == 2
    assert "no topic 'Gardening'" in capsys.readouterr().err


def one_line(err: str) -> str:
    """The single line an error printed on stderr, failing the test if there was more."""
    assert err.count("\n") == 1, err
    assert err.startswith("newsbot"), err
    return err


# --- read-only commands need a database -------------------------------------------------------


@pytest.mark.parametrize(
    "argv", [("news",), ("news", "--topic", "AI"), ("topics",), ("digest", "preview")]
)
def test_reading_commands_never_create_a_database(
    argv: tuple[str, ...], environment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(*argv)

    err = one_line(capsys.readouterr().err)
    assert code == 2
    assert out == ""
    assert f"no database at {environment}: run `newsbot seeds load` first" in err
    assert not environment.exists()
    assert not environment.parent.exists()


# --- topics -----------------------------------------------------------------------------------


def test_near_miss_topic_suggests_the_close_topic(capsys: pytest.CaptureFixture[str]) -> None:
    run("seeds", "load")
    capsys.readouterr()

    code, _ = run("news", "--topic", "Computer Vison")

    err = one_line(capsys.readouterr().err)
    assert code == 2
    assert "no topic 'Computer Vison'; did you mean 'Computer Vision'?" in err


# --- searching --------------------------------------------------------------------------------


def test_news_query_prints_how_it_was_read_and_how_many_matched_first() -> None:
    run("seeds", "load")

    code, out = run("news", "--query", "parliament -entreats", "--limit", "1")

    lines = out.splitlines()
    assert code == 0
    assert lines[:3] == [
        "Stories with parliament, without entreats, newest first · 2 matches",
        "",
        "EU parliament backs AI restrictions and facial recognition ban",
    ]


def test_news_without_a_query_prints_no_header() -> None:
    run("seeds", "load")

    _, out = run("news", "--limit", "1")

    assert out.splitlines()[0] == SHIPPED_TITLES_NEWEST_FIRST[0]


def test_news_sort_relevance_ranks_the_best_match_first() -> None:
    run("seeds", "load")

    _, newest = run("news", "--query", "ban facial", "--limit", "1", "--json")
    _, relevant = run("news", "--query", "ban facial", "--sort", "relevance", "--limit", "1")

    assert json.loads(newest)["stories"][0]["title"] == SHIPPED_TITLES_NEWEST_FIRST[0]
    assert relevant.splitlines()[0].endswith(", most relevant first · 5 matches")
    assert relevant.splitlines()[2] == "European Parliament entreats a ban on facial recognition."


def test_news_json_says_how_the_search_was_read_beside_the_stories() -> None:
    run("seeds", "load")

    _, out = run("news", "--query", "parliament", "--sort", "relevance", "--json")

    shown = json.loads(out)
    assert {key: value for key, value in shown.items() if key != "stories"} == {
        "query": "parliament",
        "topic": None,
        "order": "relevance",
        "read_as": "stories with parliament, most relevant first",
        "matched": 3,
        "matched_is_exact": True,
    }
    assert len(shown["stories"]) == 3


def test_news_sort_relevance_without_words_lists_the_newest_and_says_why() -> None:
    run("seeds", "load")

    _, out = run("news", "--topic", "ai", "--sort", "relevance", "--limit", "1")

    assert out.splitlines()[0] == (
        "Latest stories on AI, newest first: only a search with words can be sorted by relevance"
    )
    assert out.splitlines()[2] == SHIPPED_TITLES_NEWEST_FIRST[0]


def test_news_topic_in_the_query_is_the_topic() -> None:
    run("seeds", "load")

    _, out = run("news", "--query", 'topic:"computer vision" entreats', "--json")

    shown = json.loads(out)
    assert shown["topic"] == "Computer Vision"
    assert [story["title"] for story in shown["stories"]] == [
        "European Parliament entreats a ban on facial recognition."
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--query", "a" * 5000), "That search is too long: at most 512 characters, e.g. "),
        (("--query", '"facial'), "A quote is never closed, e.g. "),
        (("--query", "OR"), "OR needs a word or phrase on each side, e.g. ai OR robotics"),
        (("--query", "-"), "A minus sign needs a word after it, e.g. ai -crypto"),
        (("--query", "topic:Computer-Visoin ban"), "did you mean 'Computer Vision'?"),
        (
            ("--topic", "ai", "--query", 'topic:"computer vision" ban'),
            "--topic is 'AI' but the query says topic:'Computer Vision'; give one topic",
        ),
        (("--sort", "oldest"), "argument --sort: invalid choice: 'oldest'"),
    ],
)
def test_news_search_mistakes_are_one_line(
    argv: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run("seeds", "load")
    capsys.readouterr()

    code, out = run("news", *argv)

    err = one_line(capsys.readouterr().err)
    assert code == 2
    assert err.startswith(("newsbot: error: ", "newsbot news: error: "))
    assert message in err
    assert out == ""


@pytest.mark.parametrize(
    "text",
    ["facial\x00recognition", "NEAR(facial recognition)", "title:facial", "ban*", "'; --", "*"],
)
def test_news_hostile_queries_give_results_or_a_one_line_explanation(
    text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run("seeds", "load")
    capsys.readouterr()

    code, _ = run("news", "--query", text)

    err = capsys.readouterr().err
    assert (code, err) == (0, "") or (code == 2 and ", e.g. " in one_line(err))
    assert "Traceback" not in err


# --- JSON ids ---------------------------------------------------------------------------------


def test_json_carries_64_bit_ids_as_strings_in_every_output() -> None:
    checked = json.loads(run("seeds", "check", "--json")[1])["files"]
    loaded = json.loads(run("seeds", "load", "--json")[1])
    stories = json.loads(run("news", "--json")[1])["stories"]

    ids = {row["story_id"] for row in checked}
    assert {change["story_id"] for change in loaded["added"]} == ids
    assert {story["id"] for story in stories} == ids
    # Above 2**53 a JSON number would reach JavaScript rounded to another id.
    assert all(isinstance(id_, str) for id_ in ids)
    assert any(int(id_) > 2**53 for id_ in ids)


# --- paths ------------------------------------------------------------------------------------


@pytest.mark.parametrize("named_by", ["--config", "NEWSBOT_CONFIG"])
def test_started_from_another_folder_the_config_file_finds_seeds_and_database(
    named_by: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deploy = tmp_path / "deploy"
    shutil.copytree(SHIPPED, deploy / "seeds")
    (deploy / "config").mkdir()
    config_file = deploy / "config" / "newsbot.yaml"
    config_file.write_text("seeds:\n  folder: ../seeds\ndatabase:\n  path: ../data/news.db\n")
    monkeypatch.delenv("NEWSBOT_SEEDS")
    monkeypatch.delenv("NEWSBOT_DB")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    if named_by == "NEWSBOT_CONFIG":
        monkeypatch.setenv("NEWSBOT_CONFIG", str(config_file))
        options: tuple[str, ...] = ()
    else:
        options = ("--config", str(config_file))

    loaded, _ = run(*options, "seeds", "load")
    code, out = run(*options, "topics")

    assert (loaded, code) == (0, 0)
    assert "AI" in out
    assert (deploy / "data" / "news.db").is_file()
    assert list(elsewhere.iterdir()) == []


# --- one line for every error -----------------------------------------------------------------


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--version"])

    assert code == 0
    assert capsys.readouterr().out == f"newsbot {metadata.version('newsbot')}\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("news", "--limit", "0"), "argument --limit: must be between 1 and 100"),
        (("sync", "--guild", "many"), "argument --guild: not a whole number: 'many'"),
        (("gardening",), "invalid choice: 'gardening'"),
        ((), "the following arguments are required: COMMAND"),
    ],
)
def test_argument_mistakes_are_one_line(
    argv: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = run(*argv)

    err = one_line(capsys.readouterr().err)
    assert code == 2
    assert message in err
    assert "--help" in err


def test_seeds_load_on_a_locked_database_is_one_line(
    environment: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run("seeds", "load")
    # Wait 50 ms for the lock instead of the store's 5 s: the outcome is the same.
    pragmas = tuple(
        "PRAGMA busy_timeout = 50" if pragma.startswith("PRAGMA busy_timeout") else pragma
        for pragma in sqlite_connection._PRAGMAS
    )
    monkeypatch.setattr(sqlite_connection, "_PRAGMAS", pragmas)
    holder = sqlite3.connect(environment, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    capsys.readouterr()
    try:
        code, _ = run("seeds", "load")
        err = one_line(capsys.readouterr().err)
        # Readers are not held up by a writer.
        readable, out = run("topics")
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    assert code == 2
    assert f"reload not applied to {environment}: database is locked" in err
    assert "try again" in err
    assert readable == 0
    assert "AI" in out


async def test_seeds_load_while_a_bot_runs_on_the_database_loads_and_the_bot_serves_it(
    environment: Path,
) -> None:
    bot_store = SqliteStore(environment)
    await bot_store.open()
    try:
        await bot_store.acquire_instance_lock()  # what `newsbot run` holds while it runs

        code, out = await asyncio.to_thread(run, "seeds", "load")

        assert code == 0
        assert "5 stories stored" in out
        assert await bot_store.story_count() == 5
    finally:
        await bot_store.close()


def test_unexpected_error_is_one_line_with_a_pointer_to_the_traceback(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def on_fire(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database\non fire")

    run("seeds", "load")
    monkeypatch.setattr(SqliteStore, "topics", on_fire)
    monkeypatch.setenv("NEWSBOT_LOG_LEVEL", "DEBUG")
    capsys.readouterr()

    with caplog.at_level(logging.DEBUG):
        code, _ = run("topics")

    err = one_line(capsys.readouterr().err)
    assert code == 70
    assert "unexpected RuntimeError: database on fire" in err
    assert "NEWSBOT_LOG_LEVEL=DEBUG" in err
    [logged] = [record for record in caplog.records if record.exc_info]
    assert logged.levelno == logging.DEBUG
    assert "Traceback" not in err


# --- Discord ----------------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("command", ["run", "sync"])
def test_unreachable_discord_is_one_line_and_exit_code_3(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # newsbot points discord.py at the configured Discord; put it back after the test.
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket,
        "DEFAULT_GATEWAY",
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY,
    )
    port = closed_port()
    monkeypatch.setenv("DISCORD_TOKEN", "a-token")
    monkeypatch.setenv("DISCORD_API_BASE", f"http://127.0.0.1:{port}/api/v10")
    monkeypatch.setenv("DISCORD_GATEWAY_URL", f"ws://127.0.0.1:{port}/gateway")

    code, _ = run(command)

    err = one_line(capsys.readouterr().err)
    assert code == 3
    assert f"cannot reach Discord at http://127.0.0.1:{port}/api/v10" in err


async def newsbot(emu: DiscordEmulator, *argv: str) -> tuple[int, str, str]:
    """`newsbot ARGV` as a user runs it, against the emulator."""
    env = {
        **os.environ,
        "DISCORD_TOKEN": emu.token,
        "DISCORD_API_BASE": emu.api_base,
        "DISCORD_GATEWAY_URL": emu.gateway_url,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *argv,
        cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_sync_to_a_server_the_bot_is_not_in_says_to_invite_it(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    gone = emu.add_guild("Left")
    emu.remove_guild(gone)

    code, out, err = await newsbot(emu, "sync", "--guild", str(gone.id))

    line = one_line(err)
    assert code == 2
    assert f"newsbot is not in server {gone.id}: invite it with " in line
    assert f"client_id={emu.application_id}" in line
    assert out == ""
    assert emu.registered_commands() == []


async def test_sync_while_discord_is_failing_is_one_line_and_exit_code_3(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    emu.fail_next("PUT", "/applications/*/commands", 503)

    code, _, err = await newsbot(emu, "sync")

    line = one_line(err)
    assert code == 3
    assert "Discord is failing (503 Service Unavailable" in line
    assert "try again later" in line


async def test_a_second_newsbot_run_on_the_same_database_is_one_line(
    discord_emulator: DiscordEmulator, environment: Path
) -> None:
    running = SqliteStore(environment)
    await running.open()
    try:
        await running.acquire_instance_lock()  # the first `newsbot run`

        code, _, err = await newsbot(discord_emulator, "run")
    finally:
        await running.close()

    line = one_line(err.splitlines(keepends=True)[-1])
    assert code == 2
    assert f"another newsbot is already running on {environment}" in line
    assert "Traceback" not in err
