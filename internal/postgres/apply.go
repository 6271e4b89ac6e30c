package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/custos-dev/custos"
	"github.com/jackc/pgx/v5"
)

// The statements of Apply. Rows travel as arrays and are unnested on the
// server, so a Write is a handful of statements whatever its size.
const (
	sqlDeleteSubjectEvents   = "DELETE FROM events WHERE tenant_id = $1 AND subject_id = ANY($2::bytea[])"
	sqlDeleteSubjectProfiles = "DELETE FROM profiles WHERE tenant_id = $1 AND subject_id = ANY($2::bytea[])"
	sqlDeleteSubjectConsents = "DELETE FROM consents WHERE tenant_id = $1 AND subject_id = ANY($2::bytea[])"
	sqlDeleteSubjectSends    = "DELETE FROM sends WHERE tenant_id = $1 AND subject_id = ANY($2::bytea[])"
	sqlDeleteEvents          = `DELETE FROM events e USING unnest($2::bytea[], $3::int8[], $4::bytea[]) AS u(s, a, m)
		WHERE e.tenant_id = $1 AND e.subject_id = u.s AND e.at = u.a AND e.msg = u.m`
	sqlExpireEvents = "DELETE FROM events WHERE tenant_id = $1 AND at < $2"
	sqlUnlink       = "DELETE FROM identifiers WHERE tenant_id = $1 AND hash = ANY($2::bytea[])"
	sqlUnsee        = "DELETE FROM seen WHERE tenant_id = $1 AND msg = ANY($2::bytea[])"
	sqlPutEvents    = `INSERT INTO events (tenant_id, subject_id, at, msg, value)
		SELECT $1, s, a, m, v FROM unnest($2::bytea[], $3::int8[], $4::bytea[], $5::bytea[]) AS u(s, a, m, v)
		ON CONFLICT (tenant_id, subject_id, at, msg) DO UPDATE SET value = excluded.value`
	// sqlNewEvents inserts the events of messages a guarded Write holds
	// new (Guard.NewSeen) without ON CONFLICT, whose check before each
	// row costs a fifth of the insert: such an event has no row, since an
	// event and its deduplication record are stored and deleted together.
	// Should one have a row all the same, the unique violation aborts the
	// batch and it is sent again with sqlPutEvents (applyGuarded).
	sqlNewEvents = `INSERT INTO events (tenant_id, subject_id, at, msg, value)
		SELECT $1, s, a, m, v FROM unnest($2::bytea[], $3::int8[], $4::bytea[], $5::bytea[]) AS u(s, a, m, v)`
	sqlPutConsents = `INSERT INTO consents (tenant_id, subject_id, at, seq, value)
		SELECT $1, s, a, q, v FROM unnest($2::bytea[], $3::int8[], $4::int8[], $5::bytea[]) AS u(s, a, q, v)
		ON CONFLICT (tenant_id, subject_id, at, seq) DO UPDATE SET value = excluded.value`
	sqlPutSends = `INSERT INTO sends (tenant_id, subject_id, at, campaign, value)
		SELECT $1, s, a, c, v FROM unnest($2::bytea[], $3::int8[], $4::text[], $5::bytea[]) AS u(s, a, c, v)
		ON CONFLICT (tenant_id, subject_id, at, campaign) DO UPDATE SET value = excluded.value`
	sqlPutProfiles = `INSERT INTO profiles (tenant_id, subject_id, value)
		SELECT $1, s, v FROM unnest($2::bytea[], $3::bytea[]) AS u(s, v)
		ON CONFLICT (tenant_id, subject_id) DO UPDATE SET value = excluded.value`
	sqlPutLinks = `INSERT INTO identifiers (tenant_id, hash, subject_id)
		SELECT $1, h, s FROM unnest($2::bytea[], $3::bytea[]) AS u(h, s)
		ON CONFLICT (tenant_id, hash) DO UPDATE SET subject_id = excluded.subject_id`
	sqlDeleteFlags = "DELETE FROM flags WHERE tenant_id = $1 AND subject_id = ANY($2::bytea[])"
	sqlPutFlags    = `INSERT INTO flags (tenant_id, subject_id, flags)
		SELECT $1, s, f FROM unnest($2::bytea[], $3::bytea[]) AS u(s, f)
		ON CONFLICT (tenant_id, subject_id) DO UPDATE SET flags = excluded.flags`
	sqlPutTombstones = `INSERT INTO tombstones (tenant_id, hash, tombstone)
		SELECT $1, h, v FROM unnest($2::bytea[], $3::bytea[]) AS u(h, v)
		ON CONFLICT (tenant_id, hash) DO UPDATE SET tombstone = excluded.tombstone`
	sqlPutSeen = `INSERT INTO seen (tenant_id, msg, subject_id, at)
		SELECT $1, m, s, a FROM unnest($2::bytea[], $3::bytea[], $4::int8[]) AS u(m, s, a)
		ON CONFLICT (tenant_id, msg) DO UPDATE SET subject_id = excluded.subject_id, at = excluded.at`
	sqlPutMerges = `INSERT INTO merges (tenant_id, from_subject, into_subject)
		SELECT $1, f, i FROM unnest($2::bytea[], $3::bytea[]) AS u(f, i)
		ON CONFLICT (tenant_id, from_subject) DO UPDATE SET into_subject = excluded.into_subject`
	// A guarded Write inserts the rows its author believed new without ON
	// CONFLICT: a row another node wrote meanwhile is a unique violation
	// that aborts the transaction.
	sqlNewLinks = `INSERT INTO identifiers (tenant_id, hash, subject_id)
		SELECT $1, h, s FROM unnest($2::bytea[], $3::bytea[]) AS u(h, s)`
	sqlNewSeen = `INSERT INTO seen (tenant_id, msg, subject_id, at)
		SELECT $1, m, s, a FROM unnest($2::bytea[], $3::bytea[], $4::int8[]) AS u(m, s, a)`
	sqlGateRow         = "INSERT INTO gates (tenant_id, generation) VALUES ($1, 0) ON CONFLICT (tenant_id) DO NOTHING"
	sqlGateAdvance     = "UPDATE gates SET generation = generation + 1 WHERE tenant_id = $1"
	sqlPutTenantRecord = `INSERT INTO tenant_records (tenant_id, kind, value) VALUES ($1, $2, $3)
		ON CONFLICT (tenant_id, kind) DO UPDATE SET value = excluded.value`
)

