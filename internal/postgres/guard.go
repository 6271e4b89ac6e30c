package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/custos-dev/custos"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

var _ custos.GateStore = (*Store)(nil)

// Generation returns the tenant's gate generation.
func (s *Store) Generation(ctx context.Context, t custos.TenantID) (uint64, error) {
	var g int64
	err := s.pool.QueryRow(ctx, "SELECT generation FROM gates WHERE tenant_id = $1", t[:]).Scan(&g)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, dbError("read gate generation", err)
	}
	return uint64(g), nil
}

// sqlProfileBases locks the profiles a guarded Write replaces or deletes
// and returns the SHA-256 of each, to compare with what its author read.
// sqlCountEvents counts a subject's events, under the gate lock, for a
// merge that copied them.
const (
	sqlProfileBases = "SELECT subject_id, sha256(value) FROM profiles WHERE tenant_id = $1 AND subject_id = ANY($2::bytea[]) ORDER BY subject_id FOR UPDATE"
	sqlCountEvents  = "SELECT count(*) FROM events WHERE tenant_id = $1 AND subject_id = $2"
)

// errGenerationStale stops a guarded batch whose generation differed.
var errGenerationStale = errors.New("gate generation differs")

// applyGuarded applies writes of which some carry a Guard, in an explicit
// transaction: one round trip sends BEGIN, each guarded tenant's gate
// row lock and check, and every write; a second sends COMMIT, or ROLLBACK
// when a guard failed. The gate row is locked (shared, or exclusive by a
// Write that advances it) before the write's rows are touched, so a Write
// that advances the generation and one that checks it are serialised: a
// guarded Write that commits after a gate change was checked against it.
func (s *Store) applyGuarded(ctx context.Context, ws []*custos.Write) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return dbError("apply guarded writes", err)
	}
	defer conn.Release()
	b := &pgx.Batch{}
	b.Queue("BEGIN ISOLATION LEVEL READ COMMITTED")
	var stale *custos.StaleError
	// Statements queued so far, and the tenant each belongs to, so that a
	// unique violation is attributed to its Write.
	var owners []*custos.Write
	done := 0
	queue := func(w *custos.Write, q *pgx.QueuedQuery) {
		owners = append(owners, w)
		q.Exec(func(pgconn.CommandTag) error { done++; return nil })
	}
	owners = append(owners, nil)
	b.QueuedQueries[0].Exec(func(pgconn.CommandTag) error { done++; return nil })
	for _, w := range ws {
		if g := w.Guard; g != nil {
			queue(w, b.Queue(sqlGateRow, w.Tenant[:]))
			lock := sqlGateShare
			if g.Advance || g.Observed != nil {
				// A Write replacing the observed-categories record holds
				// the gate row exclusively, so two such Writes are
				// serialised even when no record exists yet to lock.
				lock = sqlGateExclusive
			}
			owners = append(owners, w)
			b.Queue(lock, w.Tenant[:]).QueryRow(func(row pgx.Row) error {
				done++
				var gen int64
				if err := row.Scan(&gen); err != nil {
					return err
				}
				if uint64(gen) != g.Generation && stale == nil {
					stale = &custos.StaleError{Tenant: w.Tenant, Generation: uint64(gen), GenerationStale: true}
				}
				return nil
			})
		}
		if g := w.Guard; g != nil && len(g.Profiles) > 0 {
			// Locked in subject order, before any is written, so two
			// writers of the same profiles never deadlock.
			ids := make([][]byte, 0, len(g.Profiles))
			for sid := range g.Profiles {
				ids = append(ids, sid[:])
			}
			owners = append(owners, w)
			b.Queue(sqlProfileBases, w.Tenant[:], ids).Query(func(rows pgx.Rows) error {
				done++
				found := map[custos.SubjectID][32]byte{}
				for rows.Next() {
					var sb, sum []byte
					if err := rows.Scan(&sb, &sum); err != nil {
						return err
					}
					var sid custos.SubjectID
					var h [32]byte
					copy(sid[:], sb)
					copy(h[:], sum)
					found[sid] = h
				}
				if err := rows.Err(); err != nil {
					return err
				}
				for sid, want := range g.Profiles {
					if found[sid] != want && stale == nil {
						stale = &custos.StaleError{Tenant: w.Tenant, Profiles: true}
					}
				}
				return nil
			})
		}
		if g := w.Guard; g != nil && g.Observed != nil {
			want := *g.Observed
			owners = append(owners, w)
			b.Queue(sqlObservedBase, w.Tenant[:], recordObserved).Query(func(rows pgx.Rows) error {
				done++
				var found [32]byte
				for rows.Next() {
					var sum []byte
					if err := rows.Scan(&sum); err != nil {
						return err
					}
					copy(found[:], sum)
				}
				if err := rows.Err(); err != nil {
					return err
				}
				if found != want && stale == nil {
					stale = &custos.StaleError{Tenant: w.Tenant, Observed: true}
				}
				return nil
			})
		}
		if g := w.Guard; g != nil {
			for sid, want := range g.Events {
				owners = append(owners, w)
				b.Queue(sqlCountEvents, w.Tenant[:], sid[:]).QueryRow(func(row pgx.Row) error {
					done++
					var n int
					if err := row.Scan(&n); err != nil {
						return err
					}
					if n != want && stale == nil {
						stale = &custos.StaleError{Tenant: w.Tenant, Profiles: true}
					}
					return nil
				})
			}
		}
		n := b.Len()
		if err := queueWrite(b, w); err != nil {
			return err
		}
		for _, q := range b.QueuedQueries[n:] {
			owners = append(owners, w)
			q.Exec(func(pgconn.CommandTag) error { done++; return nil })
		}
		if w.Guard != nil && w.Guard.Advance {
			queue(w, b.Queue(sqlGateAdvance, w.Tenant[:]))
			queue(w, b.Queue(sqlNotify(custos.ChangeGate), w.Tenant[:]))
		}
	}
	err = conn.SendBatch(ctx, b).Close()
	if err == nil && stale == nil {
		if _, err := conn.Exec(ctx, "COMMIT"); err != nil {
			return dbError("commit guarded writes", err)
		}
		return nil
	}
	if _, rerr := conn.Exec(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
		conn.Conn().Close(context.WithoutCancel(ctx)) // never reuse a connection in an unknown state
	}
	if stale != nil {
		return stale
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" && done < len(owners) && owners[done] != nil && owners[done].Guard != nil {
		w := owners[done]
		switch pe.ConstraintName {
		case "seen_pkey":
			return s.staleSeen(ctx, w)
		case "identifiers_pkey":
			return &custos.StaleError{Tenant: w.Tenant, Links: true}
		}
	}
	return dbError("apply guarded writes", err)
}

