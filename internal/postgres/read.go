package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/custos-dev/custos"
)

// pageSize is how many rows a walk reads per query. Walks read a page,
// then call their callback for each row with no query open, so a callback
// may use the store (and the pool is never held across callbacks).
const pageSize = 1000

// id16 copies a 16-byte id read from a bytea column.
func id16(b []byte, what string) ([16]byte, error) {
	var id [16]byte
	if len(b) != len(id) {
		return id, fmt.Errorf("corrupt %s of %d bytes", what, len(b))
	}
	copy(id[:], b)
	return id, nil
}

func hash32(b []byte, what string) ([32]byte, error) {
	var h [32]byte
	if len(b) != len(h) {
		return h, fmt.Errorf("corrupt %s of %d bytes", what, len(b))
	}
	copy(h[:], b)
	return h, nil
}

// Subject returns the subject an identifier hash points at.
func (s *Store) Subject(ctx context.Context, t custos.TenantID, h custos.IdentifierHash) (custos.SubjectID, error) {
	var v []byte
	if err := s.pool.QueryRow(ctx, "SELECT subject_id FROM identifiers WHERE tenant_id = $1 AND hash = $2", t[:], h[:]).Scan(&v); err != nil {
		return custos.SubjectID{}, notFound("read identifier index", err)
	}
	id, err := id16(v, "identifier index entry")
	return custos.SubjectID(id), err
}

// Subjects returns the subjects the identifier hashes point at, in one
// statement.
func (s *Store) Subjects(ctx context.Context, t custos.TenantID, hs []custos.IdentifierHash) (map[custos.IdentifierHash]custos.SubjectID, error) {
	out := make(map[custos.IdentifierHash]custos.SubjectID, len(hs))
	if len(hs) == 0 {
		return out, nil
	}
	keys := make([][]byte, len(hs))
	for i := range hs {
		keys[i] = hs[i][:]
	}
	rows, err := s.pool.Query(ctx, "SELECT hash, subject_id FROM identifiers WHERE tenant_id = $1 AND hash = ANY($2::bytea[])", t[:], keys)
	if err != nil {
		return nil, dbError("read identifier index", err)
	}
	defer rows.Close()
	for rows.Next() {
		var h, sub []byte
		if err := rows.Scan(&h, &sub); err != nil {
			return nil, dbError("read identifier index", err)
		}
		hash, err := hash32(h, "identifier hash")
		if err != nil {
			return nil, err
		}
		sid, err := id16(sub, "identifier index entry")
		if err != nil {
			return nil, err
		}
		out[custos.IdentifierHash(hash)] = custos.SubjectID(sid)
	}
	return out, dbError("read identifier index", rows.Err())
}

// Seen returns the deduplication record of a message.
func (s *Store) Seen(ctx context.Context, t custos.TenantID, id custos.MessageHash) (custos.Seen, error) {
	sn := custos.Seen{ID: id}
	var sub []byte
	var at int64
	if err := s.pool.QueryRow(ctx, "SELECT subject_id, at FROM seen WHERE tenant_id = $1 AND msg = $2", t[:], id[:]).Scan(&sub, &at); err != nil {
		return sn, notFound("read dedupe record", err)
	}
	sid, err := id16(sub, "dedupe record")
	sn.Subject, sn.Time = custos.SubjectID(sid), fromNanos(at)
	return sn, err
}

// eachOfAllTenants pages through a table keyed by (tenant_id, key) in key
// order, calling fn with each row's columns.
func (s *Store) eachOfAllTenants(ctx context.Context, table, keyCol, cols string, fn func(t custos.TenantID, key []byte, row scanner) error) error {
	q := fmt.Sprintf(`SELECT tenant_id, %[2]s, %[3]s FROM %[1]s
		WHERE (tenant_id, %[2]s) > ($1, $2) ORDER BY tenant_id, %[2]s LIMIT %[4]d`, table, keyCol, cols, pageSize)
	lastT, lastK := []byte{}, []byte{}
	for {
		var page []func() error
		rows, err := s.pool.Query(ctx, q, lastT, lastK)
		if err != nil {
			return dbError("scan "+table, err)
		}
		n := 0
		for rows.Next() {
			n++
			var tb, kb []byte
			vals, err := rows.Values()
			if err != nil {
				rows.Close()
				return dbError("scan "+table, err)
			}
			tb, _ = vals[0].([]byte)
			kb, _ = vals[1].([]byte)
			tid, err := id16(tb, "tenant id")
			if err != nil {
				rows.Close()
				return err
			}
			lastT, lastK = tb, kb
			row := valuesRow(vals[2:])
			page = append(page, func() error { return fn(custos.TenantID(tid), kb, row) })
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return dbError("scan "+table, err)
		}
		for _, call := range page {
			if err := call(); err != nil {
				return err
			}
		}
		if n < pageSize {
			return nil
		}
	}
}

