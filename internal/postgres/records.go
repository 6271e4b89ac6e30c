package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/custos-dev/custos"
	"github.com/jackc/pgx/v5"
)

// AppendAudit stores e under e.Seq in tenant t's chain; Conflict if the
// sequence number is taken (by this node or another).
func (s *Store) AppendAudit(ctx context.Context, t custos.TenantID, e *custos.AuditEntry) error {
	if e.Seq == 0 {
		return custos.Errorf(custos.Invalid, "audit sequence numbers start at 1")
	}
	v, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode audit entry %d: %w", e.Seq, err)
	}
	// Work under a lease (ctx carries its fence: an erasure's steps, a
	// campaign run) appends only while it holds the lease, so a stalled
	// former holder cannot add an entry for a step the new holder did.
	return s.write(ctx, false, func(q querier) error {
		tag, err := q.Exec(ctx, "INSERT INTO audit (tenant_id, seq, entry) VALUES ($1, $2, $3) ON CONFLICT (tenant_id, seq) DO NOTHING",
			t[:], flipSeq(e.Seq), v)
		if err != nil {
			return dbError(fmt.Sprintf("write audit entry %d", e.Seq), err)
		}
		if tag.RowsAffected() == 0 {
			return custos.Errorf(custos.Conflict, "audit entry %d of %s already exists", e.Seq, t)
		}
		return nil
	})
}

// AuditEntries returns up to limit entries of tenant t's chain after
// sequence number after, in order.
func (s *Store) AuditEntries(ctx context.Context, t custos.TenantID, after uint64, limit int) ([]custos.AuditEntry, error) {
	if limit <= 0 {
		return nil, custos.Errorf(custos.Invalid, "audit page limit must be positive, not %d", limit)
	}
	if after == math.MaxUint64 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, "SELECT entry FROM audit WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3", t[:], flipSeq(after), limit)
	if err != nil {
		return nil, dbError("read audit chain", err)
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, dbError("read audit chain", err)
	}
	var out []custos.AuditEntry
	for _, v := range vs {
		var e custos.AuditEntry
		if err := json.Unmarshal(v, &e); err != nil {
			return nil, fmt.Errorf("decode audit entry of %s: %w", t, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// LastAudit returns the newest entry of tenant t's chain.
func (s *Store) LastAudit(ctx context.Context, t custos.TenantID) (custos.AuditEntry, bool, error) {
	var v []byte
	err := s.pool.QueryRow(ctx, "SELECT entry FROM audit WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1", t[:]).Scan(&v)
	if err == pgx.ErrNoRows {
		return custos.AuditEntry{}, false, nil
	}
	if err != nil {
		return custos.AuditEntry{}, false, dbError("read audit chain", err)
	}
	var e custos.AuditEntry
	if err := json.Unmarshal(v, &e); err != nil {
		return e, false, fmt.Errorf("decode audit entry of %s: %w", t, err)
	}
	return e, true, nil
}

// PutRequest stores a request durably, unless ctx carries a fence that
// is no longer current (an erasure step recorded by a node whose lease
// was taken over).
func (s *Store) PutRequest(ctx context.Context, r *custos.Request) error {
	if r.ID == "" {
		return custos.Errorf(custos.Invalid, "request has no id")
	}
	v, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	err = s.write(ctx, false, func(q querier) error {
		_, err := q.Exec(ctx, `INSERT INTO requests (tenant_id, id, record) VALUES ($1, $2, $3)
		ON CONFLICT (tenant_id, id) DO UPDATE SET record = excluded.record`, r.Tenant[:], r.ID, v)
		return err
	})
	return dbError("put request", err)
}

// Request returns one request.
func (s *Store) Request(ctx context.Context, t custos.TenantID, id string) (*custos.Request, error) {
	var v []byte
	err := s.pool.QueryRow(ctx, "SELECT record FROM requests WHERE tenant_id = $1 AND id = $2", t[:], id).Scan(&v)
	if err == pgx.ErrNoRows {
		return nil, custos.Errorf(custos.NotFound, "no request %q", id)
	}
	if err != nil {
		return nil, dbError("read request", err)
	}
	var r custos.Request
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("decode request: %w", err)
	}
	return &r, nil
}

// Requests calls fn for every request of a tenant, newest first (request
// ids begin with their creation time).
func (s *Store) Requests(ctx context.Context, t custos.TenantID, fn func(*custos.Request) bool) error {
	return s.pageText(ctx, "requests", "id", "record", t, true, func(v []byte) (bool, error) {
		var r custos.Request
		if err := json.Unmarshal(v, &r); err != nil {
			return false, fmt.Errorf("decode request: %w", err)
		}
		return fn(&r), nil
	})
}

// pageText pages through a tenant's rows of a table keyed by a text
// column, in key order (descending if desc), calling fn with the value
// column of each until it returns false.
func (s *Store) pageText(ctx context.Context, table, keyCol, valCol string, t custos.TenantID, desc bool, fn func(v []byte) (bool, error)) error {
	op, order := ">", "ASC"
	if desc {
		op, order = "<", "DESC"
	}
	first := fmt.Sprintf("SELECT %[2]s, %[3]s FROM %[1]s WHERE tenant_id = $1 ORDER BY %[2]s %[4]s LIMIT %[5]d", table, keyCol, valCol, order, pageSize)
	next := fmt.Sprintf("SELECT %[2]s, %[3]s FROM %[1]s WHERE tenant_id = $1 AND %[2]s %[6]s $2 ORDER BY %[2]s %[4]s LIMIT %[5]d", table, keyCol, valCol, order, pageSize, op)
	var last *string
	for {
		var rows pgx.Rows
		var err error
		if last == nil {
			rows, err = s.pool.Query(ctx, first, t[:])
		} else {
			rows, err = s.pool.Query(ctx, next, t[:], *last)
		}
		if err != nil {
			return dbError("list "+table, err)
		}
		type kv struct {
			k string
			v []byte
		}
		page, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (kv, error) {
			var x kv
			err := r.Scan(&x.k, &x.v)
			return x, err
		})
		if err != nil {
			return dbError("list "+table, err)
		}
		for _, x := range page {
			more, err := fn(x.v)
			if err != nil || !more {
				return err
			}
		}
		if len(page) < pageSize {
			return nil
		}
		last = &page[len(page)-1].k
	}
}

// PutCampaign stores a campaign durably. It refuses a definition in the
// clear: the store keeps only the sealed form.
func (s *Store) PutCampaign(ctx context.Context, c *custos.Campaign) error {
	switch {
	case c.ID == "":
		return custos.Errorf(custos.Invalid, "campaign has no id")
	case c.Definition != nil:
		return custos.Errorf(custos.Invalid, "campaign definition must reach the store sealed")
	}
	v, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode campaign: %w", err)
	}
	err = s.write(ctx, false, func(q querier) error {
		_, err := q.Exec(ctx, `INSERT INTO campaigns (tenant_id, id, record) VALUES ($1, $2, $3)
		ON CONFLICT (tenant_id, id) DO UPDATE SET record = excluded.record`, c.Tenant[:], c.ID, v)
		return err
	})
	return dbError("put campaign", err)
}

