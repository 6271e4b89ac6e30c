package postgres

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/custos-dev/custos"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

var _ custos.SessionStore = (*Store)(nil)

const sessionColumns = "hash, holder, user_name, how, ip, agent, created_at, expires_at, sealed"

func scanSession(t custos.TenantID, kind string, row pgx.Row) (*custos.Session, error) {
	var (
		hash             []byte
		created, expires int64
	)
	s := &custos.Session{Tenant: t, Kind: kind}
	if err := row.Scan(&hash, &s.Holder, &s.User, &s.How, &s.IP, &s.Agent, &created, &expires, &s.Sealed); err != nil {
		return nil, err
	}
	copy(s.Hash[:], hash)
	s.Created, s.Expires = fromNanos(created), fromNanos(expires)
	return s, nil
}

// CreateSession stores a new session; Conflict if it exists.
func (s *Store) CreateSession(ctx context.Context, ss *custos.Session) error {
	tag, err := s.pool.Exec(ctx, `INSERT INTO sessions (tenant_id, kind, `+sessionColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING`,
		ss.Tenant[:], ss.Kind, ss.Hash[:], ss.Holder, ss.User, ss.How, ss.IP, ss.Agent, nanos(ss.Created), nanos(ss.Expires), ss.Sealed)
	if err != nil {
		return dbError("store session", err)
	}
	if tag.RowsAffected() == 0 {
		return custos.Errorf(custos.Conflict, "the session exists")
	}
	return nil
}

// CreateSessionBelow stores a new session if its holder has fewer than
// limit live ones of its kind. The count and the insert are one
// SERIALIZABLE transaction, so that of transactions racing on several
// nodes, each of which counted before the others inserted, all but one
// fail to commit (SQLSTATE 40001) and count again. Portable: no advisory
// lock, which CockroachDB lacks.
func (s *Store) CreateSessionBelow(ctx context.Context, ss *custos.Session, limit int, now time.Time) (bool, error) {
	const tries = 20
	for try := 1; ; try++ {
		stored := false
		err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.Serializable}, func(tx pgx.Tx) error {
			var n int64
			if err := tx.QueryRow(ctx, "SELECT count(*) FROM sessions WHERE tenant_id = $1 AND kind = $2 AND holder = $3 AND expires_at >= $4",
				ss.Tenant[:], ss.Kind, ss.Holder, nanos(now)).Scan(&n); err != nil {
				return err
			}
			if n >= int64(limit) {
				return nil
			}
			tag, err := tx.Exec(ctx, `INSERT INTO sessions (tenant_id, kind, `+sessionColumns+`)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING`,
				ss.Tenant[:], ss.Kind, ss.Hash[:], ss.Holder, ss.User, ss.How, ss.IP, ss.Agent, nanos(ss.Created), nanos(ss.Expires), ss.Sealed)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				return custos.Errorf(custos.Conflict, "the session exists")
			}
			stored = true
			return nil
		})
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "40001" && try < tries {
			time.Sleep(time.Duration(rand.N(try)+1) * time.Millisecond)
			continue
		}
		if err != nil {
			return false, dbError("store a counted session", err)
		}
		return stored, nil
	}
}

// Session returns a live session; an expired one is deleted.
func (s *Store) Session(ctx context.Context, t custos.TenantID, kind string, hash [32]byte, now time.Time) (*custos.Session, error) {
	ss, err := scanSession(t, kind, s.pool.QueryRow(ctx, "SELECT "+sessionColumns+
		" FROM sessions WHERE tenant_id = $1 AND kind = $2 AND hash = $3", t[:], kind, hash[:]))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, custos.ErrNotFound
	}
	if err != nil {
		return nil, dbError("read session", err)
	}
	if !ss.Live(now) {
		// Only the expired row: a session made meanwhile under the same
		// hash (impossible with random tokens) would not be touched.
		_, err := s.pool.Exec(ctx, "DELETE FROM sessions WHERE tenant_id = $1 AND kind = $2 AND hash = $3 AND expires_at < $4",
			t[:], kind, hash[:], nanos(now))
		if err != nil {
			return nil, dbError("delete expired session", err)
		}
		return nil, custos.ErrNotFound
	}
	return ss, nil
}

// UpdateSession replaces the sealed part of a live session.
func (s *Store) UpdateSession(ctx context.Context, t custos.TenantID, kind string, hash [32]byte, sealed []byte, now time.Time) error {
	tag, err := s.pool.Exec(ctx, "UPDATE sessions SET sealed = $4 WHERE tenant_id = $1 AND kind = $2 AND hash = $3 AND expires_at >= $5",
		t[:], kind, hash[:], sealed, nanos(now))
	if err != nil {
		return dbError("update session", err)
	}
	if tag.RowsAffected() == 0 {
		return custos.ErrNotFound
	}
	return nil
}

// TakeSession deletes a session and returns it if it was live: the
// DELETE ... RETURNING of one caller finds the row, any other none.
func (s *Store) TakeSession(ctx context.Context, t custos.TenantID, kind string, hash [32]byte, now time.Time) (*custos.Session, error) {
	ss, err := scanSession(t, kind, s.pool.QueryRow(ctx, "DELETE FROM sessions WHERE tenant_id = $1 AND kind = $2 AND hash = $3 RETURNING "+
		sessionColumns, t[:], kind, hash[:]))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, custos.ErrNotFound
	}
	if err != nil {
		return nil, dbError("take session", err)
	}
	if !ss.Live(now) {
		return nil, custos.ErrNotFound
	}
	return ss, nil
}

// DeleteSession ends a session.
func (s *Store) DeleteSession(ctx context.Context, t custos.TenantID, kind string, hash [32]byte) error {
	tag, err := s.pool.Exec(ctx, "DELETE FROM sessions WHERE tenant_id = $1 AND kind = $2 AND hash = $3", t[:], kind, hash[:])
	if err != nil {
		return dbError("delete session", err)
	}
	if tag.RowsAffected() == 0 {
		return custos.ErrNotFound
	}
	return nil
}

// DeleteHolderSessions ends every session of one kind and holder.
func (s *Store) DeleteHolderSessions(ctx context.Context, t custos.TenantID, kind, holder string) (int, error) {
	tag, err := s.pool.Exec(ctx, "DELETE FROM sessions WHERE tenant_id = $1 AND kind = $2 AND holder = $3", t[:], kind, holder)
	if err != nil {
		return 0, dbError("delete sessions", err)
	}
	return int(tag.RowsAffected()), nil
}

// CountHolderSessions counts the live sessions of one kind and holder,
// through the holder index.
func (s *Store) CountHolderSessions(ctx context.Context, t custos.TenantID, kind, holder string, now time.Time) (int, error) {
	var n int64
	err := s.pool.QueryRow(ctx, "SELECT count(*) FROM sessions WHERE tenant_id = $1 AND kind = $2 AND holder = $3 AND expires_at >= $4",
		t[:], kind, holder, nanos(now)).Scan(&n)
	if err != nil {
		return 0, dbError("count sessions", err)
	}
	return int(n), nil
}

// Sessions returns the tenant's live sessions of one kind, deleting the
// expired ones first.
func (s *Store) Sessions(ctx context.Context, t custos.TenantID, kind string, now time.Time) ([]*custos.Session, error) {
	if _, err := s.pool.Exec(ctx, "DELETE FROM sessions WHERE tenant_id = $1 AND kind = $2 AND expires_at < $3", t[:], kind, nanos(now)); err != nil {
		return nil, dbError("delete expired sessions", err)
	}
	rows, err := s.pool.Query(ctx, "SELECT "+sessionColumns+" FROM sessions WHERE tenant_id = $1 AND kind = $2 AND expires_at >= $3 ORDER BY created_at, hash",
		t[:], kind, nanos(now))
	if err != nil {
		return nil, dbError("read sessions", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*custos.Session, error) { return scanSession(t, kind, row) })
	if err != nil {
		return nil, dbError("read sessions", err)
	}
	return out, nil
}

// DeleteExpiredSessions deletes up to limit expired sessions of any
// tenant, found through the expiry index.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time, limit int) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE (tenant_id, kind, hash) IN
		(SELECT tenant_id, kind, hash FROM sessions WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)`, nanos(now), limit)
	if err != nil {
		return 0, dbError("delete expired sessions", err)
	}
	return int(tag.RowsAffected()), nil
}

// UseTOTPStep records a console user's TOTP step if it is later than the
// last one: the upsert's condition and write are one statement, so of two
// nodes checking one code, one wins.
func (s *Store) UseTOTPStep(ctx context.Context, t custos.TenantID, user string, step uint64) (bool, error) {
	if step > 1<<63-1 {
		return false, custos.Errorf(custos.Invalid, "TOTP step %d out of range", step)
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO totp_steps (tenant_id, user_name, step) VALUES ($1, $2, $3)
		ON CONFLICT (tenant_id, user_name) DO UPDATE SET step = excluded.step WHERE totp_steps.step < excluded.step`,
		t[:], user, int64(step))
	if err != nil {
		return false, dbError("store TOTP step", err)
	}
	return tag.RowsAffected() == 1, nil
}
