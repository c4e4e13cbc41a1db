-- Task locks: one process at a time runs a task of newsbot's, such as a seed reload
-- ("seeds-reload") or a command sync ("command-sync"), whichever process of the database
-- starts it. One row per lock while it is held: its holder, when it started, and until when
-- it holds it (unix seconds), pushed on while the task runs (bot/store/leases.py).
-- IF NOT EXISTS: a database an older newsbot migrated again keeps its table.
CREATE TABLE IF NOT EXISTS task_locks (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