// Campaign returns one campaign, or custos.ErrNotFound.
func (s *Store) Campaign(ctx context.Context, t custos.TenantID, id string) (*custos.Campaign, error) {
	var v []byte
	if err := s.pool.QueryRow(ctx, "SELECT record FROM campaigns WHERE tenant_id = $1 AND id = $2", t[:], id).Scan(&v); err != nil {
		return nil, notFound("read campaign", err)
	}
	var c custos.Campaign
	if err := json.Unmarshal(v, &c); err != nil {
		return nil, fmt.Errorf("decode campaign: %w", err)
	}
	return &c, nil
}

// Campaigns calls fn for every campaign of a tenant, by id.
func (s *Store) Campaigns(ctx context.Context, t custos.TenantID, fn func(*custos.Campaign) bool) error {
	return s.pageText(ctx, "campaigns", "id", "record", t, false, func(v []byte) (bool, error) {
		var c custos.Campaign
		if err := json.Unmarshal(v, &c); err != nil {
			return false, fmt.Errorf("decode campaign: %w", err)
		}
		return fn(&c), nil
	})
}

const sqlPutSend = `INSERT INTO sends (tenant_id, subject_id, at, campaign, value) VALUES ($1, $2, $3, $4, $5)
	ON CONFLICT (tenant_id, subject_id, at, campaign) DO UPDATE SET value = excluded.value`

// PutSend stores a send record durably.
func (s *Store) PutSend(ctx context.Context, t custos.TenantID, rec custos.StoredSend) error {
	if rec.Campaign == "" {
		return custos.Errorf(custos.Invalid, "send record has no campaign")
	}
	err := s.write(ctx, false, func(q querier) error {
		_, err := q.Exec(ctx, sqlPutSend, t[:], rec.Subject[:], nanos(rec.Time), rec.Campaign, nz(rec.Value))
		return err
	})
	return dbError("put send record", err)
}

// sqlSendLock serialises capped sends to one subject until the end of the
// transaction, on every node: an advisory lock keyed by a hash of the
// tenant and subject (two subjects sharing a hash only wait for each
// other). A row lock would not do: the count reads rows that do not
// exist yet.
const sqlSendLock = `SELECT pg_advisory_xact_lock(hashtextextended('custos.sends/' || encode($1::bytea || $2::bytea, 'hex'), 0))`

