-- The instance lease: which running newsbot may post from this database (one at most, so that
-- no digest is posted twice). bot/store/sqlite/lock.py takes, renews and releases it.
--
-- At most one row. A lease whose expires_at has passed is free to take; instants are unix
-- seconds, UTC, as in 0001. `owner` is the holder's store owner (host:pid:random), so that a
-- restarted process with a recycled pid is someone else; host and pid are for the refusal a
-- second newsbot prints, and for telling a dead holder on this host from a live one elsewhere.
CREATE TABLE instance_lease (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    owner TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    acquired_at INTEGER NOT NULL,
    renewed_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
