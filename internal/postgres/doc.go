// Package postgres is the PostgreSQL store of Custos, on pgx v5. It
// implements custos.Store (Store) over one database and custos.KeyStore
// (KeyStore) over another, so that data and keys are backed up and
// retained apart, and several stateless `custos serve` nodes can share
// them: the database, not a node's memory, is the truth.
//
// The schema is versioned SQL embedded in the binary (migrations/data and
// migrations/keys), applied by Open under an advisory lock, so nodes
// starting at once apply each migration once. Every table a tenant owns
// has tenant_id leading its primary key and no foreign key, ready to be
// distributed by tenant on Citus. Each database records which role it
// plays (data or keys), so the two can never be the same database.
//
// An Apply is one transaction sent in one round trip (a pipelined batch,
// rows passed as arrays); it returns after the commit, which with
// synchronous_commit on is durable.
package postgres
