package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/custos-dev/custos"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// KeyStore is a custos.KeyStore in a PostgreSQL database of its own,
// apart from the data so that keys and data are backed up and retained
// separately. Several KeyStores (on several nodes) may share one database.
//
// The master key check (a meta record the keyring writes on first use)
// lives here like every meta record, so a node started with another
// master key than the one the database was written with is refused by
// keyring.New before it reads or writes anything.
type KeyStore struct {
	pool *pgxpool.Pool

	closeOnce sync.Once
	// A shred kicks the purge loop, which vacuums the key tables a
	// purgeDelay later, so shreds arriving together share one VACUUM.
	purgeKick    chan struct{}
	purgeStop    chan struct{}
	purgeStopped chan struct{}
}

// purgeDelay bounds how long the dead row of a shredded key stays in the
// table before VACUUM removes it.
const purgeDelay = time.Second

var _ custos.KeyStore = (*KeyStore)(nil)

// OpenKeyStore connects to the key database at rawURL and applies the
// migrations it lacks. It refuses Custos's data database: the keys must
// live in a separate one.
func OpenKeyStore(ctx context.Context, rawURL string, o Options) (*KeyStore, error) {
	pool, err := connect(ctx, rawURL, roleKeys, o)
	if err != nil {
		return nil, err
	}
	ks := &KeyStore{pool: pool, purgeKick: make(chan struct{}, 1), purgeStop: make(chan struct{}), purgeStopped: make(chan struct{})}
	go ks.purgeLoop()
	return ks, nil
}

func (ks *KeyStore) purgeLoop() {
	defer close(ks.purgeStopped)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for {
		select {
		case <-ks.purgeStop:
			return
		case <-ks.purgeKick:
		}
		select {
		case <-ks.purgeStop:
			return
		case <-time.After(purgeDelay):
		}
		// A failed vacuum is retried at the next shred; the key is already
		// unreadable, only its dead row waits.
		_ = ks.Purge(ctx)
	}
}

// Close closes the connection pool. It is safe to call more than once.
func (ks *KeyStore) Close() error {
	ks.closeOnce.Do(func() {
		close(ks.purgeStop)
		<-ks.purgeStopped
		ks.pool.Close()
	})
	return nil
}

// Ping checks that the database answers (for readiness probes).
func (ks *KeyStore) Ping(ctx context.Context) error {
	return dbError("ping the key database", ks.pool.Ping(ctx))
}

// Stats returns the connection pool's state.
func (ks *KeyStore) Stats() PoolStats { return poolStats(ks.pool) }

// Meta returns the meta record name, or custos.ErrNotFound.
func (ks *KeyStore) Meta(ctx context.Context, name string) ([]byte, error) {
	var v []byte
	if err := ks.pool.QueryRow(ctx, "SELECT value FROM meta WHERE name = $1", name).Scan(&v); err != nil {
		return nil, notFound(fmt.Sprintf("key store: meta %q", name), err)
	}
	return nz(v), nil
}

// TenantKeys returns every wrapped tenant key.
func (ks *KeyStore) TenantKeys(ctx context.Context) (map[custos.TenantID][]byte, error) {
	rows, err := ks.pool.Query(ctx, "SELECT tenant_id, wrapped FROM tenant_keys")
	if err != nil {
		return nil, dbError("key store: tenant keys", err)
	}
	defer rows.Close()
	keys := make(map[custos.TenantID][]byte)
	for rows.Next() {
		var tb, v []byte
		if err := rows.Scan(&tb, &v); err != nil {
			return nil, dbError("key store: tenant keys", err)
		}
		id, err := id16(tb, "tenant key id")
		if err != nil {
			return nil, fmt.Errorf("key store: %w", err)
		}
		keys[custos.TenantID(id)] = v
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("key store: tenant keys", err)
	}
	return keys, nil
}

// PutTenantKeys stores wrapped tenant keys and meta records in one
// transaction: all of them or none.
func (ks *KeyStore) PutTenantKeys(ctx context.Context, keys map[custos.TenantID][]byte, meta map[string][]byte) error {
	if len(keys) == 0 && len(meta) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for name, v := range meta {
		if name == "" {
			return &custos.Error{Code: custos.Internal, Message: "key store: empty meta record name"}
		}
		b.Queue("INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value", name, nz(v))
	}
	for t, v := range keys {
		b.Queue("INSERT INTO tenant_keys (tenant_id, wrapped) VALUES ($1, $2) ON CONFLICT (tenant_id) DO UPDATE SET wrapped = excluded.wrapped", t[:], nz(v))
	}
	return dbError("key store: put tenant keys", ks.pool.SendBatch(ctx, b).Close())
}

// DeleteTenantKey destroys a tenant key, and with it every subject key of
// the tenant (useless without the tenant key that wraps them), in one
// transaction, then vacuums the tables.
func (ks *KeyStore) DeleteTenantKey(ctx context.Context, t custos.TenantID) error {
	b := &pgx.Batch{}
	b.Queue("DELETE FROM tenant_keys WHERE tenant_id = $1", t[:])
	b.Queue("DELETE FROM subject_keys WHERE tenant_id = $1", t[:])
	if err := ks.pool.SendBatch(ctx, b).Close(); err != nil {
		return dbError(fmt.Sprintf("key store: delete tenant key %s", t), err)
	}
	return ks.Purge(ctx)
}

