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

// The checks of a guarded Write fail in the database, so that the checks,
// the writes and the commit travel in one round trip: a check that does
// not hold divides by zero (SQLSTATE 22012), which aborts the batch's
// implicit transaction before any write of it commits. Each locks what it
// checks until the commit.
//
// sqlGateCheck locks the tenant's gate row (shared, or exclusive by a
// Write that advances it) and checks its generation. sqlProfilesCheck
// locks the profiles a Write replaces or deletes, in subject order, and
// compares the SHA-256 of each with what its author read (NULL: read as
// absent). sqlEventsCheck counts a subject's events, under the gate lock,
// for a merge that copied them.
const (
	sqlGateShareCheck     = "SELECT 1 / (CASE WHEN generation = $2 THEN 1 ELSE 0 END) FROM gates WHERE tenant_id = $1 FOR SHARE"
	sqlGateExclusiveCheck = "SELECT 1 / (CASE WHEN generation = $2 THEN 1 ELSE 0 END) FROM gates WHERE tenant_id = $1 FOR UPDATE"
	sqlProfilesCheck      = `WITH locked AS MATERIALIZED (
			SELECT subject_id, sha256(value) AS h FROM profiles
			WHERE tenant_id = $1 AND subject_id = ANY($2::bytea[]) ORDER BY subject_id FOR UPDATE)
		SELECT 1 / (CASE WHEN count(*) = 0 THEN 1 ELSE 0 END)
		FROM unnest($2::bytea[], $3::bytea[]) AS u(s, h) LEFT JOIN locked l ON l.subject_id = u.s
		WHERE l.h IS DISTINCT FROM u.h`
	sqlEventsCheck = "SELECT 1 / (CASE WHEN count(*) = $3 THEN 1 ELSE 0 END) FROM events WHERE tenant_id = $1 AND subject_id = $2"
	// sqlObservedCheck compares the SHA-256 of the observed-categories
	// record with what the author read (empty: read as absent).
	sqlObservedCheck = `SELECT 1 / (CASE WHEN coalesce((SELECT sha256(value) FROM tenant_records WHERE tenant_id = $1 AND kind = $2), '\x'::bytea) = $3 THEN 1 ELSE 0 END)`
	// sqlFenceCheck checks that a lease still has the token a write was
	// made under (custos.Fence), and keeps it from changing until the
	// commit, as sqlFence does for the other writes.
	sqlFenceCheck = `SELECT 1 / (CASE WHEN count(*) = 1 THEN 1 ELSE 0 END)
		FROM (SELECT 1 FROM leases WHERE tenant_id = $1 AND name = $2 AND token = $3 FOR SHARE) AS f`
)

// What a statement of a guarded batch is, to tell which failed.
const (
	stmtWrite = iota
	stmtGate
	stmtProfiles
	stmtEvents
	stmtObserved
	stmtFence
)

