package pebble

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/custos-dev/custos"
)

// Deliveries and recipients live in the tenant's range, so deleting the
// tenant deletes them; the due index lives outside every tenant's range,
// ordered by time, so the sender finds what is due without a scan:
//
//	0x02 <tenant> 'o' <delivery id>            4-byte length, delivery JSON, sealed body and secret
//	0x02 <tenant> 'c' <recipient id>           recipient JSON (with its secret)
//	0x05 <next_at, 8 bytes> <tenant> <id>      empty: the delivery is due at next_at
//
// A delivery has an index key exactly while it is not final. The index
// keys of a deleted tenant outlive it (a time-ordered index has no tenant
// range to delete); DueDeliveries skips them and removes them.
const (
	kindDelivery  = 'o'
	kindRecipient = 'c'

	prefixDue = 0x05
)

var (
	_ custos.OutboxStore    = (*Store)(nil)
	_ custos.RecipientStore = (*Store)(nil)
)

func deliveryKey(t custos.TenantID, id string) []byte {
	return append(append(tenantDataPrefix(nil, t), kindDelivery), id...)
}

func recipientKey(t custos.TenantID, id string) []byte {
	return append(append(tenantDataPrefix(nil, t), kindRecipient), id...)
}

// dueTime encodes t for the due index like sortableTime, clamped to the
// nanoseconds an int64 holds (a zero NextAt, year 1, sorts first).
func dueTime(dst []byte, t time.Time) []byte {
	var n int64
	switch {
	case t.Before(time.Unix(0, math.MinInt64)):
		n = math.MinInt64
	case t.After(time.Unix(0, math.MaxInt64)):
		n = math.MaxInt64
	default:
		n = t.UnixNano()
	}
	return binary.BigEndian.AppendUint64(dst, uint64(n)^(1<<63))
}

func dueKey(at time.Time, t custos.TenantID, id string) []byte {
	k := dueTime([]byte{prefixDue}, at)
	k = append(k, t[:]...)
	return append(k, id...)
}

// parseDueKey reads the tenant and delivery id of a due index key.
func parseDueKey(k []byte) (t custos.TenantID, id string, ok bool) {
	const head = 1 + 8
	if len(k) <= head+len(t) || k[0] != prefixDue {
		return t, "", false
	}
	copy(t[:], k[head:])
	return t, string(k[head+len(t):]), true
}

func encodeDelivery(d *custos.Delivery, sealed []byte) ([]byte, error) {
	j, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("encode delivery: %w", err)
	}
	v := make([]byte, 0, 4+len(j)+len(sealed))
	v = binary.BigEndian.AppendUint32(v, uint32(len(j)))
	v = append(v, j...)
	return append(v, sealed...), nil
}

// decodeDelivery reads a delivery record; sealed aliases v.
func decodeDelivery(v []byte) (d custos.Delivery, sealed []byte, err error) {
	if len(v) < 4 || uint64(len(v)-4) < uint64(binary.BigEndian.Uint32(v)) {
		return d, nil, fmt.Errorf("corrupt delivery record of %d bytes", len(v))
	}
	n := 4 + int(binary.BigEndian.Uint32(v))
	if err := json.Unmarshal(v[4:n], &d); err != nil {
		return d, nil, fmt.Errorf("decode delivery: %w", err)
	}
	return d, v[n:], nil
}

// PutDelivery stores a delivery and its sealed body and secret durably,
// replacing one with the same id, and keeps the due index in step: the
// previous index key goes, and a new one is written unless d is final.
func (s *Store) PutDelivery(_ context.Context, d *custos.Delivery, sealed []byte) error {
	if d.ID == "" {
		return custos.Errorf(custos.Invalid, "delivery has no id")
	}
	v, err := encodeDelivery(d, sealed)
	if err != nil {
		return err
	}
	key := deliveryKey(d.Tenant, d.ID)

	s.outboxMu.Lock()
	defer s.outboxMu.Unlock()
	var oldDue []byte
	err = s.get(key, func(v []byte) error {
		old, _, err := decodeDelivery(v)
		if err == nil && !old.Final {
			oldDue = dueKey(old.NextAt, d.Tenant, d.ID)
		}
		return err
	})
	if err != nil && !errors.Is(err, custos.ErrNotFound) {
		return fmt.Errorf("read delivery %s: %w", d.ID, err)
	}
	var newDue []byte
	if !d.Final {
		newDue = dueKey(d.NextAt, d.Tenant, d.ID)
	}

	b := s.db.NewBatch()
	defer b.Close()
	if oldDue != nil && !bytes.Equal(oldDue, newDue) {
		b.Delete(oldDue, nil)
	}
	if newDue != nil {
		b.Set(newDue, nil, nil)
	}
	b.Set(key, v, nil)
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("put delivery %s: %w", d.ID, err)
	}
	return nil
}