// staleSeen finds which of a Write's new message hashes were stored by
// another writer.
func (s *Store) staleSeen(ctx context.Context, w *custos.Write) error {
	ids := make([][]byte, len(w.Guard.NewSeen))
	for i := range w.Guard.NewSeen {
		ids[i] = w.Guard.NewSeen[i][:]
	}
	rows, err := s.pool.Query(ctx, "SELECT msg FROM seen WHERE tenant_id = $1 AND msg = ANY($2::bytea[])", w.Tenant[:], ids)
	if err != nil {
		return dbError("read stored message hashes", err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return dbError("read stored message hashes", err)
	}
	st := &custos.StaleError{Tenant: w.Tenant}
	for _, f := range found {
		id, err := id16(f, "message hash")
		if err != nil {
			return err
		}
		st.Seen = append(st.Seen, custos.MessageHash(id))
	}
	if len(st.Seen) == 0 {
		return fmt.Errorf("a stored message hash conflicted, then was gone: %w", st)
	}
	return st
}

// Generations returns every tenant's gate generation that is not zero.
func (s *Store) Generations(ctx context.Context) (map[custos.TenantID]uint64, error) {
	rows, err := s.pool.Query(ctx, "SELECT tenant_id, generation FROM gates WHERE generation <> 0")
	if err != nil {
		return nil, dbError("read gate generations", err)
	}
	defer rows.Close()
	out := map[custos.TenantID]uint64{}
	for rows.Next() {
		var tb []byte
		var g int64
		if err := rows.Scan(&tb, &g); err != nil {
			return nil, dbError("read gate generations", err)
		}
		id, err := id16(tb, "tenant id")
		if err != nil {
			return nil, err
		}
		out[custos.TenantID(id)] = uint64(g)
	}
	return out, dbError("read gate generations", rows.Err())
}
