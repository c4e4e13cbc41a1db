"""`newsbot seeds import FEED...`: feeds given as files or as URLs (served on 127.0.0.1) become
seed files that newsbot loads; a feed that fails is one line, and the others still import."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from bot.cli import main
from bot.cli.common import EXIT_OK, EXIT_REJECTED, EXIT_USAGE
from bot.feeds import fetch
from bot.models import Story
from bot.seeds import read_seed

FEEDS = Path(__file__).resolve().parent.parent / "feeds"
RSS = str(FEEDS / "rss.xml")
ATOM = str(FEEDS / "atom.xml")
MALFORMED = str(FEEDS / "malformed.xml")


@pytest.fixture(autouse=True)
def _no_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEWSBOT_CONFIG", raising=False)


def stories_in(folder: Path) -> dict[str, Story]:
    """Every file in the folder, read by newsbot's own seed reader: all must load cleanly."""
    stories = {}
    for path in sorted(folder.iterdir()):
        result = read_seed(path, path.name)
        assert result.ok, (path.name, result.errors)
        assert result.warnings == (), (path.name, result.warnings)
        assert result.story is not None
        stories[result.story.title] = result.story
    return stories


def test_files_of_both_feeds_load_as_their_stories(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["seeds", "import", RSS, ATOM, "--folder", str(tmp_path)])

    out = capsys.readouterr().out.splitlines()
    assert code == EXIT_OK
    assert out == [
        f"{RSS}: 2 new, 0 updated, 0 unchanged, 2 skipped",
        "  skipped Market stalls return to the quay: no published or updated date",
        "  skipped entry 4: no title and no http(s) link",
        f"{ATOM}: 2 new, 0 updated, 0 unchanged, 0 skipped",
        f"Imported 2 feeds into {tmp_path}: 4 new, 0 updated, 0 unchanged, 2 skipped; 0 failed",
    ]
    stories = stories_in(tmp_path)
    assert set(stories) == {
        "Lighthouse keepers vote to repaint the tower",
        "Ferry timetable – winter changes",
        "Grafting old apple varieties",
        "Weather station back online",
    }
    tower = stories["Lighthouse keepers vote to repaint the tower"]
    assert tower.excerpt.startswith("The keepers chose red & white stripes, ending a debate")
    assert tower.provider is not None
    assert tower.provider.name == "Harbour Town Gazette"
    assert tower.lead_image is not None
    assert tower.lead_image.url == "https://cdn.harbour-gazette.example/img/tower.jpg"
    grafting = stories["Grafting old apple varieties"]
    assert grafting.url == "https://orchard-lab.example/notes/grafting"
    assert grafting.topics == ("Botany", "Field Notes")


def test_importing_again_changes_no_file_and_says_unchanged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["seeds", "import", RSS, ATOM, "--folder", str(tmp_path)])
    before = {
        path.name: (path.read_bytes(), path.stat().st_mtime_ns) for path in tmp_path.iterdir()
    }
    capsys.readouterr()

    code = main(["seeds", "import", RSS, ATOM, "--folder", str(tmp_path)])

    after = {path.name: (path.read_bytes(), path.stat().st_mtime_ns) for path in tmp_path.iterdir()}
    assert code == EXIT_OK
    assert after == before
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"Imported 2 feeds into {tmp_path}: 0 new, 0 updated, 4 unchanged, 2 skipped; 0 failed"
    )


def test_an_edited_entry_rewrites_its_own_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, feed = tmp_path / "seeds", tmp_path / "atom.xml"
    folder.mkdir()
    feed.write_text(Path(ATOM).read_text(encoding="utf-8"), encoding="utf-8")
    main(["seeds", "import", str(feed), "--folder", str(folder)])
    names = sorted(path.name for path in folder.iterdir())
    feed.write_text(
        feed.read_text(encoding="utf-8").replace("Weather station", "Weather mast"),
        encoding="utf-8",
    )
    capsys.readouterr()

    main(["seeds", "import", str(feed), "--folder", str(folder)])

    assert capsys.readouterr().out.splitlines()[0] == (
        f"{feed}: 0 new, 1 updated, 1 unchanged, 0 skipped"
    )
    assert sorted(path.name for path in folder.iterdir()) == names
    assert "Weather mast back online" in stories_in(folder)


