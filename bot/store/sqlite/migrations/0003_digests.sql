-- Daily digests: each server's settings, the ledger of digests posted, and which stories each
-- channel has received (the modules of bot/store/sqlite/ own every query against these tables).
--
-- Instants are unix seconds, UTC, as in 0001; local dates are ISO text (YYYY-MM-DD), which
-- sorts and compares as dates. No foreign keys, as in 0001: a digest outlives the stories it
-- posted (they may be retired by a reload), and a story id that comes back later must still
-- count as delivered.

-- One row per server. Disabling keeps the row, so that switching the digest back on does not
-- mean setting it up again. The scheduler reads every enabled row each minute: there is one
-- row per server, so a scan is cheaper to keep than an index.
CREATE TABLE digest_settings (
    guild_id INTEGER PRIMARY KEY,
    channel_id INTEGER NOT NULL,
    -- Wall-clock time in `timezone`, so that the digest follows daylight saving time.
    local_time TEXT NOT NULL CHECK (local_time GLOB '[0-2][0-9]:[0-5][0-9]'),
    -- IANA zone name, such as Europe/Paris.
    timezone TEXT NOT NULL,
    -- JSON array of topic display names, as chosen; matched by topic key when read.
    topics TEXT NOT NULL DEFAULT '[]',
    count INTEGER NOT NULL CHECK (count > 0),
    enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    -- Why newsbot itself switched the digest off (NULL when an admin did, or when enabled).
    disabled_reason TEXT,
    -- Schedule times before this instant are never caught up (a new or changed schedule).
    effective_from INTEGER NOT NULL
);

-- The ledger: one row per server and local date, inserted (claimed) before anything is sent.
-- The primary key is what makes a digest post at most once per server and local date, even
-- across restarts, crashes and a second scheduler tick: a claim that finds the row refuses.
CREATE TABLE digest_runs (
    guild_id INTEGER NOT NULL,
    local_date TEXT NOT NULL,
    channel_id INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('claimed', 'sent', 'empty', 'skipped', 'failed')),
    scheduled_for INTEGER NOT NULL,
    claimed_at INTEGER NOT NULL,
    -- JSON array of arrays of story ids (bot.models.DigestRun.plan), fixed at claim time so
    -- that a resumed run sends exactly what was planned, not what is newest by then.
    plan TEXT NOT NULL DEFAULT '[]',
    -- Messages already sent, in order: a resumed run starts after them.
    sent_messages INTEGER NOT NULL DEFAULT 0 CHECK (sent_messages >= 0),
    finished_at INTEGER,
    detail TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (guild_id, local_date)
);

-- digest_runs_since() reads the last few days of every server at each scheduler tick: a range
-- of this index, already in the order it is returned, however long the ledger grows.
CREATE INDEX digest_runs_by_date ON digest_runs (local_date, guild_id);

-- unfinished_digest_runs() runs at startup to resume what a crash interrupted. Nearly every
-- row is finished, so a partial index holds only the few that matter.
CREATE INDEX digest_runs_unfinished ON digest_runs (local_date, guild_id)
    WHERE status = 'claimed';

-- The stories each channel has received, so that no digest repeats a story in a channel.
-- Keyed channel first: undelivered_stories() walks stories newest first and skips each one
-- delivered to the channel with one lookup in this key. Per channel rather than per server,
-- so that moving a digest to another channel starts that channel afresh.
CREATE TABLE deliveries (
    channel_id INTEGER NOT NULL,
    story_id INTEGER NOT NULL,
    delivered_at INTEGER NOT NULL,
    PRIMARY KEY (channel_id, story_id)
) WITHOUT ROWID;