// DueDeliveries returns the deliveries q selects, with their sealed
// parts, in due order (the order of the due index).
func (s *Store) DueDeliveries(ctx context.Context, q custos.DueQuery) ([]custos.Delivery, [][]byte, error) {
	snap := s.db.NewSnapshot()
	defer snap.Close()
	// The upper bound is exclusive: the first key due after now.
	upper := []byte{prefixDue + 1}
	if q.Now.Before(time.Unix(0, math.MaxInt64)) {
		upper = dueTime([]byte{prefixDue}, q.Now.Add(time.Nanosecond))
	}
	lower := []byte{prefixDue}
	if a := q.After; a != nil {
		// The first key after the cursor's own.
		lower = append(dueKey(a.NextAt, a.Tenant, a.ID), 0)
	}
	it, err := snap.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, nil, err
	}
	defer it.Close()

	var (
		ds     []custos.Delivery
		sealed [][]byte
		stale  [][]byte
	)
	for ok := it.First(); ok && (q.Limit <= 0 || len(ds) < q.Limit); ok = it.Next() {
		t, id, valid := parseDueKey(it.Key())
		if !valid {
			return nil, nil, fmt.Errorf("corrupt due index key of %d bytes", len(it.Key()))
		}
		if slices.Contains(q.Skip, t) {
			continue
		}
		var d custos.Delivery
		var sb []byte
		err := readerGet(snap, deliveryKey(t, id), func(v []byte) error {
			var err error
			d, sb, err = decodeDelivery(v)
			sb = bytes.Clone(sb)
			return err
		})
		switch {
		case errors.Is(err, custos.ErrNotFound):
			stale = append(stale, bytes.Clone(it.Key()))
			continue
		case err != nil:
			return nil, nil, fmt.Errorf("read delivery %s: %w", id, err)
		case d.Final || !bytes.Equal(dueKey(d.NextAt, t, id), it.Key()):
			stale = append(stale, bytes.Clone(it.Key()))
			continue
		}
		ds = append(ds, d)
		sealed = append(sealed, sb)
	}
	if err := it.Error(); err != nil {
		return nil, nil, err
	}
	if err := s.dropStaleDue(stale); err != nil {
		return nil, nil, err
	}
	return ds, sealed, nil
}

// dropStaleDue deletes due index keys that no delivery claims any more
// (its tenant was deleted), checking again under outboxMu so a delivery
// put since the snapshot keeps its key.
func (s *Store) dropStaleDue(keys [][]byte) error {
	if len(keys) == 0 {
		return nil
	}
	s.outboxMu.Lock()
	defer s.outboxMu.Unlock()
	b := s.db.NewBatch()
	defer b.Close()
	for _, k := range keys {
		t, id, _ := parseDueKey(k)
		err := s.get(deliveryKey(t, id), func(v []byte) error {
			d, _, err := decodeDelivery(v)
			if err == nil && !d.Final && bytes.Equal(dueKey(d.NextAt, t, id), k) {
				return errDueInUse
			}
			return err
		})
		switch {
		case errors.Is(err, errDueInUse):
		case err == nil || errors.Is(err, custos.ErrNotFound):
			b.Delete(k, nil)
		default:
			return fmt.Errorf("read delivery %s: %w", id, err)
		}
	}
	if b.Empty() {
		return nil
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("drop stale due index keys: %w", err)
	}
	return nil
}

var errDueInUse = errors.New("index key still in use")

// readerGet reads key from r (the DB or a snapshot) like Store.get.
func readerGet(r pebble.Reader, key []byte, fn func([]byte) error) error {
	v, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return custos.ErrNotFound
	}
	if err != nil {
		return err
	}
	defer closer.Close()
	return fn(v)
}

// Deliveries returns every delivery of a request, ordered by creation
// time, then id.
func (s *Store) Deliveries(ctx context.Context, t custos.TenantID, requestID string) ([]custos.Delivery, error) {
	lower := append(tenantDataPrefix(nil, t), kindDelivery)
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(lower)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var ds []custos.Delivery
	for ok := it.First(); ok; ok = it.Next() {
		d, _, err := decodeDelivery(it.Value())
		if err != nil {
			return nil, err
		}
		if d.RequestID == requestID {
			ds = append(ds, d)
		}
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	slices.SortFunc(ds, func(a, b custos.Delivery) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
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
func (s *Store) PutRecipient(_ context.Context, r *custos.Recipient) error {
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
	return s.db.Set(recipientKey(r.Tenant, r.ID), v, pebble.Sync)
}

// Recipients returns a tenant's recipients ordered by creation time, then id.
func (s *Store) Recipients(ctx context.Context, t custos.TenantID) ([]*custos.Recipient, error) {
	lower := append(tenantDataPrefix(nil, t), kindRecipient)
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(lower)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var rs []*custos.Recipient
	for ok := it.First(); ok; ok = it.Next() {
		var rec recipientRecord
		if err := json.Unmarshal(it.Value(), &rec); err != nil {
			return nil, fmt.Errorf("decode recipient: %w", err)
		}
		rs = append(rs, &custos.Recipient{
			ID: rec.ID, Tenant: rec.Tenant, Name: rec.Name, URL: rec.URL, Region: rec.Region,
			Secret: rec.Secret, CreatedAt: rec.CreatedAt, Kind: rec.Kind, Domain: rec.Domain, CertificatePEM: rec.CertPEM,
		})
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	slices.SortFunc(rs, func(a, b *custos.Recipient) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return rs, nil
}

// DeleteRecipient removes a recipient durably; NotFound if absent.
func (s *Store) DeleteRecipient(_ context.Context, t custos.TenantID, id string) error {
	key := recipientKey(t, id)
	if err := s.get(key, func([]byte) error { return nil }); errors.Is(err, custos.ErrNotFound) {
		return custos.Errorf(custos.NotFound, "no recipient %q", id)
	} else if err != nil {
		return fmt.Errorf("read recipient %s: %w", id, err)
	}
	if err := s.db.Delete(key, pebble.Sync); err != nil {
		return fmt.Errorf("delete recipient %s: %w", id, err)
	}
	return nil
}
