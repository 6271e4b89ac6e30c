package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/custos-dev/custos"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store is the PostgreSQL implementation of custos.Store. It is safe for
// concurrent use, and several Stores (on several nodes) may share one
// database.
type Store struct {
	pool *pgxpool.Pool
	// purgeInterval is the period of the purge passes (zero: none).
	purgeInterval time.Duration
}

var _ custos.Store = (*Store)(nil)

// Open connects to the data database at rawURL (a postgres:// URL) and
// applies the migrations it lacks. It refuses a database that is Custos's
// key database.
func Open(ctx context.Context, rawURL string, o Options) (*Store, error) {
	pool, err := connect(ctx, rawURL, roleData, o)
	if err != nil {
		return nil, err
	}
	return &Store{pool: pool, purgeInterval: o.PurgeInterval}, nil
}

// Close closes the connection pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Ping checks that the database answers (for readiness probes).
func (s *Store) Ping(ctx context.Context) error {
	// A connection the server closed is found dead only when used, and
	// the pool drops it then: the next is tried, up to the pool's size,
	// so that a database that is back is reported ready at once.
	var err error
	for range s.pool.Config().MaxConns + 1 {
		if err = s.pool.Ping(ctx); err == nil || ctx.Err() != nil {
			break
		}
	}
	return dbError("ping the data database", err)
}

// Stats returns the connection pool's state.
func (s *Store) Stats() PoolStats { return poolStats(s.pool) }

