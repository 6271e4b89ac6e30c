package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/custos-dev/custos"
	"github.com/jackc/pgx/v5"
)

// PutDelivery stores a delivery and its sealed body and secret durably,
// replacing one with the same id, unless ctx carries a fence that is no
// longer current (an outbox attempt recorded by a node whose lease was
// taken over). A delivery not yet attempted is notified
// (custos.ChangeOutbox), so the node sending the outbox sends it at once. The due index (deliveries_due) follows
// the row: it holds the delivery exactly while it is not final.
func (s *Store) PutDelivery(ctx context.Context, d *custos.Delivery, sealed []byte) error {
	if d.ID == "" {
		return custos.Errorf(custos.Invalid, "delivery has no id")
	}
	v, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode delivery: %w", err)
	}
	err = s.write(ctx, !d.Final && d.Attempts == 0, func(q querier) error {
		_, err := q.Exec(ctx, `INSERT INTO deliveries (tenant_id, id, request_id, created_at, next_at, final, record, sealed)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (tenant_id, id) DO UPDATE SET request_id = excluded.request_id, created_at = excluded.created_at,
			next_at = excluded.next_at, final = excluded.final, record = excluded.record, sealed = excluded.sealed`,
			d.Tenant[:], d.ID, d.RequestID, nanos(d.CreatedAt), nanos(d.NextAt), d.Final, v, nz(sealed))
		if err != nil || d.Final || d.Attempts > 0 {
			return err
		}
		// A new delivery (queued, not yet attempted): the node sending
		// the outbox is woken, in the same transaction, so only if this
		// commits.
		_, err = q.Exec(ctx, sqlNotify(custos.ChangeOutbox), d.Tenant[:])
		return err
	})
	return dbError("put delivery "+d.ID, err)
}

// DueDeliveries returns the deliveries q selects, with their sealed
// parts, in due order (next_at, tenant_id, then id, all compared as bytes:
// the deliveries_due index).
func (s *Store) DueDeliveries(ctx context.Context, q custos.DueQuery) ([]custos.Delivery, [][]byte, error) {
	sql := "SELECT record, sealed FROM deliveries WHERE NOT final AND next_at <= $1"
	args := []any{nanos(q.Now)}
	if a := q.After; a != nil {
		sql += fmt.Sprintf(" AND (next_at, tenant_id, id) > ($%d, $%d, $%d)", len(args)+1, len(args)+2, len(args)+3)
		args = append(args, nanos(a.NextAt), a.Tenant[:], a.ID)
	}
	if len(q.Skip) > 0 {
		skip := make([][]byte, len(q.Skip))
		for i := range q.Skip {
			skip[i] = q.Skip[i][:]
		}
		sql += fmt.Sprintf(" AND tenant_id <> ALL($%d::bytea[])", len(args)+1)
		args = append(args, skip)
	}
	sql += " ORDER BY next_at, tenant_id, id"
	if q.Limit > 0 {
		sql += fmt.Sprintf(" LIMIT $%d", len(args)+1)
		args = append(args, q.Limit)
	}
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, nil, dbError("read due deliveries", err)
	}
	defer rows.Close()
	var ds []custos.Delivery
	var sealed [][]byte
	for rows.Next() {
		var v, sb []byte
		if err := rows.Scan(&v, &sb); err != nil {
			return nil, nil, dbError("read due deliveries", err)
		}
		var d custos.Delivery
		if err := json.Unmarshal(v, &d); err != nil {
			return nil, nil, fmt.Errorf("decode delivery: %w", err)
		}
		ds, sealed = append(ds, d), append(sealed, nz(sb))
	}
	return ds, sealed, dbError("read due deliveries", rows.Err())
}

// Deliveries returns every delivery of a request, ordered by creation
// time, then id.
func (s *Store) Deliveries(ctx context.Context, t custos.TenantID, requestID string) ([]custos.Delivery, error) {
	rows, err := s.pool.Query(ctx, "SELECT record FROM deliveries WHERE tenant_id = $1 AND request_id = $2 ORDER BY created_at, id", t[:], requestID)
	if err != nil {
		return nil, dbError("read deliveries", err)
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, dbError("read deliveries", err)
	}
	var ds []custos.Delivery
	for _, v := range vs {
		var d custos.Delivery
		if err := json.Unmarshal(v, &d); err != nil {
			return nil, fmt.Errorf("decode delivery: %w", err)
		}
		ds = append(ds, d)
	}
	return ds, nil
}

// recipientRecord is a Recipient as stored: Recipient.Secret is kept out
// of its JSON, and a store must keep it.
type recipientRecord struct {
	ID        string          `json:"id"`
	Tenant    custos.TenantID `json:"tenant_id"`
	Name      string          `json:"name"`
	URL       string          `json:"url"`
	Region    string          `json:"region"`
	Secret    []byte          `json:"secret"`
	CreatedAt time.Time       `json:"created_at"`
	Kind      string          `json:"kind,omitempty"`
	Domain    string          `json:"domain,omitempty"`
	CertPEM   []byte          `json:"certificate_pem,omitempty"`
}

// PutRecipient stores a recipient durably, replacing one with the same id.
func (s *Store) PutRecipient(ctx context.Context, r *custos.Recipient) error {
	if r.ID == "" {
		return custos.Errorf(custos.Invalid, "recipient has no id")
	}
	v, err := json.Marshal(recipientRecord{
		ID: r.ID, Tenant: r.Tenant, Name: r.Name, URL: r.URL, Region: r.Region,
		Secret: r.Secret, CreatedAt: r.CreatedAt, Kind: r.Kind, Domain: r.Domain, CertPEM: r.CertificatePEM,
	})
	if err != nil {
		return fmt.Errorf("encode recipient: %w", err)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO recipients (tenant_id, id, created_at, record) VALUES ($1, $2, $3, $4)
		ON CONFLICT (tenant_id, id) DO UPDATE SET created_at = excluded.created_at, record = excluded.record`,
		r.Tenant[:], r.ID, nanos(r.CreatedAt), v)
	return dbError("put recipient", err)
}

// Recipients returns a tenant's recipients ordered by creation time, then id.
func (s *Store) Recipients(ctx context.Context, t custos.TenantID) ([]*custos.Recipient, error) {
	rows, err := s.pool.Query(ctx, "SELECT record FROM recipients WHERE tenant_id = $1 ORDER BY created_at, id", t[:])
	if err != nil {
		return nil, dbError("read recipients", err)
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, dbError("read recipients", err)
	}
	var rs []*custos.Recipient
	for _, v := range vs {
		var rec recipientRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return nil, fmt.Errorf("decode recipient: %w", err)
		}
		rs = append(rs, &custos.Recipient{
			ID: rec.ID, Tenant: rec.Tenant, Name: rec.Name, URL: rec.URL, Region: rec.Region,
			Secret: rec.Secret, CreatedAt: rec.CreatedAt, Kind: rec.Kind, Domain: rec.Domain, CertificatePEM: rec.CertPEM,
		})
	}
	return rs, nil
}

// DeleteRecipient removes a recipient durably; NotFound if absent.
func (s *Store) DeleteRecipient(ctx context.Context, t custos.TenantID, id string) error {
	tag, err := s.pool.Exec(ctx, "DELETE FROM recipients WHERE tenant_id = $1 AND id = $2", t[:], id)
	if err != nil {
		return dbError("delete recipient "+id, err)
	}
	if tag.RowsAffected() == 0 {
		return custos.Errorf(custos.NotFound, "no recipient %q", id)
	}
	return nil
}
