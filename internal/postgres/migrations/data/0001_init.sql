-- The data database of Custos. Every table owned by a tenant has
-- tenant_id leading its primary key and no foreign key, so that the
-- schema can be distributed by tenant_id (Citus: create_distributed_table
-- on tenant_id). Ids and hashes are bytea (random ids or keyed hashes,
-- never identifiers); values of personal data arrive sealed. Times used
-- for ordering are bigint nanoseconds since 1970 (UTC), like the embedded
-- store, so that ordering and equality are exact to the nanosecond.

CREATE TABLE tenants (
	tenant_id bytea PRIMARY KEY,
	record    bytea NOT NULL
);

CREATE TABLE events (
	tenant_id  bytea  NOT NULL,
	subject_id bytea  NOT NULL,
	at         bigint NOT NULL,
	msg        bytea  NOT NULL,
	value      bytea  NOT NULL,
	PRIMARY KEY (tenant_id, subject_id, at, msg)
);

CREATE TABLE profiles (
	tenant_id  bytea NOT NULL,
	subject_id bytea NOT NULL,
	value      bytea NOT NULL,
	PRIMARY KEY (tenant_id, subject_id)
);

-- seq is the record's uint64 sequence number with its top bit flipped,
-- so that bigint order is uint64 order.
CREATE TABLE consents (
	tenant_id  bytea  NOT NULL,
	subject_id bytea  NOT NULL,
	at         bigint NOT NULL,
	seq        bigint NOT NULL,
	value      bytea  NOT NULL,
	PRIMARY KEY (tenant_id, subject_id, at, seq)
);

CREATE TABLE sends (
	tenant_id  bytea  NOT NULL,
	subject_id bytea  NOT NULL,
	at         bigint NOT NULL,
	campaign   text   COLLATE "C" NOT NULL,
	value      bytea  NOT NULL,
	PRIMARY KEY (tenant_id, subject_id, at, campaign)
);

-- identifiers is the identifier index: keyed hash -> subject.
CREATE TABLE identifiers (
	tenant_id  bytea NOT NULL,
	hash       bytea NOT NULL,
	subject_id bytea NOT NULL,
	PRIMARY KEY (tenant_id, hash)
);

-- seen holds deduplication records; its primary key is the unique
-- constraint that makes a messageId stored once across nodes.
CREATE TABLE seen (
	tenant_id  bytea  NOT NULL,
	msg        bytea  NOT NULL,
	subject_id bytea  NOT NULL,
	at         bigint NOT NULL,
	PRIMARY KEY (tenant_id, msg)
);

CREATE TABLE flags (
	tenant_id  bytea NOT NULL,
	subject_id bytea NOT NULL,
	flags      bytea NOT NULL,
	PRIMARY KEY (tenant_id, subject_id)
);

CREATE TABLE tombstones (
	tenant_id bytea NOT NULL,
	hash      bytea NOT NULL,
	tombstone bytea NOT NULL,
	PRIMARY KEY (tenant_id, hash)
);

CREATE TABLE merges (
	tenant_id    bytea NOT NULL,
	from_subject bytea NOT NULL,
	into_subject bytea NOT NULL,
	PRIMARY KEY (tenant_id, from_subject)
);

-- tenant_records holds a tenant's one-of-a-kind records ('observed',
-- 'retention').
CREATE TABLE tenant_records (
	tenant_id bytea NOT NULL,
	kind      text  COLLATE "C" NOT NULL,
	value     bytea NOT NULL,
	PRIMARY KEY (tenant_id, kind)
);

CREATE TABLE requests (
	tenant_id bytea NOT NULL,
	id        text  COLLATE "C" NOT NULL,
	record    bytea NOT NULL,
	PRIMARY KEY (tenant_id, id)
);

CREATE TABLE deliveries (
	tenant_id  bytea   NOT NULL,
	id         text    COLLATE "C" NOT NULL,
	request_id text    COLLATE "C" NOT NULL,
	created_at bigint  NOT NULL,
	next_at    bigint  NOT NULL,
	final      boolean NOT NULL,
	record     bytea   NOT NULL,
	sealed     bytea   NOT NULL,
	PRIMARY KEY (tenant_id, id)
);
-- The due index: what the sender looks for, oldest first.
CREATE INDEX deliveries_due ON deliveries (next_at, tenant_id, id) WHERE NOT final;
CREATE INDEX deliveries_request ON deliveries (tenant_id, request_id);

CREATE TABLE recipients (
	tenant_id  bytea  NOT NULL,
	id         text   COLLATE "C" NOT NULL,
	created_at bigint NOT NULL,
	record     bytea  NOT NULL,
	PRIMARY KEY (tenant_id, id)
);

CREATE TABLE campaigns (
	tenant_id bytea NOT NULL,
	id        text  COLLATE "C" NOT NULL,
	record    bytea NOT NULL,
	PRIMARY KEY (tenant_id, id)
);

-- incidents are the operator's records, of no tenant (a reference table
-- on Citus); notifications are each tenant's.
CREATE TABLE incidents (
	id     text  COLLATE "C" PRIMARY KEY,
	record bytea NOT NULL
);

CREATE TABLE notifications (
	tenant_id bytea NOT NULL,
	incident  text  COLLATE "C" NOT NULL,
	record    bytea NOT NULL,
	PRIMARY KEY (tenant_id, incident)
);

-- audit outlives its tenant: DeleteTenant leaves it. seq is flipped like
-- consents.seq. The zero tenant id is the operator's chain.
CREATE TABLE audit (
	tenant_id bytea  NOT NULL,
	seq       bigint NOT NULL,
	entry     bytea  NOT NULL,
	PRIMARY KEY (tenant_id, seq)
);