// nanos returns t as nanoseconds since 1970, clamped to what an int64
// holds (the zero time, year 1, becomes the smallest).
func nanos(t time.Time) int64 {
	switch {
	case t.Before(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// flipSeq maps a uint64 to an int64 of the same order.
func flipSeq(v uint64) int64   { return int64(v ^ (1 << 63)) }
func unflipSeq(v int64) uint64 { return uint64(v) ^ (1 << 63) }

// nz returns b, or an empty slice for nil: columns of values are NOT NULL.
func nz(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// notFound turns pgx.ErrNoRows into custos.ErrNotFound.
func notFound(what string, err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return custos.ErrNotFound
	}
	return dbError(what, err)
}

type tenantRecord struct {
	ID            custos.TenantID `json:"id"`
	Name          string          `json:"name"`
	Region        string          `json:"region"`
	CreatedAt     time.Time       `json:"created_at"`
	WriteKeyHash  []byte          `json:"write_key_hash"`
	SecretKeyHash []byte          `json:"secret_key_hash"`
	KeysRotatedAt time.Time       `json:"keys_rotated_at,omitzero"`
	Settings      custos.Settings `json:"settings"`
	// RateLimits are the operator's limits for the tenant, if any.
	RateLimits *custos.RateLimits `json:"rate_limits,omitempty"`
	// ConsoleUsers carry password hashes and sealed TOTP secrets.
	ConsoleUsers []custos.ConsoleUser `json:"console_users,omitempty"`
}

func encodeTenant(t *custos.Tenant) ([]byte, error) {
	b, err := json.Marshal(tenantRecord{
		ID: t.ID, Name: t.Name, Region: t.Region, CreatedAt: t.CreatedAt,
		WriteKeyHash: t.WriteKeyHash[:], SecretKeyHash: t.SecretKeyHash[:],
		KeysRotatedAt: t.KeysRotatedAt, Settings: t.Settings, RateLimits: t.RateLimits,
		ConsoleUsers: t.ConsoleUsers,
	})
	if err != nil {
		return nil, fmt.Errorf("encode tenant %s: %w", t.ID, err)
	}
	return b, nil
}

func decodeTenant(b []byte) (*custos.Tenant, error) {
	var r tenantRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode tenant record: %w", err)
	}
	t := &custos.Tenant{ID: r.ID, Name: r.Name, Region: r.Region, CreatedAt: r.CreatedAt, KeysRotatedAt: r.KeysRotatedAt, Settings: r.Settings, RateLimits: r.RateLimits,
		ConsoleUsers: r.ConsoleUsers}
	copy(t.WriteKeyHash[:], r.WriteKeyHash)
	copy(t.SecretKeyHash[:], r.SecretKeyHash)
	return t, nil
}

// CreateTenant stores a new tenant; Conflict if the id exists.
func (s *Store) CreateTenant(ctx context.Context, t *custos.Tenant) error {
	v, err := encodeTenant(t)
	if err != nil {
		return err
	}
	// Other nodes are told in the same statement, so only if it commits.
	tag, err := s.pool.Exec(ctx, `WITH ins AS (INSERT INTO tenants (tenant_id, record) VALUES ($1, $2) ON CONFLICT (tenant_id) DO NOTHING RETURNING tenant_id)
		SELECT pg_notify('`+changesChannel+`', 'tenants:' || encode(tenant_id, 'hex')) FROM ins`, t.ID[:], v)
	if err != nil {
		return dbError("create tenant", err)
	}
	if tag.RowsAffected() == 0 {
		return custos.Errorf(custos.Conflict, "tenant %s already exists", t.ID)
	}
	return nil
}

// UpdateTenant replaces an existing tenant; NotFound if absent.
func (s *Store) UpdateTenant(ctx context.Context, t *custos.Tenant) error {
	v, err := encodeTenant(t)
	if err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `WITH up AS (UPDATE tenants SET record = $2 WHERE tenant_id = $1 RETURNING tenant_id)
		SELECT pg_notify('`+changesChannel+`', 'tenants:' || encode(tenant_id, 'hex')) FROM up`, t.ID[:], v)
	if err != nil {
		return dbError("update tenant", err)
	}
	if tag.RowsAffected() == 0 {
		return custos.ErrNotFound
	}
	return nil
}

// Tenant returns one tenant, or custos.ErrNotFound.
func (s *Store) Tenant(ctx context.Context, id custos.TenantID) (*custos.Tenant, error) {
	var v []byte
	if err := s.pool.QueryRow(ctx, "SELECT record FROM tenants WHERE tenant_id = $1", id[:]).Scan(&v); err != nil {
		return nil, notFound("read tenant", err)
	}
	return decodeTenant(v)
}

// Tenants returns every tenant ordered by id.
func (s *Store) Tenants(ctx context.Context) ([]*custos.Tenant, error) {
	rows, err := s.pool.Query(ctx, "SELECT record FROM tenants ORDER BY tenant_id")
	if err != nil {
		return nil, dbError("list tenants", err)
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, dbError("list tenants", err)
	}
	ts := make([]*custos.Tenant, 0, len(vs))
	for _, v := range vs {
		t, err := decodeTenant(v)
		if err != nil {
			return nil, err
		}
		ts = append(ts, t)
	}
	return ts, nil
}

// tenantTables are the tables a tenant owns; DeleteTenant empties them of
// its rows. audit is not among them: the chain outlives its tenant.
var tenantTables = []string{
	"events", "profiles", "consents", "sends", "identifiers", "seen", "flags", "tombstones", "merges",
	"tenant_records", "requests", "deliveries", "recipients", "campaigns", "notifications", "gates", "sessions", "totp_steps", "leases",
}

// DeleteTenant removes a tenant and every row of its data in one
// transaction, then vacuums the tables so the dead rows' space is freed.
func (s *Store) DeleteTenant(ctx context.Context, id custos.TenantID) error {
	b := &pgx.Batch{}
	b.Queue("DELETE FROM tenants WHERE tenant_id = $1", id[:])
	for _, tbl := range tenantTables {
		b.Queue("DELETE FROM "+tbl+" WHERE tenant_id = $1", id[:])
	}
	b.Queue(sqlNotify(custos.ChangeTenants), id[:])
	var deleted int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		br := tx.SendBatch(ctx, b)
		tag, err := br.Exec()
		if err != nil {
			br.Close()
			return err
		}
		deleted = tag.RowsAffected()
		if deleted == 0 {
			br.Close()
			return custos.ErrNotFound
		}
		return br.Close()
	})
	if errors.Is(err, custos.ErrNotFound) {
		return custos.Errorf(custos.NotFound, "no tenant %s", id)
	}
	if err != nil {
		return dbError("delete tenant", err)
	}
	return s.vacuum(ctx, append([]string{"tenants"}, tenantTables...)...)
}

// vacuum runs VACUUM on the tables: dead rows left by deletions are
// removed from the table and its indexes and their space made reusable.
// See docs/postgres.md for what this does and does not bound.
func (s *Store) vacuum(ctx context.Context, tables ...string) error {
	for _, tbl := range tables {
		if _, err := s.pool.Exec(ctx, "VACUUM "+tbl); err != nil {
			return dbError("vacuum "+tbl, err)
		}
	}
	return nil
}
