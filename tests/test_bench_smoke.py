"""Every benchmark still runs: each is started with a tiny size (no timing is asserted)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import run_module
from tests.postgres import EXTERNAL_URL_VARIABLE, MAINTENANCE_DATABASE, PostgresServer

REPO = Path(__file__).resolve().parent.parent

SMOKE_RUNS = {
    "ingest": ["--files", "40", "--runs", "1"],
    "stalls": ["--files", "200", "--runs", "1"],
    "fanout": ["--servers", "20", "--runs", "1"],
    "ledger": ["--writes", "60", "--runs", "1"],
    "news_latency": [
        "--n",
        "2000",
        "--requests",
        "60",
        "--warmup",
        "5",
        "--queries",
        "3",
        "--runs",
        "1",
    ],
    "memory": [
        "--n",
        "2000",
        "--news",
        "20",
        "--queries",
        "3",
        "--topics",
        "10",
        "--autocomplete",
        "10",
    ],
}


# The PostgreSQL options, on the test session's server (never skipped under CI), with figures
# each must report: one from each backend, taken in the same run.
POSTGRES_SMOKE_RUNS = {
    "ingest": [*SMOKE_RUNS["ingest"], "--backend", "both"],
    "news_latency": [*SMOKE_RUNS["news_latency"], "--backend", "both"],
}
POSTGRES_FIGURES = {
    "ingest": {"cold ingest, 1 core", "PostgreSQL / SQLite, files/s"},
    "news_latency": {
        "sqlite latest(6, rare word) p99",
        "postgres latest(6, rare word) p99",
        "postgres latest(6, phrase) p99",
        "postgres latest(6, uncommon word, spread) p99",
        "postgres latest(6, common word, relevance) p99",
        "postgres count_matching(common word, cap=100) p99",
        "postgres load from the SQLite build",
    },
}


@pytest.mark.parametrize("name", sorted(SMOKE_RUNS))
def test_benchmark_runs_and_writes_its_results(name: str, tmp_path: Path) -> None:
    record = run_benchmark(name, SMOKE_RUNS[name], tmp_path)

    assert record["figures"]


@pytest.mark.parametrize("name", sorted(POSTGRES_SMOKE_RUNS))
def test_benchmark_runs_on_postgresql_beside_sqlite(
    name: str, tmp_path: Path, postgres_server: PostgresServer
) -> None:
    server = postgres_server.external_url or postgres_server.url(MAINTENANCE_DATABASE)

    record = run_benchmark(
        name, POSTGRES_SMOKE_RUNS[name], tmp_path, {EXTERNAL_URL_VARIABLE: server}
    )

    names = {figure["name"] for figure in record["figures"]}
    assert POSTGRES_FIGURES[name] <= names, names


def run_benchmark(
    name: str, arguments: list[str], tmp_path: Path, environment: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run bench.NAME with its results and cache in `tmp_path`; returns its JSON record."""
    env = {
        **os.environ,
        "NEWSBOT_BENCH_RESULTS": str(tmp_path / "results"),
        "NEWSBOT_BENCH_CACHE": str(tmp_path / "cache"),
        **(environment or {}),
    }

    finished = run_module(f"bench.{name}", *arguments, env=env, timeout=180)

    assert finished.returncode == 0, finished.stderr[-2000:]
    record: dict[str, Any] = json.loads((tmp_path / "results" / f"{name}.json").read_text())
    assert record["benchmark"] == name
    assert record["figures"]
    return record


def test_scale_out_benchmark_runs_and_writes_its_results(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    # It starts a PostgreSQL server of its own; the fixture skips (or, under CI, fails) this
    # test where PostgreSQL is not installed, as for every PostgreSQL test.
    env = {**os.environ, "NEWSBOT_BENCH_RESULTS": str(tmp_path / "results")}
    tiny = ["--processes", "2", "--shards-per-process", "1", "--servers", "6", "--runs", "1"]
    tiny += ["--due-margin", "3"]  # six servers' settings take well under a second to write

    # The digests come due at the next minute once every shard is READY.
    finished = run_module("bench.scale_out", *tiny, env=env, timeout=300)

    assert finished.returncode == 0, (finished.stdout + finished.stderr)[-3000:]
    record = json.loads((tmp_path / "results" / "scale_out.json").read_text())
    assert record["benchmark"] == "scale_out"
    [run] = record["details"]["runs"]
    assert run["messages"] > 0
    assert run["acceptance"]["second_process_on_shard_0"]["exit"] not in (0, None)