// SubjectKey returns a wrapped subject key, custos.ErrNotFound if there
// never was one, or custos.ErrShredded if it was destroyed.
func (ks *KeyStore) SubjectKey(ctx context.Context, t custos.TenantID, s custos.SubjectID) ([]byte, error) {
	var v []byte
	var shredded bool
	err := ks.pool.QueryRow(ctx, "SELECT wrapped, shredded FROM subject_keys WHERE tenant_id = $1 AND subject_id = $2", t[:], s[:]).Scan(&v, &shredded)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, custos.ErrNotFound
	case err != nil:
		return nil, dbError(fmt.Sprintf("key store: subject key %s/%s", t, s), err)
	case shredded:
		return nil, custos.ErrShredded
	}
	return v, nil
}

// SubjectKeys calls fn for the tenant's live subject keys from from to
// to, in subject order, a page at a time.
func (ks *KeyStore) SubjectKeys(ctx context.Context, t custos.TenantID, from, to custos.SubjectID, fn func(custos.SubjectID, []byte) (bool, error)) error {
	lo, op := from[:], ">="
	for {
		rows, err := ks.pool.Query(ctx, fmt.Sprintf(`SELECT subject_id, wrapped FROM subject_keys
			WHERE tenant_id = $1 AND subject_id %s $2 AND subject_id <= $3 AND NOT shredded
			ORDER BY subject_id LIMIT %d`, op, pageSize), t[:], lo, to[:])
		if err != nil {
			return dbError("key store: subject keys", err)
		}
		type kv struct {
			s custos.SubjectID
			v []byte
		}
		var page []kv
		for rows.Next() {
			var sb, v []byte
			if err := rows.Scan(&sb, &v); err != nil {
				rows.Close()
				return dbError("key store: subject keys", err)
			}
			id, err := id16(sb, "subject key id")
			if err != nil {
				rows.Close()
				return fmt.Errorf("key store: %w", err)
			}
			page = append(page, kv{custos.SubjectID(id), v})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return dbError("key store: subject keys", err)
		}
		for _, x := range page {
			more, err := fn(x.s, x.v)
			if err != nil || !more {
				return err
			}
		}
		if len(page) < pageSize {
			return nil
		}
		last := page[len(page)-1].s
		lo, op = last[:], ">"
	}
}

// PutSubjectKey stores a wrapped subject key; it returns after the commit,
// which is durable, so wait has nothing left to do. A shredded key is
// never replaced: the upsert's condition is checked under the row's lock,
// so a put racing a shred on another node either lands before it (and is
// shredded) or is refused with custos.ErrShredded.
func (ks *KeyStore) PutSubjectKey(ctx context.Context, t custos.TenantID, s custos.SubjectID, wrapped []byte) (wait func() error, err error) {
	if len(wrapped) < 2 {
		return nil, &custos.Error{Code: custos.Internal, Message: "key store: wrapped subject key too short"}
	}
	tag, err := ks.pool.Exec(ctx, `INSERT INTO subject_keys (tenant_id, subject_id, wrapped) VALUES ($1, $2, $3)
		ON CONFLICT (tenant_id, subject_id) DO UPDATE SET wrapped = excluded.wrapped WHERE NOT subject_keys.shredded`,
		t[:], s[:], wrapped)
	if err != nil {
		return nil, dbError(fmt.Sprintf("key store: put subject key %s/%s", t, s), err)
	}
	if tag.RowsAffected() == 0 {
		return nil, custos.ErrShredded
	}
	return func() error { return nil }, nil
}

// ShredSubjectKey replaces a subject key by the shredded marker, durably,
// whether or not a key existed. The old row version stays in the table
// as a dead tuple until vacuumed: a background Purge runs about a second
// after a shred.
func (ks *KeyStore) ShredSubjectKey(ctx context.Context, t custos.TenantID, s custos.SubjectID) error {
	_, err := ks.pool.Exec(ctx, `INSERT INTO subject_keys (tenant_id, subject_id, wrapped, shredded) VALUES ($1, $2, NULL, true)
		ON CONFLICT (tenant_id, subject_id) DO UPDATE SET wrapped = NULL, shredded = true`, t[:], s[:])
	if err != nil {
		return dbError(fmt.Sprintf("key store: shred subject key %s/%s", t, s), err)
	}
	select {
	case ks.purgeKick <- struct{}{}:
	default:
	}
	return nil
}

// Purge vacuums the key tables, removing the dead row versions that held
// shredded or deleted keys. See docs/postgres.md for the physical bound.
func (ks *KeyStore) Purge(ctx context.Context) error {
	for _, tbl := range []string{"subject_keys", "tenant_keys"} {
		if _, err := ks.pool.Exec(ctx, "VACUUM "+tbl); err != nil {
			return dbError("key store: vacuum "+tbl, err)
		}
	}
	return nil
}
