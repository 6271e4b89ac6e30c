package pebble

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/custos-dev/custos"
)

// Audit chains live in the data database under a prefix of their own,
// beside the layout described in the package documentation:
//
//	0x03 <tenant> <seq, 8 bytes big-endian>       audit entry (JSON)
//
// Audit entries carry no personal data, so they are stored as plain JSON,
// not sealed. They sit outside the tenant's data range (0x02 <tenant>), so
// DeleteTenant and subject erasure leave the audit chain — the proof of
// what was done — in place. Big-endian sequence numbers make key order
// chain order.
//
// The value is stored and returned exactly as written, sequence number
// included: a value moved to another key is not renumbered on the way
// out, so a verifier sees the reordering instead of a silently "fixed"
// entry.
const (
	prefixAudit = 0x03

	auditKeyLen = 1 + 16 + 8
)

var _ custos.AuditStore = (*Store)(nil)

// auditLock serialises the check-then-set of appends to one chain, since
// Pebble has no conditional put. It is held until the entry is applied,
// not until it is synced, so appends to different chains share syncs.
func (s *Store) auditLock(t custos.TenantID) *sync.Mutex {
	return &s.auditLocks[t[0]%byte(len(s.auditLocks))]
}

func auditChainPrefix(dst []byte, t custos.TenantID) []byte {
	dst = append(dst, prefixAudit)
	return append(dst, t[:]...)
}

func auditKey(dst []byte, t custos.TenantID, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(auditChainPrefix(dst, t), seq)
}

// auditKeySeq returns the sequence number of an audit key.
func auditKeySeq(k []byte) (uint64, bool) {
	if len(k) != auditKeyLen || k[0] != prefixAudit {
		return 0, false
	}
	return binary.BigEndian.Uint64(k[1+16:]), true
}

// AppendAudit stores e under e.Seq in tenant t's chain, durably. It
// answers Conflict if the sequence number is taken.
func (s *Store) AppendAudit(ctx context.Context, t custos.TenantID, e *custos.AuditEntry) error {
	if e.Seq == 0 {
		return custos.Errorf(custos.Invalid, "audit sequence numbers start at 1")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	v, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode audit entry %d: %w", e.Seq, err)
	}
	key := auditKey(make([]byte, 0, auditKeyLen), t, e.Seq)

	b := s.db.NewBatch()
	defer b.Close()
	if err := b.Set(key, v, nil); err != nil {
		return err
	}
	if err := s.applyAudit(t, key, b); err != nil {
		return err
	}
	if err := b.SyncWait(); err != nil {
		return fmt.Errorf("sync audit entry %d: %w", e.Seq, err)
	}
	return nil
}

// applyAudit applies b, which writes key, unless key exists. The write is
// visible when it returns; b.SyncWait waits until it is durable.
func (s *Store) applyAudit(t custos.TenantID, key []byte, b *pebble.Batch) error {
	mu := s.auditLock(t)
	mu.Lock()
	defer mu.Unlock()
	seq, _ := auditKeySeq(key)
	switch _, closer, err := s.db.Get(key); {
	case err == nil:
		closer.Close()
		return custos.Errorf(custos.Conflict, "audit entry %d of %s already exists", seq, t)
	case !errors.Is(err, pebble.ErrNotFound):
		return fmt.Errorf("read audit entry %d: %w", seq, err)
	}
	if err := s.db.ApplyNoSyncWait(b, pebble.Sync); err != nil {
		return fmt.Errorf("write audit entry %d: %w", seq, err)
	}
	return nil
}

// AuditEntries returns up to limit entries of tenant t's chain after
// sequence number after, in order.
func (s *Store) AuditEntries(ctx context.Context, t custos.TenantID, after uint64, limit int) ([]custos.AuditEntry, error) {
	if limit <= 0 {
		return nil, custos.Errorf(custos.Invalid, "audit page limit must be positive, not %d", limit)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if after == math.MaxUint64 {
		return nil, nil
	}
	prefix := auditChainPrefix(nil, t)
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{
		LowerBound: auditKey(nil, t, after+1),
		UpperBound: prefixEnd(prefix),
	})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []custos.AuditEntry
	for ok := it.First(); ok && len(out) < limit; ok = it.Next() {
		e, err := decodeAudit(t, it)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, it.Error()
}

// LastAudit returns the newest entry of tenant t's chain.
func (s *Store) LastAudit(ctx context.Context, t custos.TenantID) (custos.AuditEntry, bool, error) {
	prefix := auditChainPrefix(nil, t)
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return custos.AuditEntry{}, false, err
	}
	defer it.Close()
	if !it.Last() {
		return custos.AuditEntry{}, false, it.Error()
	}
	e, err := decodeAudit(t, it)
	if err != nil {
		return custos.AuditEntry{}, false, err
	}
	return e, true, it.Error()
}

func decodeAudit(t custos.TenantID, it *pebble.Iterator) (custos.AuditEntry, error) {
	var e custos.AuditEntry
	seq, ok := auditKeySeq(it.Key())
	if !ok {
		return e, fmt.Errorf("corrupt audit key of %d bytes in chain %s", len(it.Key()), t)
	}
	v, err := it.ValueAndErr()
	if err != nil {
		return e, fmt.Errorf("read audit entry %d of %s: %w", seq, t, err)
	}
	if err := json.Unmarshal(v, &e); err != nil {
		return e, fmt.Errorf("decode audit entry %d of %s: %w", seq, t, err)
	}
	return e, nil
}