// Kinds of tenant_records.
const (
	recordObserved  = "observed"
	recordRetention = "retention"
)

// Apply applies the writes in one transaction, sent as one pipelined
// batch: one round trip for the whole call. It returns once the commit is
// durable (synchronous_commit is on), so wait has nothing left to do.
// Rows of one statement are sorted by key, so that concurrent Applies
// from several nodes lock rows in one order. Writes made under a lease
// (ctx carries its custos.Fence) are refused, changing nothing, once the
// lease has a newer holder.
func (s *Store) Apply(ctx context.Context, ws []*custos.Write) (func() error, error) {
	fenced := len(custos.Fences(ctx)) > 0
	for _, w := range ws {
		if w.Guard != nil || fenced {
			if err := s.applyGuarded(ctx, ws, true); err != nil {
				return nil, err
			}
			return func() error { return nil }, nil
		}
	}
	b := &pgx.Batch{}
	for _, w := range ws {
		if err := queueWrite(b, w, false); err != nil {
			return nil, err
		}
	}
	if b.Len() == 0 {
		return func() error { return nil }, nil
	}
	// Outside an explicit transaction a batch runs as one implicit
	// transaction: all of it commits, or none.
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return nil, dbError("apply writes", err)
	}
	return func() error { return nil }, nil
}

// keyed is a row with the key it is deduplicated and sorted by.
type keyed[T any] struct {
	key []byte
	row T
}

// lastByKey keeps the last row of each key (a later put of the same key
// replaces an earlier one, as in one Pebble batch) and sorts by key.
func lastByKey[T any](rows []T, key func(T) []byte) []T {
	if len(rows) == 0 {
		return nil
	}
	ks := make([]keyed[T], len(rows))
	for i, r := range rows {
		ks[i] = keyed[T]{key(r), r}
	}
	// A stable sort keeps equal keys in input order: the last one wins.
	slices.SortStableFunc(ks, func(a, b keyed[T]) int { return bytes.Compare(a.key, b.key) })
	out := make([]T, 0, len(ks))
	for i := range ks {
		if i+1 < len(ks) && bytes.Equal(ks[i].key, ks[i+1].key) {
			continue
		}
		out = append(out, ks[i].row)
	}
	return out
}

func eventKey(e custos.StoredEvent) []byte {
	k := append(e.Subject[:len(e.Subject):len(e.Subject)], sortable(nanos(e.Time))...)
	return append(k, e.ID[:]...)
}

// sortable encodes n so that byte order is numeric order.
func sortable(n int64) []byte {
	u := uint64(n) ^ (1 << 63)
	return []byte{byte(u >> 56), byte(u >> 48), byte(u >> 40), byte(u >> 32), byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)}
}

