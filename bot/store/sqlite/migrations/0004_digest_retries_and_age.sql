-- A digest that failed, was skipped or found nothing new can be posted again with /digest now,
-- and a server can leave out stories older than a maximum age.

-- Which try at the date this row is: 0 for the first, one more each time /digest now claims
-- the date again. Message nonces include it, so that Discord's de-duplication of the nonces
-- of an earlier, failed try never swallows the messages of a later one.
ALTER TABLE digest_runs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0 CHECK (attempt >= 0);

-- The oldest story a digest may carry, as an age in seconds: NULL follows the configured
-- default (digest.max_age_days), 0 means no limit for this server.
ALTER TABLE digest_settings ADD COLUMN max_age INTEGER CHECK (max_age >= 0);
