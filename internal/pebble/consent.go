package pebble

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/custos-dev/custos"
)

// Consent records live under their subject's prefix (sub-kind 'k'), so the
// range delete of a subject — on erasure or when it is merged away —
// removes them with its events and profile.
const (
	subConsent     = 'k'
	consentKeyLen  = subjectPrefixLen + 1 + 8 + 8
	consentTimeOff = subjectPrefixLen + 1
)

func consentKey(dst []byte, t custos.TenantID, s custos.SubjectID, at time.Time, seq uint64) []byte {
	dst = subjectPrefix(dst, t, s)
	dst = append(dst, subConsent)
	dst = sortableTime(dst, at)
	return binary.BigEndian.AppendUint64(dst, seq)
}

// Consents calls fn for the subject's consent records, in key order (time,
// then sequence number).
func (s *Store) Consents(ctx context.Context, t custos.TenantID, sub custos.SubjectID, fn func(custos.StoredConsent) (bool, error)) error {
	lower := append(subjectPrefix(nil, t, sub), subConsent)
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(lower)})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != consentKeyLen {
			return fmt.Errorf("corrupt consent key of %d bytes", len(k))
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		more, err := fn(custos.StoredConsent{
			Subject: sub,
			Time:    decodeTime(k[consentTimeOff:]),
			Seq:     binary.BigEndian.Uint64(k[consentTimeOff+8:]),
			Value:   append([]byte(nil), v...),
		})
		if err != nil || !more {
			return err
		}
	}
	return it.Error()
}
