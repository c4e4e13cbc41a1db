-- Exactly once across crashes, database faults and several processes: a claimed digest keeps
-- the messages it will send, and who is sending it.

-- The process sending a claimed run (Store.owner) and until when (unix seconds) its claim
-- holds. Another process resumes the run only once the lease has expired, and only the owner
-- may record its messages.
ALTER TABLE digest_runs ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE digest_runs ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;

-- Each message of each attempt at a digest, written with the claim: the embeds as rendered
-- (JSON), the nonce and the stories it delivers. A resumed digest sends exactly these. Before
-- a send, attempted_at records that the message is being tried (kept from the first try of
-- the nonce); after it, message_id and sent_at record that it was posted. Kept after the
-- digest is finished: the ids of a digest's messages outlive it.
CREATE TABLE digest_messages (
    guild_id INTEGER NOT NULL,
    local_date TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    idx INTEGER NOT NULL CHECK (idx >= 0),
    nonce TEXT NOT NULL,
    embeds TEXT NOT NULL,
    story_ids TEXT NOT NULL DEFAULT '[]',
    attempted_at INTEGER,
    message_id INTEGER,
    sent_at INTEGER,
    PRIMARY KEY (guild_id, local_date, attempt, idx)
) WITHOUT ROWID;

-- A digest claimed by an older newsbot, which kept no messages, cannot be resumed exactly:
-- it is recorded as failed, and /digest now posts what it had not delivered yet (the stories
-- of the messages it did send count as delivered).
UPDATE digest_runs
SET status = 'failed', finished_at = CAST(strftime('%s', 'now') AS INTEGER),
    detail = 'interrupted while newsbot was being upgraded; /digest now posts the rest'
WHERE status = 'claimed';

-- Nothing reads claimed runs through it: the scheduler resumes them from the rows of the last
-- few days it reads anyway.
DROP INDEX digest_runs_unfinished;