// valuesRow is a row already read, scannable like a pgx row.
type valuesRow []any

func (v valuesRow) Scan(dest ...any) error {
	if len(dest) != len(v) {
		return fmt.Errorf("scan %d columns into %d values", len(v), len(dest))
	}
	for i, d := range dest {
		switch d := d.(type) {
		case *[]byte:
			b, _ := v[i].([]byte)
			*d = b
		case *int64:
			n, ok := v[i].(int64)
			if !ok {
				return fmt.Errorf("column %d is %T, not int64", i, v[i])
			}
			*d = n
		default:
			return fmt.Errorf("cannot scan into %T", d)
		}
	}
	return nil
}

func (v valuesRow) Values() ([]any, error) { return v, nil }

// scanner is what eachOfAllTenants hands its callback.
type scanner interface{ Scan(dest ...any) error }

// EachSeen calls fn for every deduplication record of every tenant.
func (s *Store) EachSeen(ctx context.Context, fn func(custos.TenantID, custos.Seen) error) error {
	return s.eachOfAllTenants(ctx, "seen", "msg", "subject_id, at", func(t custos.TenantID, key []byte, row scanner) error {
		var sub []byte
		var at int64
		if err := row.Scan(&sub, &at); err != nil {
			return err
		}
		id, err := id16(key, "dedupe record id")
		if err != nil {
			return err
		}
		sid, err := id16(sub, "dedupe record subject")
		if err != nil {
			return err
		}
		return fn(t, custos.Seen{ID: custos.MessageHash(id), Subject: custos.SubjectID(sid), Time: fromNanos(at)})
	})
}

// EachFlags calls fn for every subject with flags, of every tenant.
func (s *Store) EachFlags(ctx context.Context, fn func(custos.TenantID, custos.FlagsRecord) error) error {
	return s.eachOfAllTenants(ctx, "flags", "subject_id", "flags", func(t custos.TenantID, key []byte, row scanner) error {
		var v []byte
		if err := row.Scan(&v); err != nil {
			return err
		}
		sid, err := id16(key, "flags subject")
		if err != nil {
			return err
		}
		rec := custos.FlagsRecord{Subject: custos.SubjectID(sid)}
		if err := json.Unmarshal(v, &rec.Flags); err != nil {
			return fmt.Errorf("decode subject flags: %w", err)
		}
		return fn(t, rec)
	})
}

// EachTombstone calls fn for every erasure tombstone, of every tenant.
func (s *Store) EachTombstone(ctx context.Context, fn func(custos.TenantID, custos.TombstoneRecord) error) error {
	return s.eachOfAllTenants(ctx, "tombstones", "hash", "tombstone", func(t custos.TenantID, key []byte, row scanner) error {
		var v []byte
		if err := row.Scan(&v); err != nil {
			return err
		}
		h, err := hash32(key, "tombstone hash")
		if err != nil {
			return err
		}
		rec := custos.TombstoneRecord{Hash: custos.IdentifierHash(h)}
		if err := json.Unmarshal(v, &rec.Tombstone); err != nil {
			return fmt.Errorf("decode tombstone: %w", err)
		}
		return fn(t, rec)
	})
}

// afterSubject is the lower bound (exclusive) of a walk starting after
// subject after; the zero subject means from the start, itself included.
func afterSubject(after custos.SubjectID) []byte {
	if after == (custos.SubjectID{}) {
		return []byte{}
	}
	return after[:]
}

// EachProfile calls fn for every profile of the tenant, by subject id.
func (s *Store) EachProfile(ctx context.Context, t custos.TenantID, after custos.SubjectID, fn func(custos.StoredProfile) (bool, error)) error {
	last := afterSubject(after)
	for {
		rows, err := s.pool.Query(ctx, fmt.Sprintf(`SELECT subject_id, value FROM profiles
			WHERE tenant_id = $1 AND subject_id > $2 ORDER BY subject_id LIMIT %d`, pageSize), t[:], last)
		if err != nil {
			return dbError("walk profiles", err)
		}
		var page []custos.StoredProfile
		for rows.Next() {
			var sub, v []byte
			if err := rows.Scan(&sub, &v); err != nil {
				rows.Close()
				return dbError("walk profiles", err)
			}
			sid, err := id16(sub, "profile subject")
			if err != nil {
				rows.Close()
				return err
			}
			page = append(page, custos.StoredProfile{Subject: custos.SubjectID(sid), Value: v})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return dbError("walk profiles", err)
		}
		for _, p := range page {
			more, err := fn(p)
			if err != nil || !more {
				return err
			}
		}
		if len(page) < pageSize {
			return nil
		}
		l := page[len(page)-1].Subject
		last = l[:]
	}
}

