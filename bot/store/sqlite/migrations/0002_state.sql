-- Small values the bot keeps between runs, such as the hash of the last command sync.
-- Separate from meta, which belongs to the store's own bookkeeping.
CREATE TABLE state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
