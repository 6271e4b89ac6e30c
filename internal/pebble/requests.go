package pebble

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/custos-dev/custos"
)

// Requests and subject flags live in the tenant's range beside its data
// (so deleting a tenant deletes them) but outside every subject's range
// (so a subject's erasure does not erase the record of the request):
//
//	0x02 <tenant> 'r' <request id>   request, JSON (no personal data)
//	0x02 <tenant> 'g' <subject>      subject flags, JSON
//	0x02 <tenant> 't' <id hash>      erasure tombstone, JSON
const (
	kindRequest   = 'r'
	kindFlags     = 'g'
	kindTombstone = 't'
)

func requestKey(t custos.TenantID, id string) []byte {
	return append(append(tenantDataPrefix(nil, t), kindRequest), id...)
}

func flagsKey(dst []byte, t custos.TenantID, s custos.SubjectID) []byte {
	dst = append(tenantDataPrefix(dst, t), kindFlags)
	return append(dst, s[:]...)
}

// PutRequest stores a request durably.
func (s *Store) PutRequest(_ context.Context, r *custos.Request) error {
	if r.ID == "" {
		return custos.Errorf(custos.Invalid, "request has no id")
	}
	v, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	return s.db.Set(requestKey(r.Tenant, r.ID), v, pebble.Sync)
}

// Request returns one request.
func (s *Store) Request(_ context.Context, t custos.TenantID, id string) (*custos.Request, error) {
	var r custos.Request
	err := s.get(requestKey(t, id), func(v []byte) error { return decodeRequest(v, &r) })
	if errors.Is(err, custos.ErrNotFound) {
		return nil, custos.Errorf(custos.NotFound, "no request %q", id)
	}
	return &r, err
}

// Requests calls fn for every request of a tenant, newest first: request
// ids begin with their creation time.
func (s *Store) Requests(ctx context.Context, t custos.TenantID, fn func(*custos.Request) bool) error {
	lower := append(tenantDataPrefix(nil, t), kindRequest)
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(lower)})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.Last(); ok; ok = it.Prev() {
		var r custos.Request
		if err := decodeRequest(it.Value(), &r); err != nil {
			return err
		}
		if !fn(&r) {
			return nil
		}
	}
	return it.Error()
}

func decodeRequest(v []byte, r *custos.Request) error {
	if err := json.Unmarshal(v, r); err != nil {
		return fmt.Errorf("decode request: %w", err)
	}
	return nil
}

// eachOfKind calls fn for every record of one kind, of every tenant,
// visiting each tenant's range of that kind in turn and skipping the data
// between.
func (s *Store) eachOfKind(ctx context.Context, kind byte, fn func(t custos.TenantID, rest, value []byte) error) error {
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: []byte{prefixData}, UpperBound: []byte{prefixData + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); {
		k := it.Key()
		if len(k) < tenantPrefixLen+1 {
			return fmt.Errorf("corrupt key of %d bytes", len(k))
		}
		switch {
		case k[tenantPrefixLen] < kind:
			it.SeekGE(append(k[:tenantPrefixLen:tenantPrefixLen], kind))
			continue
		case k[tenantPrefixLen] > kind:
			it.SeekGE(prefixEnd(k[:tenantPrefixLen]))
			continue
		}
		var t custos.TenantID
		copy(t[:], k[1:tenantPrefixLen])
		if err := fn(t, k[tenantPrefixLen+1:], it.Value()); err != nil {
			return err
		}
		it.Next()
	}
	return it.Error()
}

// EachFlags calls fn for every subject with flags, of every tenant.
func (s *Store) EachFlags(ctx context.Context, fn func(custos.TenantID, custos.FlagsRecord) error) error {
	return s.eachOfKind(ctx, kindFlags, func(t custos.TenantID, rest, v []byte) error {
		rec := custos.FlagsRecord{}
		if len(rest) != len(rec.Subject) {
			return fmt.Errorf("corrupt flags key")
		}
		copy(rec.Subject[:], rest)
		if err := json.Unmarshal(v, &rec.Flags); err != nil {
			return fmt.Errorf("decode subject flags: %w", err)
		}
		return fn(t, rec)
	})
}

// EachTombstone calls fn for every erasure tombstone, of every tenant.
func (s *Store) EachTombstone(ctx context.Context, fn func(custos.TenantID, custos.TombstoneRecord) error) error {
	return s.eachOfKind(ctx, kindTombstone, func(t custos.TenantID, rest, v []byte) error {
		rec := custos.TombstoneRecord{}
		if len(rest) != len(rec.Hash) {
			return fmt.Errorf("corrupt tombstone key")
		}
		copy(rec.Hash[:], rest)
		if err := json.Unmarshal(v, &rec.Tombstone); err != nil {
			return fmt.Errorf("decode tombstone: %w", err)
		}
		return fn(t, rec)
	})
}

func tombstoneKey(dst []byte, t custos.TenantID, h custos.IdentifierHash) []byte {
	dst = append(tenantDataPrefix(dst, t), kindTombstone)
	return append(dst, h[:]...)
}