def test_malformed_feed_is_one_line_and_the_others_still_import(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["seeds", "import", RSS, MALFORMED, ATOM, "--folder", str(tmp_path)])

    captured = capsys.readouterr()
    assert code == EXIT_REJECTED == 1
    assert captured.err == (
        f"newsbot: error: {MALFORMED}: not a readable feed: line 3: no element found\n"
    )
    assert captured.out.splitlines()[-1] == (
        f"Imported 3 feeds into {tmp_path}: 4 new, 0 updated, 0 unchanged, 2 skipped; 1 failed"
    )
    assert len(stories_in(tmp_path)) == 4


def test_topic_option_adds_to_the_categories_of_every_entry(tmp_path: Path) -> None:
    code = main(
        [
            "seeds",
            "import",
            RSS,
            ATOM,
            "--topic",
            "Local",
            "--topic",
            "botany",
            "--folder",
            str(tmp_path),
        ]
    )

    stories = stories_in(tmp_path)
    assert code == EXIT_OK
    assert stories["Lighthouse keepers vote to repaint the tower"].topics == (
        "Local",
        "botany",
        "Town & Harbour",
        "Heritage",
    )
    # The entry's own "Botany" is the topic given, in the option's spelling.
    assert stories["Grafting old apple varieties"].topics == ("Local", "botany", "Field Notes")
    # An entry without categories gets the option's topics alone.
    assert stories["Weather station back online"].topics == ("Local", "botany")


def test_json_report_lists_files_and_skipped_entries_per_feed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["seeds", "import", RSS, MALFORMED, "--folder", str(tmp_path), "--json"])

    report = json.loads(capsys.readouterr().out)
    assert code == EXIT_REJECTED
    assert report["summary"] == {
        "feeds": 2,
        "failed": 1,
        "new": 2,
        "updated": 0,
        "unchanged": 0,
        "skipped": 2,
    }
    rss, malformed = report["feeds"]
    assert sorted(rss["new"]) == sorted(path.name for path in tmp_path.iterdir())
    assert rss["skipped"][0] == {
        "entry": "Market stalls return to the quay",
        "reason": "no published or updated date",
    }
    assert (malformed["status"], malformed["error"]) == (
        "failed",
        "not a readable feed: line 3: no element found",
    )


def test_a_missing_feed_file_is_reported_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "gone.xml")
    folder = tmp_path / "seeds"
    folder.mkdir()

    code = main(["seeds", "import", missing, "--folder", str(folder)])

    assert code == EXIT_REJECTED
    assert capsys.readouterr().err == (
        f"newsbot: error: {missing}: cannot read file: No such file or directory\n"
    )


def test_a_missing_seed_folder_is_an_error_before_any_feed_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "nowhere"

    code = main(["seeds", "import", RSS, "--folder", str(folder)])

    assert code == EXIT_USAGE
    assert capsys.readouterr().err == f"newsbot: error: seed folder {folder} does not exist\n"
    assert not folder.exists()


def test_folder_defaults_to_the_configured_seed_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSBOT_SEEDS", str(tmp_path))

    assert main(["seeds", "import", ATOM]) == EXIT_OK

    assert len(list(tmp_path.iterdir())) == 2


@pytest.mark.parametrize("feed", ["ftp://feeds.example/news.xml", "file:///tmp/feed.xml"])
def test_a_url_that_is_not_http_is_a_one_line_usage_error(
    feed: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["seeds", "import", feed, "--folder", str(tmp_path)])

    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert err.count("\n") == 1
    assert f"only http and https feed URLs can be fetched: {feed}" in err


def test_seeds_import_help_shows_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["seeds", "import", "--help"]) == EXIT_OK

    help_text = " ".join(capsys.readouterr().out.split())
    assert help_text.startswith("usage: newsbot seeds import")
    for words in ("FEED", "--topic TOPIC", "--folder DIR", "--json", "Exit code 1"):
        assert words in help_text


# --- over HTTP, against a server on 127.0.0.1 ------------------------------------------------