// sqlCountSends counts, up to $5, the subject's send records of other
// campaigns at or after $3.
const sqlCountSends = `SELECT count(*) FROM (SELECT 1 FROM sends
	WHERE tenant_id = $1 AND subject_id = $2 AND at >= $3 AND campaign <> $4 LIMIT $5) c`

// PutSendCapped stores a send record unless the subject already has
// limit or more records of other campaigns at or after since: the lock,
// the count and the insert are one transaction.
func (s *Store) PutSendCapped(ctx context.Context, t custos.TenantID, rec custos.StoredSend, since time.Time, limit int) error {
	if rec.Campaign == "" {
		return custos.Errorf(custos.Invalid, "send record has no campaign")
	}
	err := s.write(ctx, limit >= 0, func(q querier) error {
		if limit >= 0 {
			if _, err := q.Exec(ctx, sqlSendLock, t[:], rec.Subject[:]); err != nil {
				return err
			}
			var n int
			if err := q.QueryRow(ctx, sqlCountSends, t[:], rec.Subject[:], nanos(since), rec.Campaign, limit).Scan(&n); err != nil {
				return err
			}
			if n >= limit {
				return custos.ErrCapReached
			}
		}
		_, err := q.Exec(ctx, sqlPutSend, t[:], rec.Subject[:], nanos(rec.Time), rec.Campaign, nz(rec.Value))
		return err
	})
	return dbError("put send record", err)
}

// Sends calls fn for the subject's send records at or after since.
func (s *Store) Sends(ctx context.Context, t custos.TenantID, sub custos.SubjectID, since time.Time, fn func(custos.StoredSend) (bool, error)) error {
	ss, err := s.sendsOf(ctx, t, [][]byte{sub[:]}, since)
	if err != nil {
		return err
	}
	for _, sd := range ss {
		more, err := fn(sd)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

func (s *Store) sendsOf(ctx context.Context, t custos.TenantID, subs [][]byte, since time.Time) ([]custos.StoredSend, error) {
	rows, err := s.pool.Query(ctx, `SELECT subject_id, at, campaign, value FROM sends
		WHERE tenant_id = $1 AND subject_id = ANY($2::bytea[]) AND at >= $3 ORDER BY subject_id, at, campaign`, t[:], subs, nanos(since))
	if err != nil {
		return nil, dbError("read send records", err)
	}
	defer rows.Close()
	var out []custos.StoredSend
	for rows.Next() {
		var sub, v []byte
		var at int64
		var camp string
		if err := rows.Scan(&sub, &at, &camp, &v); err != nil {
			return nil, dbError("read send records", err)
		}
		sid, err := id16(sub, "send subject")
		if err != nil {
			return nil, err
		}
		out = append(out, custos.StoredSend{Subject: custos.SubjectID(sid), Time: fromNanos(at), Campaign: camp, Value: nz(v)})
	}
	return out, dbError("read send records", rows.Err())
}

// EachAudience walks the tenant's subjects with a profile, a page at a
// time: one query for the profiles, one for their consents and one for
// their sends.
func (s *Store) EachAudience(ctx context.Context, t custos.TenantID, after custos.SubjectID, sendsSince time.Time, fn func(*custos.SubjectRecords) (bool, error)) error {
	last := afterSubject(after)
	for {
		rows, err := s.pool.Query(ctx, fmt.Sprintf(`SELECT subject_id, value FROM profiles
			WHERE tenant_id = $1 AND subject_id > $2 ORDER BY subject_id LIMIT %d`, pageSize/4), t[:], last)
		if err != nil {
			return dbError("walk audience", err)
		}
		type prof struct{ sub, v []byte }
		page, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (prof, error) {
			var p prof
			return p, r.Scan(&p.sub, &p.v)
		})
		if err != nil {
			return dbError("walk audience", err)
		}
		if len(page) == 0 {
			return nil
		}
		subs := make([][]byte, len(page))
		for i, p := range page {
			subs[i] = p.sub
		}
		cs, err := s.consentsOf(ctx, t, subs)
		if err != nil {
			return err
		}
		ss, err := s.sendsOf(ctx, t, subs, sendsSince)
		if err != nil {
			return err
		}
		var rec custos.SubjectRecords
		ci, si := 0, 0
		for _, p := range page {
			sid, err := id16(p.sub, "profile subject")
			if err != nil {
				return err
			}
			sub := custos.SubjectID(sid)
			rec.Profile = custos.StoredProfile{Subject: sub, Value: nz(p.v)}
			rec.Consents, rec.Sends = rec.Consents[:0], rec.Sends[:0]
			for ; ci < len(cs) && cs[ci].Subject == sub; ci++ {
				rec.Consents = append(rec.Consents, cs[ci])
			}
			for ; si < len(ss) && ss[si].Subject == sub; si++ {
				rec.Sends = append(rec.Sends, ss[si])
			}
			more, err := fn(&rec)
			if err != nil || !more {
				return err
			}
		}
		if len(page) < pageSize/4 {
			return nil
		}
		last = page[len(page)-1].sub
	}
}

// PutIncident stores an incident durably.
func (s *Store) PutIncident(ctx context.Context, in *custos.Incident) error {
	if in.ID == "" {
		return custos.Errorf(custos.Invalid, "incident has no id")
	}
	v, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode incident: %w", err)
	}
	// Under an incident's lease (ctx carries its fence) a superseded
	// holder's change is refused.
	return s.write(ctx, false, func(q querier) error {
		_, err := q.Exec(ctx, `INSERT INTO incidents (id, record) VALUES ($1, $2)
			ON CONFLICT (id) DO UPDATE SET record = excluded.record`, in.ID, v)
		return dbError("put incident", err)
	})
}

