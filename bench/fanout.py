"""Target (e): one minute's digest fan-out to many servers, against Discord's real limits.

How: a local Discord emulator (tests/discord_emulator) in this process enforces its defaults,
50 bot requests per second globally and 5 messages per 5 s per channel, answering real 429s.
It gets N servers (`--servers`, default 1,000), each with one #news channel. newsbot is built
as the tests build it (`build_newsbot`, fake clock, scheduler off), loads the shipped seeds/
with its own reloader at start, and gets one DigestSettings per server saved through the store,
all due at 08:00 UTC. Once the bot has every guild in its cache the clock is set to 08:00 and
one `await poster.tick()` is timed.

Figures (medians over `--runs` fresh databases):
- tick seconds: wall time of the tick;
- floor seconds: digest messages sent / 50 per second (the global limit, the best possible);
- total/floor: target ≤ 1.15. The default send rate (`digest.send_rate` 45/s) alone makes
  this ≈ 1.04 before any overhead;
- duplicates: channels with more digest messages than their run recorded, plus nonces that
  the emulator stored twice; target 0;
- lost: servers without a digest message, or whose run is not 'sent'; target 0;
- 429 share: 429 answers / all REST requests during the tick; target ≤ 1 %.
`--send-rate` overrides digest.send_rate to see how the ratio moves with it.

    python -m bench.fanout [--servers 1000] [--runs 3] [--send-rate 48]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import shutil
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any

import discord
import discord.gateway
import discord.http
import yarl

from bench.common import Figure, median, percentile, report
from bot.config import GlobalDigestSettings
from bot.models import DigestSettings
from tests.discord_emulator import DiscordEmulator, running_bot
from tests.helpers import SHIPPED_SEEDS, FakeClock, build_newsbot

GLOBAL_RATE = 50.0
DUE = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


async def one_run(servers: int, send_rate: float | None, profile: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmp:
        root = Path(tmp)
        seeds = root / "seeds"
        shutil.copytree(SHIPPED_SEEDS, seeds)
        async with DiscordEmulator() as emu:
            discord.http.Route.BASE = emu.api_base
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(emu.gateway_url)
            channels = []
            for number in range(servers):
                guild = emu.add_guild(f"Server {number}")
                channels.append(emu.add_channel(guild, "news"))
            clock = FakeClock(datetime(2024, 3, 1, 7, 0, tzinfo=UTC))
            digest = (
                GlobalDigestSettings()
                if send_rate is None
                else GlobalDigestSettings(send_rate=send_rate)
            )
            bot = build_newsbot(root, seeds, clock=clock, digest=digest)
            started = time.perf_counter()
            async with running_bot(bot, emu, ready_timeout=120, loggers=("discord", "bot")) as run:
                run.allow_error("")  # errors are counted below, not fatal to a benchmark
                startup = bot.get_cog("Seeds").startup_reload  # type: ignore[union-attr]
                if startup is not None:
                    await startup
                # Polled: emu.wait_until is woken by emulator changes only, not by the bot's
                # cache filling up after the last GUILD_CREATE went out.
                async with asyncio.timeout(120):
                    while not all(bot.get_channel(c.id) for c in channels):  # noqa: ASYNC110
                        await asyncio.sleep(0.05)
                connected = time.perf_counter() - started
                for channel in channels:
                    await bot.store.save_digest_settings(
                        DigestSettings(
                            channel.guild_id,
                            channel.id,
                            dtime(8),
                            "UTC",
                            effective_from=datetime(2024, 2, 1, tzinfo=UTC),
                        )
                    )
                poster = bot.get_cog("Digest").poster  # type: ignore[union-attr]
                clock.now = DUE
                first_request = len(emu.requests)
                profiler = None
                if profile:
                    import cProfile

                    profiler = cProfile.Profile()
                    profiler.enable()
                t0 = time.perf_counter()
                m0 = time.monotonic()
                await poster.tick()
                seconds = time.perf_counter() - t0
                if profiler is not None:
                    profiler.disable()
                    profiler.dump_stats(str(Path(__file__).parent / "results" / "fanout.prof"))
                requests = emu.requests[first_request:]
                runs = await bot.store.digest_runs_since(DUE.date())
            # --- verdicts --------------------------------------------------------------------
            statuses = Counter(r.status for r in requests)
            posts = [
                r for r in requests if r.method == "POST" and r.route and "messages" in r.route
            ]
            stored_nonces: Counter[str] = Counter()
            per_channel = {}
            for channel in channels:
                mine = [m for m in emu.messages(channel) if m.source == "channel"]
                per_channel[channel.guild_id] = len(mine)
                for message in mine:
                    nonce = message.nonce  # what was sent: history carries none
                    if nonce is not None:
                        stored_nonces[str(nonce)] += 1
            sent_messages = sum(per_channel.values())
            duplicates = sum(
                1
                for channel in channels
                if per_channel[channel.guild_id]
                > (runs.get((channel.guild_id, DUE.date())) or _NoRun).sent_messages
            ) + sum(count - 1 for count in stored_nonces.values() if count > 1)
            lost = sum(
                1
                for channel in channels
                if per_channel[channel.guild_id] == 0
                or (run := runs.get((channel.guild_id, DUE.date()))) is None
                or run.status != "sent"
            )
            floor = sent_messages / GLOBAL_RATE
            # Where the time goes: before the first send, between sends, after the last one.
            at = sorted(r.at - m0 for r in posts)
            gaps = [b - a for a, b in itertools.pairwise(at)]
            interval = 1.0 / (send_rate or GlobalDigestSettings().send_rate)
            timeline = {
                "first_post_s": at[0] if at else None,
                "last_post_s": at[-1] if at else None,
                "after_last_post_s": seconds - at[-1] if at else None,
                "send_span_rate": (len(at) - 1) / (at[-1] - at[0]) if len(at) > 1 else None,
                "gap_p50_ms": 1000 * percentile(gaps, 0.5) if gaps else None,
                "gap_p99_ms": 1000 * percentile(gaps, 0.99) if gaps else None,
                "gap_max_ms": 1000 * max(gaps) if gaps else None,
                # time lost beyond the pacer's interval, summed over every gap
                "lost_to_late_sends_s": sum(max(0.0, g - interval) for g in gaps),
            }
            too_many = statuses.get(429, 0)
            return {
                "servers": servers,
                "send_rate": send_rate
                if send_rate is not None
                else GlobalDigestSettings().send_rate,
                "connect_seconds": connected,
                "tick_seconds": seconds,
                "messages": sent_messages,
                "floor_seconds": floor,
                "ratio": seconds / floor if floor else float("nan"),
                "duplicates": duplicates,
                "lost": lost,
                "requests": len(requests),
                "message_posts": len(posts),
                "statuses": {str(k): v for k, v in statuses.items()},
                "rate_limit_hits": dict(emu.rate_limit_hits),
                "share_429": too_many / len(requests) if requests else 0.0,
                "run_statuses": dict(Counter(r.status for r in runs.values())),
                "achieved_rate": sent_messages / seconds if seconds else 0.0,
                **timeline,
            }


class _NoRun:
    sent_messages = 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--send-rate", type=float, default=None, help="override digest.send_rate")
    parser.add_argument("--profile", action="store_true", help="cProfile the tick (last run)")
    parser.add_argument("--name", default="fanout", help="results file name")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    results = []
    for index in range(args.runs):
        result = asyncio.run(
            one_run(args.servers, args.send_rate, args.profile and index == args.runs - 1)
        )
        results.append(result)
        print(
            f"run {index + 1}: {result['tick_seconds']:.2f} s for {result['messages']} messages "
            f"(floor {result['floor_seconds']:.2f} s, ratio {result['ratio']:.3f}), "
            f"429s {result['statuses'].get('429', 0)}/{result['requests']}, "
            f"dup {result['duplicates']}, lost {result['lost']}; first send at "
            f"{result['first_post_s']:.2f} s, sends at {result['send_span_rate']:.1f}/s, "
            f"{result['after_last_post_s']:.2f} s after the last, "
            f"{result['lost_to_late_sends_s']:.2f} s lost to late sends",
            flush=True,
        )

    def med(key: str) -> float:
        return median([r[key] for r in results])

    figures = [
        Figure("servers", args.servers, ""),
        Figure("tick seconds", med("tick_seconds"), "s"),
        Figure("floor seconds (msgs/50)", med("floor_seconds"), "s"),
        Figure("total/floor", med("ratio"), "x", 1.15),
        Figure("duplicates (max)", max(r["duplicates"] for r in results), "", 0),
        Figure("lost (max)", max(r["lost"] for r in results), "", 0),
        Figure("429 share", 100 * med("share_429"), "%", 1.0),
        Figure("achieved msgs/s", med("achieved_rate"), "/s"),
        Figure("first send after", med("first_post_s"), "s"),
        Figure("rate between first and last send", med("send_span_rate"), "/s"),
        Figure("time lost to late sends", med("lost_to_late_sends_s"), "s"),
    ]
    report(args.name, figures, {"args": vars(args), "runs": results})


if __name__ == "__main__":
    main()
