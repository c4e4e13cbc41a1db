"""Two `newsbot run` processes on one PostgreSQL database, one shard each, as an operator runs
them: one is SIGKILLed after its first digest sends and started again at once; every digest is
posted exactly once, and /news is answered on both shards."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from bot.sharding import shard_of
from tests.discord_emulator import DiscordEmulator
from tests.postgres import PostgresServer
from tests.process_study import PostgresStudy, final

REPO = Path(__file__).resolve().parent.parent
SHARDS = 2
SERVERS = 20
# Discord's IDENTIFY window: the emulator refuses an earlier IDENTIFY, as Discord does.
IDENTIFY_WINDOW = 5.0
# A late answer to each message keeps one in flight (created, unanswered) when the kill comes.
ANSWER_DELAY = 0.2


async def test_a_process_killed_mid_fan_out_and_restarted_leaves_every_digest_posted_once(
    postgres_server: PostgresServer, postgres_url: str, tmp_path: Path
) -> None:
    async with DiscordEmulator() as emu:
        emu.recommended_shards = SHARDS
        emu.limits.identify_window = IDENTIFY_WINDOW
        study = PostgresStudy(emu, REPO, tmp_path, url=postgres_url, digest_count=8)
        study.add_servers(SERVERS, shard_count=SHARDS)
        env = {"NEWSBOT_SHARD_COUNT": str(SHARDS)}
        first_shard = [s for s in study.servers if shard_of(s.guild.id, SHARDS) == 0]
        try:
            await study.load_seeds()
            await study.schedule(study.servers, datetime.now(UTC))
            emu.after_create("delay", delay=ANSWER_DELAY, times=1_000_000)
            victim = await study.start(**env, NEWSBOT_SHARD_IDS="0")
            await study.start(**env, NEWSBOT_SHARD_IDS="1")

            await emu.wait_until(
                lambda: any(study.posted(s.channel) for s in first_shard),
                90,
                "the first digest message on shard 0",
            )
            await study.stop(victim, kill=True)
            at_kill = await study.ledger()
            restarted = await study.start(**env, NEWSBOT_SHARD_IDS="0")
            all_final = await study.wait_ledger(
                lambda rows: final(rows, SERVERS), 90, "every run to be final"
            )
            answers = await study.news_on_every_shard(SHARDS)
            verdict = await study.report()
        finally:
            await study.kill_all()

    unfinished_at_kill = [
        r for r in at_kill if r["status"] == "claimed" and shard_of(r["guild_id"], SHARDS) == 0
    ]
    assert unfinished_at_kill, "the kill came after shard 0's digests were done: it tests nothing"
    assert all_final
    ledger = await study.ledger()
    assert {r["status"] for r in ledger} == {"sent"}
    assert all(json.loads(r["plan"]) for r in ledger)
    assert verdict.duplicates == 0
    assert verdict.missing == 0
    assert verdict.servers_without_digest == 0
    assert "resuming the digest of" in study.logs[study.processes.index(restarted)].read_text()
    assert all(answer.ok for answer in answers.values()), answers
