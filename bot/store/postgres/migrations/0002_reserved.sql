-- Reserved: the number of a migration on another line of development (shard leases), kept so
-- that the numbering stays contiguous. It changes nothing (a script of comments alone is an
-- empty query, which the driver cannot take).
SELECT 1;
