"""The health and metrics listener: the readiness decision on its own, then /healthz, /readyz and
/metrics of newsbot running against the emulator (the real discord.py client), through a gateway
outage and a digest."""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time
from pathlib import Path
from time import sleep as blocking_sleep

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.health import (
    STORY_COUNT_TTL,
    CachedCheck,
    Part,
    gateway_part,
    readiness,
    scheduler_part,
)
from bot.metrics import LOOP_LAG_WINDOW, Metrics, watch_loop_lag
from bot.models import DigestSettings
from bot.poster import DigestPoster
from bot.store import StoreError
from tests.discord_emulator import DiscordEmulator, running_bot
from tests.helpers import (
    REPO,
    SHIPPED_SEEDS,
    FakeClock,
    World,
    build_newsbot,
    serving,
    start_newsbot,
)

# How long /readyz may take to notice a gateway outage.
OUTAGE_NOTICED = 10.0


# --- the readiness decision --------------------------------------------------------------------


def test_ready_when_every_part_is():
    assert readiness([Part("gateway", True), Part("database", True)]) == (200, "ready\n")


def test_not_ready_names_each_failing_part_on_a_line_of_its_own():
    status, body = readiness(
        [
            Part("gateway", False, "disconnected (shard 1)"),
            Part("database", True),
            Part("scheduler", False, "no digest tick for 200 s"),
        ]
    )

    assert status == 503
    assert body == "gateway: disconnected (shard 1)\nscheduler: no digest tick for 200 s\n"


@pytest.mark.parametrize(
    ("ready", "closed", "problem"),
    [
        (True, {0: False, 1: False}, None),
        (True, {0: False, 1: True}, "disconnected (shard 1)"),
        (False, {0: True, 1: True}, "disconnected (shard 0, 1)"),
        (False, {0: False}, "not connected yet"),
        (True, {}, "not connected yet"),
    ],
)
def test_the_gateway_is_up_when_discord_py_is_ready_and_every_shard_is_open(
    ready: bool, closed: dict[int, bool], problem: str | None
) -> None:
    part = gateway_part(ready, closed)

    assert part.name == "gateway"
    assert part.ok is (problem is None)
    assert part.problem == (problem or "")


def test_the_scheduler_is_alive_while_it_ticked_within_two_and_a_half_minutes() -> None:
    now = [1000.0]
    metrics = Metrics(clock=lambda: now[0])  # "started" at 1000

    now[0] += 149
    assert scheduler_part(metrics.seconds_since_tick()).ok
    now[0] += 2
    assert scheduler_part(metrics.seconds_since_tick()) == Part(
        "scheduler", False, "no digest tick for 151 s"
    )
    metrics.digest_ticked()
    now[0] += 60
    assert scheduler_part(metrics.seconds_since_tick()).ok


async def test_a_database_check_is_reused_for_its_ttl_failure_included() -> None:
    now = [0.0]
    calls: list[float] = []

    async def check() -> None:
        calls.append(now[0])
        if len(calls) == 2:
            raise StoreError("disk I/O error")

    cached = CachedCheck(check, 5.0, clock=lambda: now[0])
    await asyncio.gather(cached.check(), cached.check(), cached.check())
    now[0] = 4.9
    await cached.check()
    assert calls == [0.0]

    now[0] = 5.0
    for _ in range(2):
        with pytest.raises(StoreError, match="disk I/O error"):
            await cached.check()
    now[0] = 10.0
    await cached.check()
    assert calls == [0.0, 5.0, 10.0]


def test_the_largest_loop_lag_is_kept_for_a_minute() -> None:
    now = [0.0]
    metrics = Metrics(clock=lambda: now[0])

    metrics.loop_lagged(0.8)
    now[0] += LOOP_LAG_WINDOW / 2
    metrics.loop_lagged(0.01)
    assert (metrics.loop_lag._value.get(), metrics.loop_lag_max._value.get()) == (0.01, 0.8)
    now[0] += LOOP_LAG_WINDOW / 2 + 1
    metrics.loop_lagged(0.02)
    assert metrics.loop_lag_max._value.get() == 0.02


