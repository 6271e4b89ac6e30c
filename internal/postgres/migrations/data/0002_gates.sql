-- gates holds each tenant's gate generation: advanced by every write that
-- changes what ingestion admits (flags, tombstones, consents, merges), and
-- read under a row lock by every guarded write, so that a node whose
-- caches are older than the generation is refused instead of admitting a
-- message on stale beliefs (see custos.Guard).
CREATE TABLE gates (
	tenant_id  bytea  PRIMARY KEY,
	generation bigint NOT NULL
);
