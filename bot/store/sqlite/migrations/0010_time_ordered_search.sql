-- The search index keyed by publication order, so that "newest first, first page" of a word
-- search reads only the page: FTS5 walks a word's matches in rowid order and stops at the
-- LIMIT, and a dense-ish, time-ordered rowid also makes its doclists several times smaller
-- than hashed story ids did (rowids are stored as deltas).
--
-- stories.search_key = published_at * 65536 + slot, the slot being the story's rank by id
-- among the stories published in the same second. Ordering by it is ordering by
-- (published_at, id), the order of every other newest-first read. A sparse key rather than a
-- renumbering of everything: a story published before existing ones takes the free number of
-- its own second, and only the stories of that second are renumbered (and re-indexed), by
-- bot.store.sqlite.seeds, in the reload transaction. 65,536 stories in one second is the limit.
ALTER TABLE stories ADD COLUMN search_key INTEGER NOT NULL DEFAULT 0;

UPDATE stories SET search_key = ranked.search_key
FROM (
    SELECT id, published_at * 65536 + row_number() OVER (PARTITION BY published_at ORDER BY id) - 1
        AS search_key
    FROM stories
) AS ranked
WHERE stories.id = ranked.id;

-- Joins a search match back to its story. Not UNIQUE: a reload renumbering one second's
-- stories moves keys one row at a time (the keys are unique once it is done).
CREATE INDEX stories_by_search_key ON stories (search_key);

DROP TABLE stories_fts;

CREATE VIRTUAL TABLE stories_fts USING fts5 (
    title,
    excerpt,
    content = 'stories',
    content_rowid = 'search_key',
    tokenize = "unicode61 remove_diacritics 2"
);

INSERT INTO stories_fts (stories_fts, rank) VALUES ('hashsize', 8388608);

-- In rowid order, so that FTS5 writes few, large segments.
INSERT INTO stories_fts (rowid, title, excerpt)
SELECT search_key, title, excerpt FROM stories ORDER BY search_key;