def test_gateway_latency_is_read_per_shard_when_scraped_and_left_out_until_known() -> None:
    latencies = [(0, 0.042), (1, float("inf"))]
    metrics = Metrics()
    metrics.watch_gateway(lambda: latencies)

    def latency(shard: str) -> float | None:
        return metrics.registry.get_sample_value(
            "newsbot_gateway_latency_seconds", {"shard": shard}
        )

    assert (latency("0"), latency("1")) == (0.042, None)
    latencies[1] = (1, 0.05)
    assert latency("1") == 0.05


# --- the listener, against the emulator ---------------------------------------------------------


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.text()


async def answer_within(url: str, status: int, seconds: float) -> str:
    """Poll `url` until it answers `status` (its body); fail after `seconds`."""
    deadline = asyncio.get_running_loop().time() + seconds
    for _ in itertools.count():
        answered, body = await get(url)
        if answered == status:
            return body
        if asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
    raise AssertionError(f"{url} did not answer {status} within {seconds} s")


@pytest.fixture
async def served(
    discord_emulator: DiscordEmulator, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[World]:
    """The `world` fixture's newsbot, serving health and metrics on a port the system picks."""
    async with serving(
        discord_emulator, tmp_path, clock=clock, metrics_listen="127.0.0.1:0"
    ) as world:
        yield world


def base_url(world: World) -> str:
    assert world.bot.health is not None
    host, port = world.bot.health.address
    return f"http://{host}:{port}"


async def test_readyz_turns_503_naming_the_gateway_during_an_outage(served: World) -> None:
    url = base_url(served)
    assert await get(f"{url}/healthz") == (200, "ok\n")
    assert await get(f"{url}/readyz") == (200, "ready\n")
    # discord.py's own ERROR line for each reconnect the outage refuses.
    served.run.allow_error("Attempting a reconnect")

    async with served.emu.gateway_outage(refuse=True):
        body = await answer_within(f"{url}/readyz", 503, OUTAGE_NOTICED)
        # Alive all the same: only readiness is lost.
        assert await get(f"{url}/healthz") == (200, "ok\n")

    assert body == "gateway: disconnected (shard 0)\n"


async def caught_up(metrics: Metrics) -> None:
    """Until the digest cog's catch-up tick, right after on_ready, has begun."""
    for _ in range(200):
        if metrics.registry.get_sample_value("newsbot_digest_last_tick_timestamp_seconds"):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("no digest tick within 2 s of on_ready")


async def test_readyz_names_a_digest_scheduler_that_stopped_ticking(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    discord_emulator.add_guild("Readers")
    bot = build_newsbot(
        tmp_path,
        SHIPPED_SEEDS,
        reload_seeds_at_start=False,
        schedule_digests=True,
        metrics_listen="127.0.0.1:0",
    )
    async with running_bot(bot, discord_emulator):
        assert bot.health is not None
        host, port = bot.health.address
        url = f"http://{host}:{port}/readyz"
        assert await get(url) == (200, "ready\n")
        # The scheduler stops; its last tick (the catch-up one at start) was 200 s ago.
        bot.get_cog("Digest").scheduler.shutdown(wait=False)  # type: ignore[union-attr]
        await caught_up(bot.metrics)
        bot.metrics.last_tick_at -= 200

        status, body = await get(url)

    assert status == 503
    assert body.startswith("scheduler: no digest tick for 20")


async def test_readyz_names_the_database_when_it_cannot_be_written(served: World) -> None:
    url = base_url(served)
    # The store closed under the bot: its probe's write fails.
    await served.store.close()

    status, body = await get(f"{url}/readyz")

    assert status == 503
    assert body.startswith("database: database ") and body.endswith(" is not open\n")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_metrics_count_the_digest_posted_and_the_commands_answered(
    served: World, clock: FakeClock
) -> None:
    world = served
    await due_at_eight(world, clock)
    await (await world.invoke("news", {"topic": "AI"})).response()
    await (await world.invoke("news", {"topic": "Gardening"})).response()
    # Discord's rate limit on the first digest message: discord.py waits it out and retries.
    world.emu.fail_next("POST", "/channels/*/messages", 429, retry_after=0.05)
    await world.bot.get_cog("Digest").poster.tick()  # type: ignore[union-attr]
    posted = [m for m in world.emu.messages(world.channel) if m.source == "channel"]
    assert posted

    async with aiohttp.ClientSession() as http, http.get(f"{base_url(world)}/metrics") as answer:
        assert answer.headers["Content-Type"].startswith("text/plain; version=")
        found = samples(await answer.text())

    stored = await world.store.story_count()
    assert found["newsbot_digests_posted_total", ()] == 1
    assert found["newsbot_digests_paused_total", ()] == 0
    assert found["newsbot_messages_sent_total", (("kind", "digest"),)] == len(posted)
    assert found["newsbot_discord_rate_limited_total", ()] == 1
    assert found["newsbot_send_retries_total", (("reason", "rate_limited"),)] == 0
    answered = (("command", "news"), ("outcome", "answered"))
    refused = (("command", "news"), ("outcome", "refused"))
    assert (
        found["newsbot_commands_total", answered],
        found["newsbot_commands_total", refused],
    ) == (
        1,
        1,
    )
    assert found["newsbot_command_duration_seconds_count", (("command", "news"),)] == 2
    assert found["newsbot_stories", ()] == stored
    shipped = sum(1 for path in SHIPPED_SEEDS.iterdir() if path.is_file())
    assert found["newsbot_seed_reload_files", (("verdict", "added"),)] == shipped
    assert found["newsbot_seed_reload_duration_seconds_count", ()] == 1
    assert ("newsbot_event_loop_lag_seconds", ()) in found
    assert ("newsbot_gateway_latency_seconds", (("shard", "0"),)) in found


async def test_stories_are_counted_at_a_scrape_once_the_last_count_is_old(served: World) -> None:
    metrics, url = served.bot.metrics, f"{base_url(served)}/metrics"
    stored = await served.store.story_count()
    # Counted after the start-up reload: a scrape soon after reuses that count.
    metrics.stories.set(-1)
    assert samples((await get(url))[1])["newsbot_stories", ()] == -1

    metrics.stories_counted_at -= STORY_COUNT_TTL

    assert samples((await get(url))[1])["newsbot_stories", ()] == stored


def listening_sockets() -> set[tuple[str, int]]:
    """The (address, port) of every TCP socket this process listens on (Linux's /proc)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        with open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                address, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and inode in inodes:  # 0A: LISTEN
                    host, port = address.split(":")
                    found.add((host, int(port, 16)))
    return found


async def test_the_listener_binds_only_the_address_it_is_told(served: World) -> None:
    assert served.bot.health is not None
    host, port = served.bot.health.address
    assert host == "127.0.0.1"
    assert ("0100007F", port) in listening_sockets()  # 127.0.0.1, as the kernel writes it
    # Another loopback address on the same port: nothing listens there.
    with pytest.raises(aiohttp.ClientConnectorError):
        await get(f"http://127.0.0.2:{port}/healthz")


async def test_without_metrics_listen_nothing_listens(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    emu = discord_emulator
    emu.add_guild("Readers")
    before = listening_sockets()
    bot = build_newsbot(tmp_path, SHIPPED_SEEDS, reload_seeds_at_start=False)

    async with running_bot(bot, emu):
        assert bot.health is None
        assert listening_sockets() == before


async def test_the_listener_stops_when_newsbot_closes(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    discord_emulator.add_guild("Readers")
    bot = build_newsbot(
        tmp_path, SHIPPED_SEEDS, reload_seeds_at_start=False, metrics_listen="127.0.0.1:0"
    )
    async with running_bot(bot, discord_emulator):
        assert bot.health is not None
        host, port = bot.health.address
        assert (await get(f"http://{host}:{port}/healthz"))[0] == 200

    with pytest.raises(aiohttp.ClientConnectorError):
        await get(f"http://{host}:{port}/healthz")


async def test_a_port_in_use_stops_newsbot_run_with_one_line(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = await start_newsbot(
            discord_emulator,
            tmp_path,
            discord_emulator.token,
            NEWSBOT_METRICS_LISTEN=f"127.0.0.1:{port}",
        )
        _, stderr = await asyncio.wait_for(process.communicate(), 30)

    lines = stderr.decode().strip().splitlines()
    assert process.returncode == 2
    assert lines[-1] == (
        f"newsbot: error: cannot listen for health and metrics on 127.0.0.1:{port}: "
        "Address already in use"
    )


async def test_newsbot_sync_serves_nothing_beside_a_running_bot(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    emu = discord_emulator
    guild = emu.add_guild("Dev")
    with socket.socket() as taken:  # the running bot's listener, as far as sync can tell
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = {
            **os.environ,
            "DISCORD_TOKEN": emu.token,
            "DISCORD_API_BASE": emu.api_base,
            "DISCORD_GATEWAY_URL": emu.gateway_url,
            "NEWSBOT_DB": str(tmp_path / "news.db"),
            "NEWSBOT_METRICS_LISTEN": f"127.0.0.1:{taken.getsockname()[1]}",
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "sync", "--guild", str(guild.id),
            cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, stderr = await asyncio.wait_for(process.communicate(), 30)

    assert process.returncode == 0, stderr.decode()


# --- what the digest poster counts --------------------------------------------------------------


def sample(world: World, name: str, **labels: str) -> float | None:
    return world.bot.metrics.registry.get_sample_value(name, labels)


async def due_at_eight(world: World, clock: FakeClock) -> None:
    await world.store.save_digest_settings(
        DigestSettings(
            world.guild.id,
            world.channel.id,
            time(8),
            "UTC",
            effective_from=datetime(2024, 2, 1, tzinfo=UTC),
        )
    )
    clock.now = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


async def test_a_digest_switched_off_is_counted_paused_with_the_admins_notice(
    world: World, clock: FakeClock
) -> None:
    world.emu.add_channel(world.guild, "lobby")
    await due_at_eight(world, clock)
    world.emu.fail_next("POST", f"/channels/{world.channel.id}/messages", 403, code=50013)

    await world.bot.get_cog("Digest").poster.tick()  # type: ignore[union-attr]

    assert sample(world, "newsbot_digests_paused_total") == 1
    assert sample(world, "newsbot_digests_posted_total") == 0
    assert sample(world, "newsbot_messages_sent_total", kind="notice") == 1
    assert sample(world, "newsbot_messages_sent_total", kind="digest") == 0


async def test_a_digest_discord_failed_is_counted_and_each_tick_is_noted(
    world: World, clock: FakeClock
) -> None:
    await due_at_eight(world, clock)
    # No retries: a 503 (which discord.py does not retry either) stops the run at once.
    poster = DigestPoster(
        world.store, world.bot, clock=clock, retry_delays=(), metrics=world.bot.metrics
    )
    world.emu.fail_next("POST", f"/channels/{world.channel.id}/messages", 503)
    assert sample(world, "newsbot_digest_last_tick_timestamp_seconds") == 0

    await poster.tick()

    assert sample(world, "newsbot_digests_failed_total", reason="discord") == 1
    assert sample(world, "newsbot_digests_posted_total") == 0
    assert sample(world, "newsbot_digest_last_tick_timestamp_seconds") > 0


async def test_the_loop_lag_watcher_sees_a_callback_that_blocks_the_loop() -> None:
    metrics = Metrics()
    watcher = asyncio.create_task(watch_loop_lag(metrics, interval=0.01))
    await asyncio.sleep(0)  # the watcher starts its first sleep
    # What a blocking call in a handler does to every other task (blocking is the point).
    blocking_sleep(0.05)  # noqa: ASYNC251
    await asyncio.sleep(0.05)
    watcher.cancel()
    await asyncio.gather(watcher, return_exceptions=True)

    assert metrics.loop_lag_max._value.get() > 0