// MergedInto returns the subject sub was merged into.
func (s *Store) MergedInto(ctx context.Context, t custos.TenantID, sub custos.SubjectID) (custos.SubjectID, error) {
	var v []byte
	if err := s.pool.QueryRow(ctx, "SELECT into_subject FROM merges WHERE tenant_id = $1 AND from_subject = $2", t[:], sub[:]).Scan(&v); err != nil {
		return custos.SubjectID{}, notFound("read merge record", err)
	}
	id, err := id16(v, "merge record")
	return custos.SubjectID(id), err
}

// Profile returns the sealed profile of a subject.
func (s *Store) Profile(ctx context.Context, t custos.TenantID, sub custos.SubjectID) ([]byte, error) {
	var v []byte
	if err := s.pool.QueryRow(ctx, "SELECT value FROM profiles WHERE tenant_id = $1 AND subject_id = $2", t[:], sub[:]).Scan(&v); err != nil {
		return nil, notFound("read profile", err)
	}
	return nz(v), nil
}

// Profiles returns the sealed profiles of the subjects, in one statement.
func (s *Store) Profiles(ctx context.Context, t custos.TenantID, ss []custos.SubjectID) (map[custos.SubjectID][]byte, error) {
	out := make(map[custos.SubjectID][]byte, len(ss))
	if len(ss) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, "SELECT subject_id, value FROM profiles WHERE tenant_id = $1 AND subject_id = ANY($2::bytea[])", t[:], subjectIDs(ss))
	if err != nil {
		return nil, dbError("read profiles", err)
	}
	defer rows.Close()
	for rows.Next() {
		var sub, v []byte
		if err := rows.Scan(&sub, &v); err != nil {
			return nil, dbError("read profiles", err)
		}
		sid, err := id16(sub, "profile subject")
		if err != nil {
			return nil, err
		}
		out[custos.SubjectID(sid)] = nz(v)
	}
	return out, dbError("read profiles", rows.Err())
}

// Observed returns the tenant's sealed record of observed data categories.
func (s *Store) Observed(ctx context.Context, t custos.TenantID) ([]byte, error) {
	return s.tenantRecord(ctx, t, recordObserved)
}

// RetentionProgress returns the tenant's retention sweep progress.
func (s *Store) RetentionProgress(ctx context.Context, t custos.TenantID) ([]byte, error) {
	return s.tenantRecord(ctx, t, recordRetention)
}

func (s *Store) tenantRecord(ctx context.Context, t custos.TenantID, kind string) ([]byte, error) {
	var v []byte
	if err := s.pool.QueryRow(ctx, "SELECT value FROM tenant_records WHERE tenant_id = $1 AND kind = $2", t[:], kind).Scan(&v); err != nil {
		return nil, notFound("read tenant record "+kind, err)
	}
	return nz(v), nil
}

// Events calls fn for the subject's events after the cursor, in order.
func (s *Store) Events(ctx context.Context, t custos.TenantID, sub custos.SubjectID, after *custos.EventCursor, fn func(custos.StoredEvent) (bool, error)) error {
	lastAt, lastID := int64(-1<<63), []byte{}
	inclusive := true // no cursor: the first event may sit at the smallest time
	if after != nil {
		lastAt, lastID, inclusive = nanos(after.Time), after.ID[:], false
	}
	for {
		cond := "(at, msg) > ($3, $4)"
		if inclusive {
			cond = "(at, msg) >= ($3, $4)"
		}
		rows, err := s.pool.Query(ctx, fmt.Sprintf(`SELECT at, msg, value FROM events
			WHERE tenant_id = $1 AND subject_id = $2 AND %s ORDER BY at, msg LIMIT %d`, cond, pageSize), t[:], sub[:], lastAt, lastID)
		if err != nil {
			return dbError("read events", err)
		}
		var page []custos.StoredEvent
		for rows.Next() {
			var at int64
			var id, v []byte
			if err := rows.Scan(&at, &id, &v); err != nil {
				rows.Close()
				return dbError("read events", err)
			}
			mid, err := id16(id, "event message hash")
			if err != nil {
				rows.Close()
				return err
			}
			page = append(page, custos.StoredEvent{Subject: sub, Time: fromNanos(at), ID: custos.MessageHash(mid), Value: nz(v)})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return dbError("read events", err)
		}
		for _, e := range page {
			more, err := fn(e)
			if err != nil || !more {
				return err
			}
		}
		if len(page) < pageSize {
			return nil
		}
		l := page[len(page)-1]
		lastAt, lastID, inclusive = nanos(l.Time), l.ID[:], false
	}
}

