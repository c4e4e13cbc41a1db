"""The command line: checking, loading and reading news, and one-line errors for mistakes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.__main__ import main
from tests.factories import SHIPPED_TITLES_NEWEST_FIRST
from tests.hostile_corpus import write_hostile_corpus

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
    assert all(isinstance(row["story_id"], int) for row in files)
    assert any(row["warnings"] for row in files)  # seed 004's mojibake repair is reported


def test_check_of_a_hostile_folder_gives_every_file_a_verdict_and_writes_nothing(
    tmp_path: Path, environment: Path
) -> None:
    folder = tmp_path / "hostile"
    expected = write_hostile_corpus(folder)
    env = {**os.environ, "NEWSBOT_DB": str(environment)}

    # A separate process: a crash in a parser would kill it, not the test run.
    finished = subprocess.run(
        [sys.executable, "-m", "bot", "seeds", "check", str(folder), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env=env,
        check=False,
    )

    assert finished.returncode == 1, finished.stderr
    verdicts = {row["file"]: row for row in json.loads(finished.stdout)["files"]}
    assert set(verdicts) == {*expected, "good.txt", "good_duplicate.txt"}
    for name, phrase in expected.items():
        assert verdicts[name]["status"] == "rejected"
        assert any(phrase in reason for reason in verdicts[name]["reasons"]), name
    assert verdicts["good_duplicate.txt"]["status"] == "duplicate"
    assert not environment.exists()
    assert not environment.parent.exists()


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

    [story] = json.loads(out)
    assert code == 0
    assert story["title"] == "European Parliament entreats a ban on facial recognition."
    assert story["topics"] == ["Computer Vision", "AI"]
    assert story["lead_image"]["url"].startswith("https://techstory.in/")
    assert len(story["related"]) == 6
    assert story["related"][0]["provider"] == "TechCrunch"
    assert "secured" not in story


def test_news_limit_and_empty_result() -> None:
    run("seeds", "load")

    assert len(json.loads(run("news", "--limit", "2", "--json")[1])) == 2
    code, out = run("news", "--query", "zeppelin")

    assert code == 0
    assert out.strip() == "No stories match."


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
    finished = subprocess.run(
        [sys.executable, "-m", "bot", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )

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
    with pytest.raises(SystemExit) as exit:
        run("digest", "preview", "--max-age", "3x")

    err = capsys.readouterr().err
    assert exit.value.code == 2
    assert "invalid maximum age '3x': use a number and a unit, e.g. 24h" in err


def test_digest_preview_of_an_unknown_topic_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    run("seeds", "load")

    code, _ = run("digest", "preview", "--topics", "Gardening")

    assert code == 2
    assert "no topic 'Gardening'" in capsys.readouterr().err
