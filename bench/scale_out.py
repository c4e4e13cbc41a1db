"""Scale-out: one minute's digests from several `newsbot run` processes on one PostgreSQL
database, one of them killed mid fan-out and restarted.

How: the Discord emulator (tests/discord_emulator) runs in this process with Discord's limits
(50 requests/s per token, 5 messages per 5 s per channel, nonces de-duplicated, one IDENTIFY
per 5 s) and `--processes x --shards-per-process` shards; a throwaway PostgreSQL server
(tests/postgres.py) holds the database. The seeds (a synthetic corpus) are loaded once with
`python -m bot seeds load`; `--servers` servers are spread evenly over the shards (server n on
shard n % count, by its id); P `python -m bot run` processes start on shard ranges 0-1, 2-3,
... Once every shard is READY, every server gets a digest due at the same minute, written
into digest_settings. When about `--kill-at` of the digest messages have been sent, the first
process is SIGKILLed and at once started again on the same shards; the run ends when every
digest's ledger row is final.

Figures (medians over `--runs`, each on a fresh database and emulator):
- channels with a duplicate (a story or header posted twice): target 0; servers with no
  digest or missing a planned story: target 0;
- the most message sends in any one second (sliding window over the emulator's request log):
  target <= 50; global 429s: target 0;
- total/floor: the time from the due minute to the last digest message, over the floor
  (digest messages / digest.send_rate): target <= 1.15. The due minute is the start because
  that is when users expect their digest; from the first send is shown too;
- restart: seconds from the SIGKILL until the restarted process sent its first message, and
  until its runs were all final.
The acceptance checks run too: /news is answered on every shard, by the one session that
runs it, and a further `newsbot run` on shard 0 is refused (its one line and exit code).

    python -m bench.scale_out [--processes 4] [--shards-per-process 2] [--servers 2000]
                              [--kill-at 0.3] [--runs 1] [--stories 8]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import gc
import logging
import math
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import Figure, median, percentile, report
from bot.config import GlobalDigestSettings
from bot.sharding import shard_of
from tests.discord_emulator import DiscordEmulator, RequestRecord
from tests.postgres import PostgresServer
from tests.process_study import FINAL_STATUSES, PostgresStudy, say

REPO = Path(__file__).resolve().parent.parent
# Discord's IDENTIFY window: the emulator refuses an earlier IDENTIFY as Discord does.
IDENTIFY_WINDOW = 5.0
# The digests come due at a minute at least this far off once every shard is READY, so that
# the settings are written before any process's tick of that minute (--due-margin: a few
# servers are written in well under a second).
DUE_MARGIN = 15.0
# At most this many global 429s are listed one by one in the results.
LISTED = 100


def max_in_window(instants: Sequence[float], window: float = 1.0) -> int:
    """The most instants within any `window` seconds (a sliding window, so that a burst
    across a second's boundary counts whole)."""
    ordered = sorted(instants)
    most = start = 0
    for end, at in enumerate(ordered):
        while at - ordered[start] >= window:
            start += 1
        most = max(most, end - start + 1)
    return most


def shard_ranges(processes: int, per_process: int) -> list[str]:
    """NEWSBOT_SHARD_IDS of each process: 0-1, 2-3, ..."""
    return [
        f"{p * per_process}-{p * per_process + per_process - 1}"
        if per_process > 1
        else str(p * per_process)
        for p in range(processes)
    ]


def next_minute(after: datetime) -> datetime:
    return after.replace(second=0, microsecond=0) + timedelta(minutes=1)


class ScaleOut:
    """One run: the emulator, the database, the processes, and what they did."""

    def __init__(self, study: PostgresStudy, args: argparse.Namespace) -> None:
        self.study = study
        self.emu = study.emu
        self.args = args
        self.shard_count = args.processes * args.shards_per_process
        self.ranges = shard_ranges(args.processes, args.shards_per_process)
        self.env = {"NEWSBOT_SHARD_COUNT": str(self.shard_count)}

    def ready_shards(self) -> set[int]:
        return {s.shard_id for s in self.emu.sessions if s.ready_sent}

    async def wait_ready(self, shards: set[int], within: float) -> None:
        await self.emu.wait_until(
            lambda: shards <= self.ready_shards(), within, f"READY on shards {sorted(shards)}"
        )

    async def start(self, shards: str) -> asyncio.subprocess.Process:
        return await self.study.start(**self.env, NEWSBOT_SHARD_IDS=shards)

    async def final_runs(self) -> tuple[int, int]:
        rows = await self.study.query(
            "SELECT count(*) AS total,"
            " count(*) FILTER (WHERE status = ANY($1::text[])) AS done FROM digest_runs",
            [list(FINAL_STATUSES)],
        )
        return (rows[0]["total"], rows[0]["done"]) if rows else (0, 0)

    async def wait_final(self, within: float) -> bool:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            total, done = await self.final_runs()
            if total >= len(self.study.servers) and done == total:
                return True
            await asyncio.sleep(0.5)
        say(f"gave up after {within:.0f} s waiting for every run to be final")
        return False

    async def messages_per_digest(self) -> float:
        """From the digests claimed so far: every server's digest has the same stories."""
        while True:
            rows = await self.study.query(
                "SELECT (SELECT count(*) FROM digest_messages) AS messages,"
                " (SELECT count(*) FROM digest_runs WHERE status <> 'empty') AS runs"
            )
            if rows and rows[0]["runs"]:
                return float(rows[0]["messages"]) / float(rows[0]["runs"])
            await asyncio.sleep(0.2)

    def messages_so_far(self) -> int:
        """Messages in the servers' channels: only digests until /news is asked (cheaper than
        telling them apart, which the emulator's loop would pay for every poll)."""
        return sum(len(self.emu.messages(s.channel)) for s in self.study.servers)

    async def wait_sent(self, count: int, within: float) -> None:
        """Polled: counting every channel at each emulator change would cost more than the
        sends themselves with thousands of channels."""
        deadline = time.monotonic() + within
        while self.messages_so_far() < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{count} digest messages not sent within {within:.0f} s")
            await asyncio.sleep(0.2)

    # --- the acceptance checks -----------------------------------------------------------------

    async def news_on_every_shard(self) -> dict[str, Any]:
        answers = await self.study.news_on_every_shard(self.shard_count)
        return {
            "answered": {shard: a.answered for shard, a in answers.items()},
            "sessions_per_shard": {shard: a.sessions for shard, a in answers.items()},
            "ok": all(a.ok for a in answers.values()),
        }

    async def another_on_shard_0(self) -> dict[str, Any]:
        """A further process on shard 0 while its owner runs: refused, one line, non-zero."""
        try:
            code, out = await asyncio.wait_for(
                self.study.cli("run", **self.env, NEWSBOT_SHARD_IDS="0"), 120
            )
        except TimeoutError:
            return {"exit": None, "output": "(still running after 120 s)", "ok": False}
        lines = [line for line in out.strip().splitlines() if line.strip()]
        say(f"another newsbot run on shard 0: exit {code}: {lines[-1] if lines else ''}")
        return {"exit": code, "output": lines[-3:], "ok": code != 0}

    # --- figures -------------------------------------------------------------------------------

    def shard_of_channel(self) -> dict[int, int]:
        return {s.channel.id: shard_of(s.guild.id, self.shard_count) for s in self.study.servers}


async def one_run(args: argparse.Namespace) -> dict[str, Any]:
    server = PostgresServer()
    await asyncio.to_thread(server.start)
    # The emulator keeps every message it is sent, and the cycle collector walked that growing
    # heap for a tenth of a second at a time: a stalled emulator then takes in the requests
    # that queued meanwhile as one burst, which its global limit counts against the senders.
    # This process makes few reference cycles; it collects none during the run.
    gc.disable()
    try:
        url = await server.create_database()
        with tempfile.TemporaryDirectory(prefix="bench-scale-out-") as tmp:
            async with DiscordEmulator() as emu:
                study = PostgresStudy(emu, REPO, Path(tmp), url=url, digest_count=args.stories)
                try:
                    return await measure(ScaleOut(study, args))
                finally:
                    await study.kill_all()
    finally:
        gc.enable()
        await asyncio.to_thread(server.stop)


async def probe_lag(samples: list[tuple[float, float]], every: float = 0.05) -> None:
    """How late this process's loop, the emulator's, wakes: a late loop takes in a backlog of
    requests at once, which its rate limits count as one burst."""
    while True:
        start = time.monotonic()
        await asyncio.sleep(every)
        samples.append((start, time.monotonic() - start - every))


def lag_before(samples: Sequence[tuple[float, float]], instants: Sequence[float]) -> list[float]:
    """The emulator's worst loop lag in the second before each instant, in ms."""
    return [
        1000 * max((lag for at, lag in samples if instant - 1.0 <= at <= instant), default=0.0)
        for instant in instants
    ]


async def measure(run: ScaleOut) -> dict[str, Any]:
    lags: list[tuple[float, float]] = []
    probe = asyncio.create_task(probe_lag(lags))
    try:
        return await measure_run(run, lags)
    finally:
        probe.cancel()


async def measure_run(run: ScaleOut, lags: list[tuple[float, float]]) -> dict[str, Any]:
    study, emu, args = run.study, run.emu, run.args
    emu.recommended_shards = run.shard_count
    emu.limits.identify_window = IDENTIFY_WINDOW
    study.add_servers(args.servers, shard_count=run.shard_count)
    await study.load_seeds()
    started = time.monotonic()
    processes = [await run.start(shards) for shards in run.ranges]
    await run.wait_ready(set(range(run.shard_count)), 60 + 10 * run.shard_count)
    await study.wait_for_commands()
    connect_seconds = time.monotonic() - started
    say(f"{run.shard_count} shards READY after {connect_seconds:.1f} s")

    due = next_minute(datetime.now(UTC) + timedelta(seconds=args.due_margin))
    await study.schedule(study.servers, due)
    # The due minute on the emulator's clock (its request log is in monotonic seconds).
    due_at = time.monotonic() + (due - datetime.now(UTC)).total_seconds()
    first_request = len(emu.requests)

    # The first claims come at the due minute: give up (loudly) if none has by two past it.
    per_digest = await asyncio.wait_for(run.messages_per_digest(), args.due_margin + 180)
    expected = per_digest * len(study.servers)
    kill_after = max(1, math.floor(args.kill_at * expected))
    say(f"{per_digest:g} messages per digest, {expected:.0f} in all; the kill comes after "
        f"{kill_after}")  # fmt: skip
    floor = expected / args.send_rate
    await run.wait_sent(kill_after, within=max(0.0, due_at - time.monotonic()) + 3 * floor + 120)
    victim, shards = processes[0], run.ranges[0]
    await study.stop(victim, kill=True)
    killed_at = time.monotonic()
    say(f"SIGKILL of the process on shards {shards} after {study.channel_posts()} messages")
    restarted = await run.start(shards)
    processes[0] = restarted
    own = set(range(args.shards_per_process))
    await run.wait_ready(own, 120)
    ready_again = time.monotonic() - killed_at
    finished = await run.wait_final(3 * floor + 300)
    final_at = time.monotonic()

    acceptance = {
        "news": await run.news_on_every_shard(),
        "second_process_on_shard_0": await run.another_on_shard_0(),
    }
    for process in processes:
        await study.stop(process)
    verdict = await study.report()

    requests = emu.requests[first_request:]
    posts = [r for r in requests if r.method == "POST" and r.route and _is_message_post(r)]
    created = sorted(r.at for r in posts if r.status == 200)
    channel_shard = run.shard_of_channel()
    restarted_sends = [
        r.at
        for r in posts
        if r.at > killed_at and r.status == 200 and channel_shard.get(_channel(r), -1) in own
    ]
    messages = sum(len(study.posted(s.channel)) for s in study.servers)
    if args.dump_requests is not None:
        dump_requests(args.dump_requests, requests, due_at)
    last = created[-1] if created else due_at
    first = created[0] if created else due_at
    floor = messages / args.send_rate
    global_429s = [r.at for r in requests if r.status == 429 and (r.error or {}).get("global")]
    global_429 = len(global_429s)
    fan_out_lags = [lag for at, lag in lags if due_at <= at <= last]
    return {
        "servers": len(study.servers),
        "processes": args.processes,
        "shard_count": run.shard_count,
        "messages_per_digest": per_digest,
        "messages": messages,
        "finished": finished,
        "connect_seconds": connect_seconds,
        "identifies": emu.gateway.identifies,
        "identify_refused": sum(
            1
            for record in emu.gateway.log
            if record.kind == "invalid_session" and record.detail.get("on") == "identify"
        ),
        "duplicates": verdict.duplicates,
        "channels_with_duplicates": verdict.channels_with_duplicates,
        "servers_without_digest": verdict.servers_without_digest,
        "servers_missing_stories": verdict.servers_missing_stories,
        "missing_stories": verdict.missing,
        "max_sends_per_second": max_in_window(created),
        "max_message_posts_per_second": max_in_window([r.at for r in posts]),
        "max_requests_per_second": max_in_window([r.at for r in requests]),
        "global_429": global_429,
        # The first ones: a storm of them would fill the file.
        "global_429_at_s": [round(at - due_at, 2) for at in global_429s[:LISTED]],
        "emulator_lag_before_each_global_429_ms": [
            round(x) for x in lag_before(lags, global_429s[:LISTED])
        ],
        "emulator_lag_max_ms": 1000 * max(fan_out_lags, default=0.0),
        "emulator_lag_p99_ms": 1000 * percentile(fan_out_lags, 0.99) if fan_out_lags else 0.0,
        "all_429": sum(1 for r in requests if r.status == 429),
        "rate_limit_hits": dict(emu.rate_limit_hits),
        "first_send_after_due_s": first - due_at,
        "total_seconds_from_due": last - due_at,
        "total_seconds_from_first_send": last - first,
        "floor_seconds": floor,
        "ratio_from_due": (last - due_at) / floor if floor else float("nan"),
        "ratio_from_first_send": (last - first) / floor if floor else float("nan"),
        "killed_after_messages": kill_after,
        "restart_ready_s": ready_again,
        "restart_first_send_s": (restarted_sends[0] - killed_at) if restarted_sends else None,
        "restart_all_final_s": final_at - killed_at,
        "acceptance": acceptance,
    }


def dump_requests(path: Path, requests: Sequence[RequestRecord], due_at: float) -> None:
    """The request log as CSV: seconds after the due minute, method, route, status, whether a
    429 was global: where the sends and refusals fell."""
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["at", "method", "route", "status", "global"])
        for r in requests:
            is_global = r.status == 429 and bool((r.error or {}).get("global"))
            writer.writerow([f"{r.at - due_at:.4f}", r.method, r.route, r.status, is_global])
    say(f"request log written to {path}")