// applyGuarded applies writes of which some carry a Guard in one
// pipelined batch, one implicit transaction: for each guarded Write its
// checks (the gate row first), then its writes; the commit at the end.
// The gate row is locked before the write's rows are touched, so a Write
// that advances the generation and one that checks it are serialised: a
// guarded Write that commits after a gate change was checked against it.
// A check that fails aborts the whole batch, which is then answered with
// a *custos.StaleError saying what was stale. The fences ctx carries
// (work under a lease: an erasure's steps, the retention sweep) are
// checked first, and a write under a lease that has a newer holder is
// refused with custos.ErrFenced as the cause.
//
// With newEvents, the events of messages a Guard holds new are inserted as
// new; should one exist all the same, the batch is sent again without.
func (s *Store) applyGuarded(ctx context.Context, ws []*custos.Write, newEvents bool) error {
	b := &pgx.Batch{}
	// The Write and kind of each statement queued, so that an error is
	// attributed to its statement; done counts the statements that ran.
	var owners []*custos.Write
	var kinds []int
	done := 0
	queue := func(w *custos.Write, kind int, q *pgx.QueuedQuery) {
		owners, kinds = append(owners, w), append(kinds, kind)
		q.Exec(func(pgconn.CommandTag) error { done++; return nil })
	}
	fences := custos.Fences(ctx)
	for _, f := range fences {
		queue(nil, stmtFence, b.Queue(sqlFenceCheck, f.Tenant[:], f.Lease, int64(f.Token)))
	}
	for _, w := range ws {
		if g := w.Guard; g != nil {
			queue(w, stmtWrite, b.Queue(sqlGateRow, w.Tenant[:]))
			check := sqlGateShareCheck
			if g.Advance || g.Observed != nil {
				// A Write replacing the observed-categories record holds
				// the gate row exclusively, so two such Writes are
				// serialised even when no record exists yet to lock.
				check = sqlGateExclusiveCheck
			}
			queue(w, stmtGate, b.Queue(check, w.Tenant[:], int64(g.Generation)))
			if len(g.Profiles) > 0 {
				ids := make([][]byte, 0, len(g.Profiles))
				sums := make([][]byte, 0, len(g.Profiles))
				for sid, sum := range g.Profiles {
					ids = append(ids, sid[:])
					if sum == ([32]byte{}) {
						sums = append(sums, nil)
					} else {
						sums = append(sums, sum[:])
					}
				}
				queue(w, stmtProfiles, b.Queue(sqlProfilesCheck, w.Tenant[:], ids, sums))
			}
			if g.Observed != nil {
				want := []byte{}
				if *g.Observed != ([32]byte{}) {
					want = g.Observed[:]
				}
				queue(w, stmtObserved, b.Queue(sqlObservedCheck, w.Tenant[:], recordObserved, want))
			}
			for sid, want := range g.Events {
				queue(w, stmtEvents, b.Queue(sqlEventsCheck, w.Tenant[:], sid[:], want))
			}
		}
		n := b.Len()
		if err := queueWrite(b, w, newEvents); err != nil {
			return err
		}
		for _, q := range b.QueuedQueries[n:] {
			owners, kinds = append(owners, w), append(kinds, stmtWrite)
			q.Exec(func(pgconn.CommandTag) error { done++; return nil })
		}
		if w.Guard != nil && w.Guard.Advance {
			queue(w, stmtWrite, b.Queue(sqlGateAdvance, w.Tenant[:]))
			queue(w, stmtWrite, b.Queue(sqlNotify(custos.ChangeGate), w.Tenant[:]))
		}
	}
	err := s.pool.SendBatch(ctx, b).Close()
	if err == nil {
		return nil
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "22012" && done < len(fences) {
		// Fences are the first statements: the done-th did not hold.
		f := fences[done]
		var token int64
		terr := s.pool.QueryRow(ctx, "SELECT token FROM leases WHERE tenant_id = $1 AND name = $2", f.Tenant[:], f.Lease).Scan(&token)
		if terr != nil && !errors.Is(terr, pgx.ErrNoRows) {
			return dbError("read a lease's token", terr)
		}
		return custos.FencedError(f, uint64(token))
	}
	if !errors.As(err, &pe) || done >= len(owners) || owners[done] == nil || owners[done].Guard == nil {
		return dbError("apply guarded writes", err)
	}
	w := owners[done]
	switch {
	case pe.Code == "22012" && kinds[done] == stmtGate:
		gen, gerr := s.Generation(ctx, w.Tenant)
		if gerr != nil {
			return gerr
		}
		return &custos.StaleError{Tenant: w.Tenant, Generation: gen, GenerationStale: true}
	case pe.Code == "22012" && (kinds[done] == stmtProfiles || kinds[done] == stmtEvents):
		return &custos.StaleError{Tenant: w.Tenant, Profiles: true}
	case pe.Code == "22012" && kinds[done] == stmtObserved:
		return &custos.StaleError{Tenant: w.Tenant, Observed: true}
	case pe.Code == "23505" && pe.ConstraintName == "seen_pkey":
		return s.staleSeen(ctx, w)
	case pe.Code == "23505" && pe.ConstraintName == "events_pkey" && newEvents:
		return s.applyGuarded(ctx, ws, false)
	case pe.Code == "23505" && pe.ConstraintName == "identifiers_pkey":
		return &custos.StaleError{Tenant: w.Tenant, Links: true}
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
