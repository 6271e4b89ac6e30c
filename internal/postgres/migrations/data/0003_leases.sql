-- leases: background work that must run on one node at a time (an
-- erasure's steps, a campaign run, the outbox...). A lease is held by
-- holder until expires_at, judged by the database's clock; a holder that
-- dies stops renewing, and another node takes the lease over once it has
-- expired. Cluster-wide leases have the zero tenant id.
CREATE TABLE leases (
	tenant_id  bytea       NOT NULL,
	name       text        COLLATE "C" NOT NULL,
	holder     text        NOT NULL,
	expires_at timestamptz NOT NULL,
	PRIMARY KEY (tenant_id, name)
);