// EventsBefore calls fn for the tenant's events dated before before, in
// order of time, without their values. The events table has no index by
// time (it would slow every insert), so this reads the tenant's rows.
func (s *Store) EventsBefore(ctx context.Context, t custos.TenantID, before time.Time, fn func(custos.StoredEvent) (bool, error)) error {
	rows, err := s.pool.Query(ctx, "SELECT subject_id, at, msg FROM events WHERE tenant_id = $1 AND at < $2 ORDER BY at", t[:], nanos(before))
	if err != nil {
		return dbError("read expired events", err)
	}
	defer rows.Close()
	for rows.Next() {
		var sub, id []byte
		var at int64
		if err := rows.Scan(&sub, &at, &id); err != nil {
			return dbError("read expired events", err)
		}
		sid, err := id16(sub, "event subject")
		if err != nil {
			return err
		}
		mid, err := id16(id, "event message hash")
		if err != nil {
			return err
		}
		more, err := fn(custos.StoredEvent{Subject: custos.SubjectID(sid), Time: fromNanos(at), ID: custos.MessageHash(mid)})
		if err != nil || !more {
			return err
		}
	}
	return dbError("read expired events", rows.Err())
}

// EventSpan returns the times of the subject's first and last event.
func (s *Store) EventSpan(ctx context.Context, t custos.TenantID, sub custos.SubjectID) (first, last time.Time, ok bool, err error) {
	var lo, hi *int64
	err = s.pool.QueryRow(ctx, "SELECT min(at), max(at) FROM events WHERE tenant_id = $1 AND subject_id = $2", t[:], sub[:]).Scan(&lo, &hi)
	if err != nil {
		return first, last, false, dbError("read event span", err)
	}
	if lo == nil || hi == nil {
		return first, last, false, nil
	}
	return fromNanos(*lo), fromNanos(*hi), true, nil
}

// Consents calls fn for the subject's consent records, by time then
// sequence number.
func (s *Store) Consents(ctx context.Context, t custos.TenantID, sub custos.SubjectID, fn func(custos.StoredConsent) (bool, error)) error {
	cs, err := s.consentsOf(ctx, t, [][]byte{sub[:]})
	if err != nil {
		return err
	}
	for _, c := range cs {
		more, err := fn(c)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// consentsOf reads the consent records of the subjects, by subject, time
// and sequence number.
func (s *Store) consentsOf(ctx context.Context, t custos.TenantID, subs [][]byte) ([]custos.StoredConsent, error) {
	rows, err := s.pool.Query(ctx, `SELECT subject_id, at, seq, value FROM consents
		WHERE tenant_id = $1 AND subject_id = ANY($2::bytea[]) ORDER BY subject_id, at, seq`, t[:], subs)
	if err != nil {
		return nil, dbError("read consents", err)
	}
	defer rows.Close()
	var out []custos.StoredConsent
	for rows.Next() {
		var sub, v []byte
		var at, seq int64
		if err := rows.Scan(&sub, &at, &seq, &v); err != nil {
			return nil, dbError("read consents", err)
		}
		sid, err := id16(sub, "consent subject")
		if err != nil {
			return nil, err
		}
		out = append(out, custos.StoredConsent{Subject: custos.SubjectID(sid), Time: fromNanos(at), Seq: unflipSeq(seq), Value: nz(v)})
	}
	return out, dbError("read consents", rows.Err())
}

// Purge vacuums the tables that held the subject's rows, so the dead rows
// its deletion left are removed from the tables and their indexes. See
// docs/postgres.md for the physical bound: the bytes of a removed row may
// stay in a page's free space, in WAL and in backups until overwritten;
// what makes them unreadable at once is the shredded subject key.
func (s *Store) Purge(ctx context.Context, t custos.TenantID, sub custos.SubjectID) error {
	return s.vacuum(ctx, "events", "profiles", "consents", "sends")
}
