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
	ep   epochState

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
	kek, err := kekFor(o.MasterKey)
	if err != nil {
		return nil, err
	}
	pool, err := connect(ctx, rawURL, roleKeys, o)
	if err != nil {
		return nil, err
	}
	ks := &KeyStore{pool: pool, purgeKick: make(chan struct{}, 1), purgeStop: make(chan struct{}), purgeStopped: make(chan struct{})}
	ks.ep.kek = kek
	if err := ks.loadEpochs(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("key database %s: %w", Redact(rawURL), err)
	}
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
// never was one, or custos.ErrShredded if it was destroyed. A key sealed
// under an epoch this node does not know yet (or any more) makes it reload
// the epochs and read again.
func (ks *KeyStore) SubjectKey(ctx context.Context, t custos.TenantID, s custos.SubjectID) ([]byte, error) {
	for range 3 {
		var v []byte
		var shredded bool
		var e *int64
		err := ks.pool.QueryRow(ctx, "SELECT wrapped, shredded, epoch FROM subject_keys WHERE tenant_id = $1 AND subject_id = $2", t[:], s[:]).Scan(&v, &shredded, &e)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return nil, custos.ErrNotFound
		case err != nil:
			return nil, dbError(fmt.Sprintf("key store: subject key %s/%s", t, s), err)
		case shredded:
			return nil, custos.ErrShredded
		}
		w, ok, err := ks.unseal(t, s, e, v)
		if err != nil || ok {
			return w, err
		}
		if err := ks.loadEpochs(ctx); err != nil {
			return nil, err
		}
	}
	return nil, &custos.Error{Code: custos.Unavailable, Message: "the key epoch is being rotated, retry",
		Err: fmt.Errorf("key store: subject key %s/%s: its epoch changed three times while reading", t, s)}
}

// SubjectKeys calls fn for the tenant's live subject keys from from to
// to, in subject order, a page at a time.
func (ks *KeyStore) SubjectKeys(ctx context.Context, t custos.TenantID, from, to custos.SubjectID, fn func(custos.SubjectID, []byte) (bool, error)) error {
	lo, op := from[:], ">="
	for {
		rows, err := ks.pool.Query(ctx, fmt.Sprintf(`SELECT subject_id, wrapped, epoch FROM subject_keys
			WHERE tenant_id = $1 AND subject_id %s $2 AND subject_id <= $3 AND NOT shredded
			ORDER BY subject_id LIMIT %d`, op, pageSize), t[:], lo, to[:])
		if err != nil {
			return dbError("key store: subject keys", err)
		}
		type kv struct {
			s custos.SubjectID
			v []byte
			e *int64
		}
		var page []kv
		for rows.Next() {
			var sb, v []byte
			var e *int64
			if err := rows.Scan(&sb, &v, &e); err != nil {
				rows.Close()
				return dbError("key store: subject keys", err)
			}
			id, err := id16(sb, "subject key id")
			if err != nil {
				rows.Close()
				return fmt.Errorf("key store: %w", err)
			}
			page = append(page, kv{custos.SubjectID(id), v, e})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return dbError("key store: subject keys", err)
		}
		for _, x := range page {
			w, ok, err := ks.unseal(t, x.s, x.e, x.v)
			if err != nil {
				return err
			}
			if !ok {
				// Re-sealed by a rotation since the page was read: read it again.
				w, err = ks.SubjectKey(ctx, t, x.s)
				if errors.Is(err, custos.ErrShredded) || errors.Is(err, custos.ErrNotFound) {
					continue // shredded or deleted meanwhile
				}
				if err != nil {
					return err
				}
			}
			more, err := fn(x.s, w)
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

// PutSubjectKey stores a wrapped subject key, sealed under the current
// key epoch; it returns after the commit, which is durable, so wait has
// nothing left to do. A shredded key is never replaced: the upsert's
// condition is checked under the row's lock, so a put racing a shred on
// another node either lands before it (and is shredded) or is refused
// with custos.ErrShredded. The put locks its epoch's row (FOR KEY SHARE),
// so a rotation retiring that epoch waits for it and re-seals what it
// stored; a put finding its epoch retired reloads the epochs and retries.
func (ks *KeyStore) PutSubjectKey(ctx context.Context, t custos.TenantID, s custos.SubjectID, wrapped []byte) (wait func() error, err error) {
	if len(wrapped) < 2 {
		return nil, &custos.Error{Code: custos.Internal, Message: "key store: wrapped subject key too short"}
	}
	for range 3 {
		e, a := ks.currentEpoch()
		tag, err := ks.pool.Exec(ctx, `WITH e AS (SELECT epoch FROM key_epochs WHERE epoch = $4 FOR KEY SHARE)
			INSERT INTO subject_keys (tenant_id, subject_id, wrapped, epoch) SELECT $1, $2, $3, e.epoch FROM e
			ON CONFLICT (tenant_id, subject_id) DO UPDATE SET wrapped = excluded.wrapped, epoch = excluded.epoch WHERE NOT subject_keys.shredded`,
			t[:], s[:], sealWith(a, adSubject(t, s), wrapped), e)
		if err != nil {
			return nil, dbError(fmt.Sprintf("key store: put subject key %s/%s", t, s), err)
		}
		if tag.RowsAffected() == 1 {
			return func() error { return nil }, nil
		}
		// Nothing stored: the key is shredded, or epoch e was retired.
		var shredded bool
		err = ks.pool.QueryRow(ctx, "SELECT shredded FROM subject_keys WHERE tenant_id = $1 AND subject_id = $2", t[:], s[:]).Scan(&shredded)
		if err == nil && shredded {
			return nil, custos.ErrShredded
		}
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return nil, dbError(fmt.Sprintf("key store: put subject key %s/%s", t, s), err)
		}
		if err := ks.loadEpochs(ctx); err != nil {
			return nil, err
		}
	}
	return nil, &custos.Error{Code: custos.Unavailable, Message: "the key epoch is being rotated, retry",
		Err: fmt.Errorf("key store: put subject key %s/%s: its epoch was retired three times", t, s)}
}

// ShredSubjectKey replaces a subject key by the shredded marker, durably,
// whether or not a key existed. The old row version stays in the table
// as a dead tuple until vacuumed: a background Purge runs about a second
// after a shred.
func (ks *KeyStore) ShredSubjectKey(ctx context.Context, t custos.TenantID, s custos.SubjectID) error {
	_, err := ks.pool.Exec(ctx, `INSERT INTO subject_keys (tenant_id, subject_id, wrapped, shredded) VALUES ($1, $2, NULL, true)
		ON CONFLICT (tenant_id, subject_id) DO UPDATE SET wrapped = NULL, shredded = true, epoch = NULL`, t[:], s[:])
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