class FeedServer:
    """Serves the test feeds, and remembers the User-Agent of every request."""

    def __init__(self) -> None:
        self.agents: list[str] = []
        self.base = ""
        self.rss = Path(RSS).read_bytes()
        self.release = asyncio.Event()  # what a silent server waits for before answering

    async def feed(self, request: web.Request) -> web.Response:
        self.agents.append(request.headers.get("User-Agent", ""))
        return web.Response(body=self.rss, content_type="application/rss+xml")

    async def moved(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("/feed.xml")

    async def silent(self, request: web.Request) -> web.Response:
        await self.release.wait()
        return web.Response(text="too late")

    async def huge(self, request: web.Request) -> web.StreamResponse:
        # No Content-Length: the cap must count what arrives.
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(8):
            await response.write(b" " * 1024)
        return response


@pytest.fixture
async def feed_server() -> AsyncIterator[FeedServer]:
    server = FeedServer()
    app = web.Application()
    app.router.add_get("/feed.xml", server.feed)
    app.router.add_get("/moved", server.moved)
    app.router.add_get("/huge", server.huge)
    app.router.add_get("/silent", server.silent)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    server.base = f"http://127.0.0.1:{port}"
    try:
        yield server
    finally:
        server.release.set()
        await runner.cleanup()


def refused_url() -> str:
    """A URL on a loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/feed.xml"


async def test_a_feed_url_imports_like_its_file(
    feed_server: FeedServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    by_file, by_url = tmp_path / "file", tmp_path / "url"
    by_file.mkdir()
    by_url.mkdir()
    url = f"{feed_server.base}/feed.xml"

    code = await asyncio.to_thread(main, ["seeds", "import", url, "--folder", str(by_url)])
    await asyncio.to_thread(main, ["seeds", "import", RSS, "--folder", str(by_file)])

    assert code == EXIT_OK
    assert capsys.readouterr().out.splitlines()[0] == (
        f"{url}: 2 new, 0 updated, 0 unchanged, 2 skipped"
    )
    # The same entries make the same files, whether fetched or read.
    assert {p.name: p.read_bytes() for p in by_url.iterdir()} == {
        p.name: p.read_bytes() for p in by_file.iterdir()
    }
    assert feed_server.agents[0].startswith("newsbot/")


async def test_a_redirect_is_followed(feed_server: FeedServer, tmp_path: Path) -> None:
    url = f"{feed_server.base}/moved"

    code = await asyncio.to_thread(main, ["seeds", "import", url, "--folder", str(tmp_path)])

    assert code == EXIT_OK
    assert len(stories_in(tmp_path)) == 2


async def test_http_errors_and_refused_connections_are_reported_per_feed(
    feed_server: FeedServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing, refused = f"{feed_server.base}/missing.xml", refused_url()
    good = f"{feed_server.base}/feed.xml"

    code = await asyncio.to_thread(
        main, ["seeds", "import", missing, good, refused, "--folder", str(tmp_path)]
    )

    captured = capsys.readouterr()
    assert code == EXIT_REJECTED
    failures = captured.err.splitlines()
    assert failures[0] == f"newsbot: error: {missing}: HTTP 404 Not Found"
    assert failures[1].startswith(f"newsbot: error: {refused}: cannot connect to 127.0.0.1:")
    assert failures[1].endswith("Connection refused")
    assert len(failures) == 2
    assert captured.out.splitlines()[-1].endswith(
        "2 new, 0 updated, 0 unchanged, 2 skipped; 2 failed"
    )
    assert len(stories_in(tmp_path)) == 2


async def test_a_feed_larger_than_the_cap_is_refused(
    feed_server: FeedServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(fetch, "MAX_FEED_BYTES", 4 * 1024)
    url = f"{feed_server.base}/huge"

    code = await asyncio.to_thread(main, ["seeds", "import", url, "--folder", str(tmp_path)])

    assert code == EXIT_REJECTED
    assert capsys.readouterr().err.startswith(f"newsbot: error: {url}: larger than ")
    assert stories_in(tmp_path) == {}


async def test_a_server_that_does_not_answer_in_time_is_reported(
    feed_server: FeedServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(fetch, "FETCH_TIMEOUT_SECONDS", 0.2)
    url = f"{feed_server.base}/silent"

    code = await asyncio.to_thread(main, ["seeds", "import", url, "--folder", str(tmp_path)])

    assert code == EXIT_REJECTED
    assert capsys.readouterr().err == f"newsbot: error: {url}: no answer within 0.2 s\n"