// Incident returns one incident.
func (s *Store) Incident(ctx context.Context, id string) (*custos.Incident, error) {
	var v []byte
	err := s.pool.QueryRow(ctx, "SELECT record FROM incidents WHERE id = $1", id).Scan(&v)
	if err == pgx.ErrNoRows {
		return nil, custos.Errorf(custos.NotFound, "no incident %q", id)
	}
	if err != nil {
		return nil, dbError("read incident", err)
	}
	var in custos.Incident
	if err := json.Unmarshal(v, &in); err != nil {
		return nil, fmt.Errorf("decode incident: %w", err)
	}
	return &in, nil
}

// Incidents returns every incident ordered by id.
func (s *Store) Incidents(ctx context.Context) ([]*custos.Incident, error) {
	rows, err := s.pool.Query(ctx, "SELECT record FROM incidents ORDER BY id")
	if err != nil {
		return nil, dbError("list incidents", err)
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, dbError("list incidents", err)
	}
	out := []*custos.Incident{}
	for _, v := range vs {
		var in custos.Incident
		if err := json.Unmarshal(v, &in); err != nil {
			return nil, fmt.Errorf("decode incident: %w", err)
		}
		out = append(out, &in)
	}
	return out, nil
}

// PutIncidentNotification stores a tenant's notification durably.
func (s *Store) PutIncidentNotification(ctx context.Context, n *custos.IncidentNotification) error {
	if n.Incident == "" {
		return custos.Errorf(custos.Invalid, "incident notification has no incident id")
	}
	v, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("encode incident notification: %w", err)
	}
	// Under a lease (an incident's, the incident mail sender's) a
	// superseded holder's record of a notice is refused, so it cannot
	// overwrite what the new holder recorded.
	return s.write(ctx, false, func(q querier) error {
		_, err := q.Exec(ctx, `INSERT INTO notifications (tenant_id, incident, record) VALUES ($1, $2, $3)
			ON CONFLICT (tenant_id, incident) DO UPDATE SET record = excluded.record`, n.Tenant[:], n.Incident, v)
		return dbError("put incident notification", err)
	})
}

// IncidentNotification returns a tenant's notification of an incident.
func (s *Store) IncidentNotification(ctx context.Context, t custos.TenantID, incident string) (*custos.IncidentNotification, error) {
	var v []byte
	err := s.pool.QueryRow(ctx, "SELECT record FROM notifications WHERE tenant_id = $1 AND incident = $2", t[:], incident).Scan(&v)
	if err == pgx.ErrNoRows {
		return nil, custos.Errorf(custos.NotFound, "no incident %q", incident)
	}
	if err != nil {
		return nil, dbError("read incident notification", err)
	}
	var n custos.IncidentNotification
	if err := json.Unmarshal(v, &n); err != nil {
		return nil, fmt.Errorf("decode incident notification: %w", err)
	}
	return &n, nil
}

// IncidentNotifications returns a tenant's notifications ordered by incident id.
func (s *Store) IncidentNotifications(ctx context.Context, t custos.TenantID) ([]*custos.IncidentNotification, error) {
	out := []*custos.IncidentNotification{}
	err := s.pageText(ctx, "notifications", "incident", "record", t, false, func(v []byte) (bool, error) {
		var n custos.IncidentNotification
		if err := json.Unmarshal(v, &n); err != nil {
			return false, fmt.Errorf("decode incident notification: %w", err)
		}
		out = append(out, &n)
		return true, nil
	})
	return out, err
}
