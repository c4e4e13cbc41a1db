-- Initial schema of the SQLite store (the modules of bot/store/sqlite/ own every query against it).
--
-- Built so that the hot reads stay index range scans at a million stories: counts are
-- stored and adjusted by each reload instead of being recomputed, and the nested parts of a
-- story live in one JSON column that is decoded only for returned rows and never queried.
--
-- No triggers and no foreign keys: all writes go through SqliteStore.apply_reload, which
-- keeps topic rows, links, the search index and the counts in step in bulk. Per-row triggers
-- and cascades made a 20,000-story reload about twice as slow (FTS5 writes issued from a
-- trigger were measured ~6x slower than the same writes issued directly).

-- Scalar bookkeeping: seed_generation, reloaded_at, seed_folder and story_count. `value` has
-- no declared type so that counters stay integers and the others stay text.
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value
) WITHOUT ROWID;

INSERT INTO meta (key, value) VALUES
    ('seed_generation', 0),
    ('reloaded_at', NULL),
    ('seed_folder', ''),
    ('story_count', 0);

-- Story.id is already a stable 63-bit hash of the canonical URL, so it is the rowid itself.
CREATE TABLE stories (
    id INTEGER PRIMARY KEY,
    url TEXT NOT NULL,
    title TEXT NOT NULL,
    excerpt TEXT NOT NULL,
    -- Unix seconds, UTC: integers sort and compare without parsing.
    published_at INTEGER NOT NULL,
    -- Both NULL when the story has no provider.
    provider_name TEXT,
    provider_domain TEXT,
    quality INTEGER,
    heat INTEGER,
    -- The seed file the story now comes from, relative to meta.seed_folder.
    source_path TEXT NOT NULL,
    -- JSON: topics as given, images, related, and the fields nothing filters or sorts on.
    extra TEXT NOT NULL
);

-- Serves latest() without a filter as a backwards index scan, in order, with no sort.
CREATE INDEX stories_by_published ON stories (published_at, id);

-- A topic row outlives its last story (story_count 0) so that a reload which replaces that
-- story does not churn topic ids; readers skip topics with no stories.
CREATE TABLE topics (
    id INTEGER PRIMARY KEY,
    -- bot.models.topic_key of the name: what makes two spellings one topic.
    key TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    story_count INTEGER NOT NULL DEFAULT 0 CHECK (story_count >= 0)
);

-- topics() lists by count, then name: keeping that order in an index avoids a sort.
CREATE INDEX topics_by_count ON topics (story_count DESC, name COLLATE NOCASE);

-- published_at is copied from the story so that one topic's stories are a contiguous,
-- already ordered range of this primary key: latest(topic=...) needs no sort and no lookup
-- besides the returned rows.
CREATE TABLE story_topics (
    topic_id INTEGER NOT NULL,
    published_at INTEGER NOT NULL,
    story_id INTEGER NOT NULL,
    PRIMARY KEY (topic_id, published_at, story_id)
) WITHOUT ROWID;

-- Finds a story's topic rows when it is deleted or replaced.
CREATE INDEX story_topics_by_story ON story_topics (story_id);

-- A story's related links, by the id each link would have as a story. linked_id is not a
-- foreign key: the linked story may never be loaded, and readers join to check it.
CREATE TABLE story_links (
    story_id INTEGER NOT NULL,
    linked_id INTEGER NOT NULL,
    PRIMARY KEY (story_id, linked_id)
) WITHOUT ROWID;

-- Finds links pointing at a story (the other direction of linked_stories()).
CREATE INDEX story_links_by_linked ON story_links (linked_id);

-- Full-text search over title and excerpt. External content: the text is stored once, in
-- stories; the store writes the index, in rowid order, as it writes stories.
CREATE VIRTUAL TABLE stories_fts USING fts5 (
    title,
    excerpt,
    content = 'stories',
    content_rowid = 'id',
    tokenize = "unicode61 remove_diacritics 2"
);

-- FTS5 buffers new index entries in memory and writes a segment each time the buffer fills
-- (1 MB by default); 8 MB lets one large reload become a few segments instead of dozens.
INSERT INTO stories_fts (stories_fts, rank) VALUES ('hashsize', 8388608);

-- What the store remembers about each seed file (bot.store.base.SeedFileRecord).
CREATE TABLE seed_files (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    digest TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('loaded', 'duplicate', 'rejected')),
    story_id INTEGER,
    -- JSON array of integers.
    rank TEXT NOT NULL DEFAULT '[]',
    error TEXT
) WITHOUT ROWID;
