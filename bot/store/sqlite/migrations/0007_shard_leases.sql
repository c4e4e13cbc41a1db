-- Shard leases: which running newsbot runs which shard (one process per shard at most, so that
-- no digest of that shard's servers is posted twice). bot/store/sqlite/shard_leases.py takes,
-- renews and releases them.
--
-- One row per shard of a shard count, held by a process started with discord.shard_ids. As
-- for the instance lease (0006): a row whose expires_at has passed is free to take; instants
-- are unix seconds, UTC; `owner` is the holder's store owner (host:pid:random), host and pid
-- name it in a refusal and tell a dead holder on this host from a live one.
CREATE TABLE shard_leases (
    shard_count INTEGER NOT NULL CHECK (shard_count > 0),
    shard_id INTEGER NOT NULL CHECK (shard_id >= 0 AND shard_id < shard_count),
    owner TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    acquired_at INTEGER NOT NULL,
    renewed_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (shard_count, shard_id)
);

CREATE INDEX shard_leases_by_owner ON shard_leases (owner);
