-- The whole schema of the PostgreSQL store, as SQLite's migrations 0001-0006 leave theirs: the
-- same tables, keys and checks, in PostgreSQL's types.
--
-- Instants are unix seconds, UTC (BIGINT), as on SQLite: the two backends share one codec
-- (bot/store/sqlite/codec.py) and round instants the same way. Ids are BIGINT: story ids are
-- signed 64-bit hashes, Discord ids fit below 2^63. JSON is JSONB. No triggers and no foreign
-- keys, as on SQLite: every write goes through the store, which keeps the denormalised
-- columns (topic counts, story_count, links) in step in bulk.

-- Word search folds accents the way SQLite's unicode61 tokenizer with remove_diacritics does.
CREATE EXTENSION IF NOT EXISTS unaccent;

-- unaccent() is only STABLE (its dictionary could change), so it cannot feed an index or a
-- generated column; this wrapper names the dictionary explicitly and promises the result only
-- depends on the text. A SQL-standard body (RETURN) binds the function and the dictionary now,
-- wherever the extension lives, rather than through each caller's search_path. Everything that
-- is not a letter or digit becomes a space, so that words split where SQLite's tokenizer splits
-- them ("example.com" is two words, not a host name). unaccent folds a little more than SQLite
-- does (ß to ss, æ to ae, ligatures): a search finds those spellings too.
CREATE FUNCTION newsbot_search_text(text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN regexp_replace(
        lower(unaccent('unaccent'::regdictionary, $1)), '[^[:alnum:]]+', ' ', 'g'
    );

-- The store's own bookkeeping, one row.
CREATE TABLE meta (
    id BOOLEAN PRIMARY KEY DEFAULT true CHECK (id),
    seed_generation BIGINT NOT NULL DEFAULT 0,
    -- Kept to the microsecond with its instant, as SQLite keeps the ISO text.
    reloaded_at TIMESTAMPTZ,
    seed_folder TEXT NOT NULL DEFAULT '',
    story_count BIGINT NOT NULL DEFAULT 0 CHECK (story_count >= 0)
);

INSERT INTO meta DEFAULT VALUES;

CREATE TABLE stories (
    id BIGINT PRIMARY KEY,
    url TEXT NOT NULL,
    title TEXT NOT NULL,
    excerpt TEXT NOT NULL,
    published_at BIGINT NOT NULL,
    provider_name TEXT,
    provider_domain TEXT,
    quality INTEGER,
    heat INTEGER,
    source_path TEXT NOT NULL,
    -- Topics as given, images, related, and the fields nothing filters or sorts on.
    extra JSONB NOT NULL,
    -- Every word of the title and excerpt, accents and case folded: what latest(query=...)
    -- matches by prefix. Generated, so that it can never disagree with the text.
    search TSVECTOR GENERATED ALWAYS AS (
        to_tsvector('simple', newsbot_search_text(title || ' ' || excerpt))
    ) STORED
);

-- latest() without a filter: a backwards index scan, in order, stopped by the LIMIT.
CREATE INDEX stories_by_published ON stories (published_at, id);
CREATE INDEX stories_search ON stories USING gin (search);
-- The planner walks stories_by_published and filters when it expects a search to match many
-- stories, and goes through stories_search when it expects few. Its guess for a word comes from
-- the most common words ANALYZE keeps: with the default list (1,000 words), a word in 10 of
-- 20,000 stories was guessed at 100 and walked for; with this one, at 10 and found by the index.
ALTER TABLE stories ALTER COLUMN search SET STATISTICS 1000;

-- A topic row outlives its last story (story_count 0), as on SQLite.
CREATE TABLE topics (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    story_count BIGINT NOT NULL DEFAULT 0 CHECK (story_count >= 0)
);

-- topics() lists by count, then by name ignoring ASCII case (SQLite's NOCASE).
CREATE INDEX topics_by_count ON topics (story_count DESC, (lower(name) COLLATE "C"), id);

-- One topic's stories are a contiguous, already ordered range of this key.
CREATE TABLE story_topics (
    topic_id BIGINT NOT NULL,
    published_at BIGINT NOT NULL,
    story_id BIGINT NOT NULL,
    PRIMARY KEY (topic_id, published_at, story_id)
);

CREATE INDEX story_topics_by_story ON story_topics (story_id);

CREATE TABLE story_links (
    story_id BIGINT NOT NULL,
    linked_id BIGINT NOT NULL,
    PRIMARY KEY (story_id, linked_id)
);

CREATE INDEX story_links_by_linked ON story_links (linked_id);

CREATE TABLE seed_files (
    path TEXT PRIMARY KEY,
    size BIGINT NOT NULL,
    mtime_ns BIGINT NOT NULL,
    -- The content hash; named as on SQLite, so that the codec maps both.
    digest TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('loaded', 'duplicate', 'rejected')),
    story_id BIGINT,
    rank JSONB NOT NULL DEFAULT '[]',
    error TEXT
);

-- /seeds status lists the rejected files without reading the whole index.
CREATE INDEX seed_files_rejected ON seed_files (path) WHERE status = 'rejected';

CREATE TABLE state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE digest_settings (
    guild_id BIGINT PRIMARY KEY,
    channel_id BIGINT NOT NULL,
    local_time TEXT NOT NULL CHECK (local_time ~ '^[0-2][0-9]:[0-5][0-9]$'),
    timezone TEXT NOT NULL,
    topics JSONB NOT NULL DEFAULT '[]',
    count INTEGER NOT NULL CHECK (count > 0),
    enabled BOOLEAN NOT NULL,
    disabled_reason TEXT,
    effective_from BIGINT NOT NULL,
    max_age BIGINT CHECK (max_age >= 0)
);

CREATE TABLE digest_runs (
    guild_id BIGINT NOT NULL,
    local_date DATE NOT NULL,
    channel_id BIGINT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('claimed', 'sent', 'empty', 'skipped', 'failed')),
    scheduled_for BIGINT NOT NULL,
    claimed_at BIGINT NOT NULL,
    plan JSONB NOT NULL DEFAULT '[]',
    sent_messages INTEGER NOT NULL DEFAULT 0 CHECK (sent_messages >= 0),
    finished_at BIGINT,
    detail TEXT NOT NULL DEFAULT '',
    attempt INTEGER NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    owner TEXT NOT NULL DEFAULT '',
    lease_until BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (guild_id, local_date)
);

CREATE INDEX digest_runs_by_date ON digest_runs (local_date, guild_id);

CREATE TABLE digest_messages (
    guild_id BIGINT NOT NULL,
    local_date DATE NOT NULL,
    attempt INTEGER NOT NULL,
    idx INTEGER NOT NULL CHECK (idx >= 0),
    nonce TEXT NOT NULL,
    embeds JSONB NOT NULL,
    story_ids JSONB NOT NULL DEFAULT '[]',
    attempted_at BIGINT,
    message_id BIGINT,
    sent_at BIGINT,
    PRIMARY KEY (guild_id, local_date, attempt, idx)
);

CREATE TABLE deliveries (
    channel_id BIGINT NOT NULL,
    story_id BIGINT NOT NULL,
    delivered_at BIGINT NOT NULL,
    PRIMARY KEY (channel_id, story_id)
);

-- The instance lease, as on SQLite (migration 0006 there): at most one row.
CREATE TABLE instance_lease (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    owner TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    acquired_at BIGINT NOT NULL,
    renewed_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
