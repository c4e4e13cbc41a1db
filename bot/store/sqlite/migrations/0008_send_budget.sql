-- The send budget: one token bucket shared by every newsbot process on this database, so that
-- together they keep digest sends under digest.send_rate (Discord's global limit belongs to
-- the bot token, not to a process). bot/store/sqlite/budget.py takes slots from it.
--
-- One row. tokens: slots available at updated_at (unix seconds, fractional); it refills at
-- `rate` a second up to `burst`, the values the last taker configured. last_grant: how many
-- slots the last UPDATE handed out, so that one UPDATE ... RETURNING says what it took.
CREATE TABLE send_budget (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    tokens REAL NOT NULL,
    updated_at REAL NOT NULL,
    rate REAL NOT NULL,
    burst INTEGER NOT NULL,
    last_grant INTEGER NOT NULL DEFAULT 0
);
-- Empty and long ago: the first taker finds it refilled to its burst.
INSERT INTO send_budget (id, tokens, updated_at, rate, burst) VALUES (1, 0, 0, 1, 1);

-- IDENTIFY turns: Discord allows one IDENTIFY per 5 s in each bucket (shard_id %
-- max_concurrency) for the whole token. One row per bucket with the instant (unix seconds)
-- of the latest turn handed out, which may be in the future: processes starting together
-- each reserve the next free turn (bot/identify.py).
CREATE TABLE identify_turns (
    bucket INTEGER PRIMARY KEY,
    turn_at REAL NOT NULL
);
