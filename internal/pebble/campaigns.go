package pebble

import (
	"bytes"
	"context"
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
