"""What newsbot counts for an operator to graph and alert on, in Prometheus's terms.

Each bot owns one `Metrics`: its own CollectorRegistry, never prometheus_client's global one
(tests build many bots in one process, and a name registered twice in one registry raises).
The code that does a counted thing records it through the Metrics it was given; bot.health
serves the registry as GET /metrics. Labels stay bounded: command names, outcomes, reasons,
verdicts and shard ids, never a server, a channel or a user.

This module imports nothing of newsbot's, so that any part of it can record.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from types import SimpleNamespace

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# Why a digest attempt stopped before all of its messages were posted (it is resumed later).
DIGEST_FAILURES = ("discord", "database")
# Why a send was tried again (bot.delivery.send_with_retries).
RETRY_REASONS = ("rate_limited", "server_error", "network")
# A reload's files by verdict: the names of bot.reload's ReloadReport, as an operator says them.
RELOAD_VERDICTS = ("added", "changed", "unchanged", "rejected", "removed")
# Seconds: commands answer within Discord's 3 s (or defer); a slow one is seconds more.
COMMAND_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Seconds: an unchanged folder reloads in a moment, twenty thousand new files in a minute.
RELOAD_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0)
# Seconds the event-loop watcher sleeps between looks; what it oversleeps is the lag.
LOOP_LAG_INTERVAL = 0.5
# Seconds over which the largest lag is kept: a stall between two scrapes is still seen.
LOOP_LAG_WINDOW = 60.0


class Metrics:
    """newsbot's instruments, in a registry of their own."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.registry = CollectorRegistry()
        self._clock = clock
        registry = self.registry
        self.commands = Counter(
            "newsbot_commands",
            "Slash commands run, by command and outcome (answered, refused, failed)",
            ["command", "outcome"],
            registry=registry,
        )
        self.command_seconds = Histogram(
            "newsbot_command_duration_seconds",
            "Time from a slash command's arrival to its outcome",
            ["command"],
            buckets=COMMAND_BUCKETS,
            registry=registry,
        )
        self.digests_posted = Counter(
            "newsbot_digests_posted", "Digests posted in full", registry=registry
        )
        self.digests_failed = Counter(
            "newsbot_digests_failed",
            "Digest attempts that stopped before every message was posted (resumed later), "
            "by reason: discord (errors, timeouts) or database (it refused writes)",
            ["reason"],
            registry=registry,
        )
        self.digests_paused = Counter(
            "newsbot_digests_paused",
            "Digests switched off because their channel is gone or forbidden",
            registry=registry,
        )
        self.messages_sent = Counter(
            "newsbot_messages_sent",
            "Channel messages newsbot posted, by kind: digest messages, notices to admins",
            ["kind"],
            registry=registry,
        )
        self.rate_limited = Counter(
            "newsbot_discord_rate_limited",
            "HTTP 429 answers from Discord, as discord.py received them (it waits and retries "
            "each itself)",
            registry=registry,
        )
        self.send_retries = Counter(
            "newsbot_send_retries",
            "Digest sends newsbot tried again after a transient failure, by reason",
            ["reason"],
            registry=registry,
        )
        self.budget_waits = Counter(
            "newsbot_send_budget_waits",
            "Sends that waited for the shared send budget (Discord's global limit)",
            registry=registry,
        )
        self.budget_wait_seconds = Counter(
            "newsbot_send_budget_wait_seconds",
            "Time sends spent waiting for the shared send budget",
            registry=registry,
        )
        self.reload_seconds = Histogram(
            "newsbot_seed_reload_duration_seconds",
            "Time an applied seed reload took",
            buckets=RELOAD_BUCKETS,
            registry=registry,
        )
        self.reload_files = Gauge(
            "newsbot_seed_reload_files",
            "Files of the last applied seed reload, by verdict",
            ["verdict"],
            registry=registry,
        )
        self.stories = Gauge("newsbot_stories", "Stories stored", registry=registry)
        self.last_tick = Gauge(
            "newsbot_digest_last_tick_timestamp_seconds",
            "When the digest scheduler last ticked (Unix time)",
            registry=registry,
        )
        self.loop_lag = Gauge(
            "newsbot_event_loop_lag_seconds",
            f"How late the event loop woke a {LOOP_LAG_INTERVAL} s sleep, last look",
            registry=registry,
        )
        self.loop_lag_max = Gauge(
            "newsbot_event_loop_lag_max_seconds",
            f"The largest event-loop lag of the last {LOOP_LAG_WINDOW:.0f} s",
            registry=registry,
        )
        # Every label value is known: each series exists (at 0) from the start, so that a
        # rate() or an alert sees the first event as a change, not as a new series.
        for reason in DIGEST_FAILURES:
            self.digests_failed.labels(reason)
        for kind in ("digest", "notice"):
            self.messages_sent.labels(kind)
        for reason in RETRY_REASONS:
            self.send_retries.labels(reason)
        # Monotonic: when the digest scheduler last ticked; until it does, when this started.
        self.last_tick_at = clock()
        # Monotonic: when the stories were last counted (never yet: -inf).
        self.stories_counted_at = float("-inf")
        self._lags: deque[tuple[float, float]] = deque()

    # --- recording --------------------------------------------------------------------------

    def command_done(self, command: str, outcome: str, seconds: float | None) -> None:
        self.commands.labels(command, outcome).inc()
        if seconds is not None:
            self.command_seconds.labels(command).observe(seconds)

    def digest_ticked(self) -> None:
        self.last_tick_at = self._clock()
        self.last_tick.set_to_current_time()

    def seconds_since_tick(self) -> float:
        return self._clock() - self.last_tick_at

    def stories_counted(self, count: int) -> None:
        self.stories.set(count)
        self.stories_counted_at = self._clock()

    def seconds_since_story_count(self) -> float:
        return self._clock() - self.stories_counted_at

    def send_retried(self, status: int | None) -> None:
        """A send is tried again after an HTTP `status`, or a network failure (None)."""
        self.send_retries.labels(retry_reason(status)).inc()

    def budget_waited(self, seconds: float) -> None:
        self.budget_waits.inc()
        self.budget_wait_seconds.inc(seconds)

    def reloaded(self, seconds: float, files: dict[str, int]) -> None:
        self.reload_seconds.observe(seconds)
        for verdict in RELOAD_VERDICTS:
            self.reload_files.labels(verdict).set(files.get(verdict, 0))

    def loop_lagged(self, lag: float) -> None:
        now = self._clock()
        self._lags.append((now, lag))
        while self._lags and self._lags[0][0] < now - LOOP_LAG_WINDOW:
            self._lags.popleft()
        self.loop_lag.set(lag)
        self.loop_lag_max.set(max(seen for _, seen in self._lags))

    # --- watching ---------------------------------------------------------------------------

    def watch_gateway(self, latencies: Callable[[], Sequence[tuple[int, float]]]) -> None:
        """Report each shard's heartbeat latency, read from `latencies` at each scrape."""
        self.registry.register(_GatewayLatency(latencies))

    def http_trace(self) -> aiohttp.TraceConfig:
        """A trace for discord.py's HTTP session (Client(http_trace=...)) that counts the 429s
        it receives: discord.py waits them out and retries by itself, so newsbot's own code
        never sees them; the answers on the wire are the honest count."""
        trace = aiohttp.TraceConfig()

        async def answered(
            session: aiohttp.ClientSession,
            context: SimpleNamespace,
            params: aiohttp.TraceRequestEndParams,
        ) -> None:
            if params.response.status == 429:
                self.rate_limited.inc()

        trace.on_request_end.append(answered)
        return trace


def retry_reason(status: int | None) -> str:
    """Why a send is tried again: the HTTP status it got, or None for the network."""
    if status is None:
        return "network"
    return "rate_limited" if status == 429 else "server_error"


async def watch_loop_lag(metrics: Metrics, interval: float = LOOP_LAG_INTERVAL) -> None:
    """Sleep `interval` seconds again and again, recording how late each wake-up is: the time
    some callback held the event loop (a blocking call, a long computation). Runs until
    cancelled."""
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(interval)
        metrics.loop_lagged(max(0.0, loop.time() - before - interval))


class _GatewayLatency(Collector):
    """newsbot_gateway_latency_seconds{shard}, read from discord.py when scraped."""

    def __init__(self, latencies: Callable[[], Sequence[tuple[int, float]]]) -> None:
        self._latencies = latencies

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "newsbot_gateway_latency_seconds",
            "Time between a gateway heartbeat and its acknowledgement, by shard",
            labels=["shard"],
        )
        for shard_id, latency in self._latencies():
            # inf or nan until the shard's first heartbeat is acknowledged: no value yet.
            if math.isfinite(latency):
                family.add_metric([str(shard_id)], latency)
        yield family
