package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/custos-dev/custos"
)

// Campaigns live in the tenant's range; the record of each message sent
// lives in the subject's range, so an erasure deletes it with the rest:
//
//	0x02 <tenant> 'm' <campaign id>                       campaign JSON (definition sealed)
//	0x02 <tenant> 's' <subject> 'x' <time> <campaign id>  send record, sealed
const (
	kindCampaign = 'm'
	subSend      = 'x'
)

var _ custos.CampaignStore = (*Store)(nil)

func campaignKey(t custos.TenantID, id string) []byte {
	return append(append(tenantDataPrefix(nil, t), kindCampaign), id...)
}

func sendKey(t custos.TenantID, s custos.SubjectID, at time.Time, campaign string) []byte {
	k := append(subjectPrefix(nil, t, s), subSend)
	k = sortableTime(k, at)
	return append(k, campaign...)
}

// PutCampaign stores a campaign durably. It refuses a definition in the
// clear: the store keeps only the sealed form.
func (s *Store) PutCampaign(_ context.Context, c *custos.Campaign) error {
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
	return s.db.Set(campaignKey(c.Tenant, c.ID), v, pebble.Sync)
}

// Campaign returns one campaign.
func (s *Store) Campaign(_ context.Context, t custos.TenantID, id string) (*custos.Campaign, error) {
	var c custos.Campaign
	if err := s.get(campaignKey(t, id), func(v []byte) error { return decodeCampaign(v, &c) }); err != nil {
		return nil, err
	}
	return &c, nil
}

// Campaigns calls fn for every campaign of a tenant, by id.
func (s *Store) Campaigns(ctx context.Context, t custos.TenantID, fn func(*custos.Campaign) bool) error {
	lower := append(tenantDataPrefix(nil, t), kindCampaign)
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(lower)})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		var c custos.Campaign
		if err := decodeCampaign(it.Value(), &c); err != nil {
			return err
		}
		if !fn(&c) {
			return nil
		}
	}
	return it.Error()
}

func decodeCampaign(v []byte, c *custos.Campaign) error {
	if err := json.Unmarshal(v, c); err != nil {
		return fmt.Errorf("decode campaign: %w", err)
	}
	return nil
}

// PutSend stores a send record durably.
func (s *Store) PutSend(_ context.Context, t custos.TenantID, rec custos.StoredSend) error {
	if rec.Campaign == "" {
		return custos.Errorf(custos.Invalid, "send record has no campaign")
	}
	return s.db.Set(sendKey(t, rec.Subject, rec.Time, rec.Campaign), rec.Value, pebble.Sync)
}

// PutSendCapped stores a send record unless the subject already has
// limit or more records of other campaigns at or after since.
func (s *Store) PutSendCapped(ctx context.Context, t custos.TenantID, rec custos.StoredSend, since time.Time, limit int) error {
	if rec.Campaign == "" {
		return custos.Errorf(custos.Invalid, "send record has no campaign")
	}
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if limit >= 0 {
		n := 0
		err := s.Sends(ctx, t, rec.Subject, since, func(ss custos.StoredSend) (bool, error) {
			if ss.Campaign != rec.Campaign {
				n++
			}
			return n < limit, nil
		})
		if err != nil {
			return fmt.Errorf("count send records: %w", err)
		}
		if n >= limit {
			return custos.ErrCapReached
		}
	}
	return s.PutSend(ctx, t, rec)
}

// Sends calls fn for the subject's send records at or after since.
func (s *Store) Sends(ctx context.Context, t custos.TenantID, sub custos.SubjectID, since time.Time, fn func(custos.StoredSend) (bool, error)) error {
	lower := append(subjectPrefix(nil, t, sub), subSend)
	upper := prefixEnd(lower)
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return err
	}
	defer it.Close()
	head := len(lower)
	var ok bool
	if since.Before(time.Unix(0, 0)) {
		ok = it.First() // before 1970 nothing is stored; sortableTime needs int64 nanoseconds
	} else {
		ok = it.SeekGE(sortableTime(bytes.Clone(lower), since))
	}
	for ; ok; ok = it.Next() {
		k := it.Key()
		if len(k) <= head+8 {
			return fmt.Errorf("corrupt send key of %d bytes", len(k))
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		rec := custos.StoredSend{Subject: sub, Time: decodeTime(k[head : head+8]), Campaign: string(k[head+8:]), Value: bytes.Clone(v)}
		more, err := fn(rec)
		if err != nil || !more {
			return err
		}
	}
	return it.Error()
}

// EachAudience walks the tenant's subjects with one iterator: for each,
// it seeks past the events to the consent records ('k'), reads on through
// the profile ('p') and the send records ('x'), then seeks to the next
// subject. Subjects without a profile are skipped.
func (s *Store) EachAudience(ctx context.Context, t custos.TenantID, after custos.SubjectID, sendsSince time.Time, fn func(*custos.SubjectRecords) (bool, error)) error {
	it, ok, err := s.subjectWalk(ctx, t, after)
	if err != nil {
		return err
	}
	defer it.Close()
	var (
		rec      custos.SubjectRecords
		seek     []byte
		allSends = sendsSince.Before(time.Unix(0, 0))
	)
	for ok {
		if err := ctx.Err(); err != nil {
			return err
		}
		k := it.Key()
		if len(k) < subjectPrefixLen {
			return fmt.Errorf("corrupt subject key of %d bytes", len(k))
		}
		var sub custos.SubjectID
		copy(sub[:], k[tenantPrefixLen+1:subjectPrefixLen])
		rec.Profile, rec.Consents, rec.Sends = custos.StoredProfile{}, rec.Consents[:0], rec.Sends[:0]
		hasProfile := false
		seek = append(subjectPrefix(seek[:0], t, sub), subConsent)
		for ok = it.SeekGE(seek); ok; ok = it.Next() {
			k := it.Key()
			if len(k) <= subjectPrefixLen || [16]byte(k[tenantPrefixLen+1:subjectPrefixLen]) != sub {
				break // the next subject
			}
			switch k[subjectPrefixLen] {
			case subConsent:
				if len(k) != consentKeyLen {
					return fmt.Errorf("corrupt consent key of %d bytes", len(k))
				}
				v, err := it.ValueAndErr()
				if err != nil {
					return err
				}
				rec.Consents = append(rec.Consents, custos.StoredConsent{Subject: sub, Time: decodeTime(k[consentTimeOff:]),
					Seq: binary.BigEndian.Uint64(k[consentTimeOff+8:]), Value: bytes.Clone(v)})
			case subProfile:
				v, err := it.ValueAndErr()
				if err != nil {
					return err
				}
				rec.Profile, hasProfile = custos.StoredProfile{Subject: sub, Value: bytes.Clone(v)}, true
			case subSend:
				head := subjectPrefixLen + 1
				if len(k) <= head+8 {
					return fmt.Errorf("corrupt send key of %d bytes", len(k))
				}
				at := decodeTime(k[head : head+8])
				if !allSends && at.Before(sendsSince) {
					continue
				}
				v, err := it.ValueAndErr()
				if err != nil {
					return err
				}
				rec.Sends = append(rec.Sends, custos.StoredSend{Subject: sub, Time: at, Campaign: string(k[head+8:]), Value: bytes.Clone(v)})
			}
		}
		if err := it.Error(); err != nil {
			return err
		}
		if hasProfile {
			more, err := fn(&rec)
			if err != nil || !more {
				return err
			}
		}
	}
	return it.Error()
}