func subjectIDs(ss []custos.SubjectID) [][]byte {
	out := make([][]byte, len(ss))
	for i := range ss {
		out[i] = ss[i][:]
	}
	return out
}

// eventColumns are events as the array parameters of an insert.
type eventColumns struct {
	subs, ids, vs [][]byte
	ats           []int64
}

func (c *eventColumns) add(e custos.StoredEvent) {
	c.subs, c.ats, c.ids, c.vs = append(c.subs, e.Subject[:]), append(c.ats, nanos(e.Time)), append(c.ids, e.ID[:]), append(c.vs, nz(e.Value))
}

// queueWrite queues the statements of one Write: deletes first, then puts.
// With newEvents, the events of messages its Guard holds new are inserted
// as new (sqlNewEvents).
func queueWrite(b *pgx.Batch, w *custos.Write, newEvents bool) error {
	t := w.Tenant[:]
	var newSeen map[custos.MessageHash]bool
	if w.Guard != nil && len(w.Guard.NewSeen) > 0 {
		newSeen = make(map[custos.MessageHash]bool, len(w.Guard.NewSeen))
		for _, id := range w.Guard.NewSeen {
			newSeen[id] = true
		}
	}
	for _, sd := range w.Sends {
		if sd.Campaign == "" {
			return custos.Errorf(custos.Invalid, "send record has no campaign")
		}
	}
	if len(w.DeleteSubjects) > 0 {
		ids := subjectIDs(w.DeleteSubjects)
		for _, q := range []string{sqlDeleteSubjectEvents, sqlDeleteSubjectProfiles, sqlDeleteSubjectConsents, sqlDeleteSubjectSends} {
			b.Queue(q, t, ids)
		}
		// Other nodes drop the subjects' keys from memory at commit.
		b.Queue(sqlNotifySubjects, t, ids)
	}
	if !w.ExpireBefore.IsZero() {
		b.Queue(sqlExpireEvents, t, nanos(w.ExpireBefore))
	}
	if len(w.DeleteEvents) > 0 {
		es := lastByKey(w.DeleteEvents, eventKey)
		subs, ats, ids := make([][]byte, len(es)), make([]int64, len(es)), make([][]byte, len(es))
		for i := range es {
			subs[i], ats[i], ids[i] = es[i].Subject[:], nanos(es[i].Time), es[i].ID[:]
		}
		b.Queue(sqlDeleteEvents, t, subs, ats, ids)
	}
	if len(w.Unlinks) > 0 {
		hs := make([][]byte, len(w.Unlinks))
		for i := range w.Unlinks {
			hs[i] = w.Unlinks[i][:]
		}
		b.Queue(sqlUnlink, t, hs)
	}
	if len(w.Unsee) > 0 {
		ms := make([][]byte, len(w.Unsee))
		for i := range w.Unsee {
			ms[i] = w.Unsee[i][:]
		}
		b.Queue(sqlUnsee, t, ms)
	}
	if len(w.Events) > 0 {
		var put, fresh eventColumns
		for _, e := range lastByKey(w.Events, eventKey) {
			if newEvents && newSeen[e.ID] {
				fresh.add(e)
			} else {
				put.add(e)
			}
		}
		if len(fresh.subs) > 0 {
			b.Queue(sqlNewEvents, t, fresh.subs, fresh.ats, fresh.ids, fresh.vs)
		}
		if len(put.subs) > 0 {
			b.Queue(sqlPutEvents, t, put.subs, put.ats, put.ids, put.vs)
		}
	}
	if len(w.Consents) > 0 {
		cs := lastByKey(w.Consents, func(c custos.StoredConsent) []byte {
			return append(append(c.Subject[:len(c.Subject):len(c.Subject)], sortable(nanos(c.Time))...), sortable(flipSeq(c.Seq))...)
		})
		subs, ats, seqs, vs := make([][]byte, len(cs)), make([]int64, len(cs)), make([]int64, len(cs)), make([][]byte, len(cs))
		for i := range cs {
			subs[i], ats[i], seqs[i], vs[i] = cs[i].Subject[:], nanos(cs[i].Time), flipSeq(cs[i].Seq), nz(cs[i].Value)
		}
		b.Queue(sqlPutConsents, t, subs, ats, seqs, vs)
	}
	if len(w.Sends) > 0 {
		ss := lastByKey(w.Sends, func(sd custos.StoredSend) []byte {
			return append(append(sd.Subject[:len(sd.Subject):len(sd.Subject)], sortable(nanos(sd.Time))...), sd.Campaign...)
		})
		subs, ats, camps, vs := make([][]byte, len(ss)), make([]int64, len(ss)), make([]string, len(ss)), make([][]byte, len(ss))
		for i := range ss {
			subs[i], ats[i], camps[i], vs[i] = ss[i].Subject[:], nanos(ss[i].Time), ss[i].Campaign, nz(ss[i].Value)
		}
		b.Queue(sqlPutSends, t, subs, ats, camps, vs)
	}
	if len(w.Profiles) > 0 {
		ps := lastByKey(w.Profiles, func(p custos.StoredProfile) []byte { return p.Subject[:] })
		subs, vs := make([][]byte, len(ps)), make([][]byte, len(ps))
		for i := range ps {
			subs[i], vs[i] = ps[i].Subject[:], nz(ps[i].Value)
		}
		b.Queue(sqlPutProfiles, t, subs, vs)
	}
	if len(w.Links) > 0 {
		var newLinks map[custos.IdentifierHash]bool
		if w.Guard != nil && len(w.Guard.NewLinks) > 0 {
			newLinks = make(map[custos.IdentifierHash]bool, len(w.Guard.NewLinks))
			for _, h := range w.Guard.NewLinks {
				newLinks[h] = true
			}
		}
		var hs, subs, newHs, newSubs [][]byte
		for _, l := range lastByKey(w.Links, func(l custos.Link) []byte { return l.Hash[:] }) {
			if newLinks[l.Hash] {
				newHs, newSubs = append(newHs, l.Hash[:]), append(newSubs, l.Subject[:])
				continue
			}
			hs, subs = append(hs, l.Hash[:]), append(subs, l.Subject[:])
		}
		if len(newHs) > 0 {
			b.Queue(sqlNewLinks, t, newHs, newSubs)
		}
		if len(hs) > 0 {
			b.Queue(sqlPutLinks, t, hs, subs)
		}
	}
	if len(w.Flags) > 0 {
		var del, put [][]byte
		var vals [][]byte
		for _, f := range lastByKey(w.Flags, func(f custos.FlagsRecord) []byte { return f.Subject[:] }) {
			if f.Flags == (custos.SubjectFlags{}) {
				del = append(del, f.Subject[:])
				continue
			}
			v, err := json.Marshal(f.Flags)
			if err != nil {
				return fmt.Errorf("encode subject flags: %w", err)
			}
			put, vals = append(put, f.Subject[:]), append(vals, v)
		}
		if len(del) > 0 {
			b.Queue(sqlDeleteFlags, t, del)
		}
		if len(put) > 0 {
			b.Queue(sqlPutFlags, t, put, vals)
		}
	}
	if len(w.Tombstones) > 0 {
		ts := lastByKey(w.Tombstones, func(r custos.TombstoneRecord) []byte { return r.Hash[:] })
		hs, vs := make([][]byte, len(ts)), make([][]byte, len(ts))
		for i := range ts {
			v, err := json.Marshal(ts[i].Tombstone)
			if err != nil {
				return fmt.Errorf("encode tombstone: %w", err)
			}
			hs[i], vs[i] = ts[i].Hash[:], v
		}
		b.Queue(sqlPutTombstones, t, hs, vs)
	}
	if len(w.Seen) > 0 {
		var ms, subs, newMs, newSubs [][]byte
		var ats, newAts []int64
		for _, sn := range lastByKey(w.Seen, func(sn custos.Seen) []byte { return sn.ID[:] }) {
			if newSeen[sn.ID] {
				newMs, newSubs, newAts = append(newMs, sn.ID[:]), append(newSubs, sn.Subject[:]), append(newAts, nanos(sn.Time))
				continue
			}
			ms, subs, ats = append(ms, sn.ID[:]), append(subs, sn.Subject[:]), append(ats, nanos(sn.Time))
		}
		if len(newMs) > 0 {
			b.Queue(sqlNewSeen, t, newMs, newSubs, newAts)
		}
		if len(ms) > 0 {
			b.Queue(sqlPutSeen, t, ms, subs, ats)
		}
	}
	if len(w.Merges) > 0 {
		ms := lastByKey(w.Merges, func(m custos.MergeRecord) []byte { return m.From[:] })
		froms, intos := make([][]byte, len(ms)), make([][]byte, len(ms))
		for i := range ms {
			froms[i], intos[i] = ms[i].From[:], ms[i].Into[:]
		}
		b.Queue(sqlPutMerges, t, froms, intos)
	}
	if w.Observed != nil {
		b.Queue(sqlPutTenantRecord, t, recordObserved, w.Observed)
	}
	if w.Retention != nil {
		b.Queue(sqlPutTenantRecord, t, recordRetention, w.Retention)
	}
	return nil
}