def _is_message_post(record: RequestRecord) -> bool:
    return record.path.startswith("/channels/") and record.path.endswith("/messages")


def _channel(record: RequestRecord) -> int:
    return int(record.path.split("/")[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--shards-per-process", type=int, default=2)
    parser.add_argument("--servers", type=int, default=2000)
    parser.add_argument("--kill-at", type=float, default=0.3, help="share of messages sent")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument(
        "--stories", type=int, default=8, help="stories per digest (8: two messages)"
    )
    parser.add_argument(
        "--due-margin",
        type=float,
        default=DUE_MARGIN,
        help="seconds at least between READY and the due minute",
    )
    parser.add_argument("--name", default="scale_out", help="results file name")
    parser.add_argument(
        "--dump-requests", type=Path, default=None, help="write the request log here (CSV)"
    )
    args = parser.parse_args()
    args.send_rate = GlobalDigestSettings().send_rate
    logging.basicConfig(level=logging.WARNING)
    results = []
    for index in range(args.runs):
        result = asyncio.run(one_run(args))
        results.append(result)
        say(
            f"run {index + 1}: {result['messages']} messages, "
            f"{result['total_seconds_from_due']:.1f} s from the due minute (floor "
            f"{result['floor_seconds']:.1f} s, ratio "
            f"{result['ratio_from_due']:.3f}; {result['ratio_from_first_send']:.3f} from the "
            f"first send); duplicates in {result['channels_with_duplicates']} channels, "
            f"{result['servers_without_digest']} servers without a digest, "
            f"{result['servers_missing_stories']} missing stories; at most "
            f"{result['max_sends_per_second']} sends in a second; global 429s "
            f"{result['global_429']}; restart: first send {result['restart_first_send_s']} s"
        )

    def med(key: str) -> float:
        values = [r[key] for r in results if r[key] is not None]
        return median(values) if values else float("nan")

    def worst(key: str) -> float:
        return max(r[key] for r in results)

    figures = [
        Figure("servers", args.servers, ""),
        Figure("processes x shards", args.processes * args.shards_per_process, ""),
        Figure("digest messages", med("messages"), ""),
        Figure("channels with a duplicate (max)", worst("channels_with_duplicates"), "", 0),
        Figure("servers without a digest (max)", worst("servers_without_digest"), "", 0),
        Figure("servers missing stories (max)", worst("servers_missing_stories"), "", 0),
        Figure("most sends in one second (max)", worst("max_sends_per_second"), "", 50),
        Figure("global 429s (max)", worst("global_429"), "", 0),
        Figure("emulator loop lag, worst (max)", worst("emulator_lag_max_ms"), "ms"),
        Figure("floor seconds (msgs/send_rate)", med("floor_seconds"), "s"),
        Figure("total seconds from the due minute", med("total_seconds_from_due"), "s"),
        Figure("total/floor from the due minute", med("ratio_from_due"), "x", 1.15),
        Figure("total/floor from the first send", med("ratio_from_first_send"), "x"),
        Figure("restart: SIGKILL to READY", med("restart_ready_s"), "s"),
        Figure("restart: SIGKILL to its first send", med("restart_first_send_s"), "s"),
        Figure("restart: SIGKILL to all runs final", med("restart_all_final_s"), "s"),
        Figure(
            "acceptance checks passed (runs)",
            sum(
                1
                for r in results
                if r["acceptance"]["news"]["ok"]
                and r["acceptance"]["second_process_on_shard_0"]["ok"]
            ),
            "",
            args.runs,
            better="higher",
        ),
    ]
    arguments = {key: str(v) if isinstance(v, Path) else v for key, v in vars(args).items()}
    report(args.name, figures, {"args": arguments, "runs": results})


if __name__ == "__main__":
    main()
