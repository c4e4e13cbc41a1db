-- Shard leases, as on SQLite (migration 0007 there): one row per shard of a shard count, held
-- by the newsbot process that runs it. bot/store/postgres/shard_leases.py takes, renews and
-- releases them.
CREATE TABLE shard_leases (
    shard_count INTEGER NOT NULL CHECK (shard_count > 0),
    shard_id INTEGER NOT NULL CHECK (shard_id >= 0 AND shard_id < shard_count),
    owner TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    acquired_at BIGINT NOT NULL,
    renewed_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (shard_count, shard_id)
);

CREATE INDEX shard_leases_by_owner ON shard_leases (owner);
