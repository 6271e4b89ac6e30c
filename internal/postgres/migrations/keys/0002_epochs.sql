-- Key epochs (docs/postgres.md, "Key epochs"): every subject key is stored
-- sealed under the key of an epoch; the epoch is rotated on a schedule,
-- live subject keys are re-sealed under the new one and the old epoch key
-- is destroyed, so that a shredded subject key lingering in a dead tuple,
-- a WAL segment or a backup is useless once its epoch is gone.

-- wrapped is the epoch key sealed under a key derived from the master key.
-- The table holds one or two rows and is rewritten whole (VACUUM FULL)
-- after each rotation, so an old epoch key survives in no page of it.
CREATE TABLE key_epochs (
	epoch      bigint      PRIMARY KEY,
	wrapped    bytea       NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);

-- The epoch a subject key is sealed under; NULL for a shredded key and for
-- keys stored before this migration (plain wrapped keys, sealed at the
-- first rotation).
ALTER TABLE subject_keys ADD COLUMN epoch bigint;
