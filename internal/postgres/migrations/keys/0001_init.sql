-- The key database of Custos: wrapped keys only, in a database of its own
-- so that keys and data are backed up and retained apart.

-- meta holds small named records, e.g. the master key check (a reference
-- table on Citus: it belongs to no tenant).
CREATE TABLE meta (
	name  text  COLLATE "C" PRIMARY KEY,
	value bytea NOT NULL
);

CREATE TABLE tenant_keys (
	tenant_id bytea PRIMARY KEY,
	wrapped   bytea NOT NULL
);

-- A shredded subject key keeps its row, with wrapped NULL, so that a late
-- write cannot bring the subject back.
CREATE TABLE subject_keys (
	tenant_id  bytea   NOT NULL,
	subject_id bytea   NOT NULL,
	wrapped    bytea,
	shredded   boolean NOT NULL DEFAULT false,
	PRIMARY KEY (tenant_id, subject_id)
);
