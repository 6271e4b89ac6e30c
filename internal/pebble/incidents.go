package pebble

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/custos-dev/custos"
)

// Incidents are the operator's records, outside every tenant's range;
// a tenant's notifications live in its range, so deleting the tenant
// deletes them:
//
//	0x06 <incident id>                   incident JSON (no personal data)
//	0x02 <tenant> 'n' <incident id>      notification JSON (no personal data)
const (
	prefixIncident   = 0x06
	kindNotification = 'n'
)

var _ custos.IncidentStore = (*Store)(nil)

func incidentKey(id string) []byte {
	return append([]byte{prefixIncident}, id...)
}

func notificationKey(t custos.TenantID, incident string) []byte {
	return append(append(tenantDataPrefix(nil, t), kindNotification), incident...)
}

// PutIncident stores an incident durably.
func (s *Store) PutIncident(_ context.Context, in *custos.Incident) error {
	if in.ID == "" {
		return custos.Errorf(custos.Invalid, "incident has no id")
	}
	v, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode incident: %w", err)
	}
	return s.db.Set(incidentKey(in.ID), v, pebble.Sync)
}

// Incident returns one incident.
func (s *Store) Incident(_ context.Context, id string) (*custos.Incident, error) {
	var in custos.Incident
	err := s.get(incidentKey(id), func(v []byte) error { return decodeRecord(v, &in, "incident") })
	if errors.Is(err, custos.ErrNotFound) {
		return nil, custos.Errorf(custos.NotFound, "no incident %q", id)
	}
	if err != nil {
		return nil, err
	}
	return &in, nil
}

// Incidents returns every incident ordered by id.
func (s *Store) Incidents(ctx context.Context) ([]*custos.Incident, error) {
	out := []*custos.Incident{}
	err := s.scanValues(ctx, []byte{prefixIncident}, func(v []byte) error {
		var in custos.Incident
		if err := decodeRecord(v, &in, "incident"); err != nil {
			return err
		}
		out = append(out, &in)
		return nil
	})
	return out, err
}

// PutIncidentNotification stores a tenant's notification durably.
func (s *Store) PutIncidentNotification(_ context.Context, n *custos.IncidentNotification) error {
	if n.Incident == "" {
		return custos.Errorf(custos.Invalid, "incident notification has no incident id")
	}
	v, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("encode incident notification: %w", err)
	}
	return s.db.Set(notificationKey(n.Tenant, n.Incident), v, pebble.Sync)
}

// IncidentNotification returns a tenant's notification of an incident.
func (s *Store) IncidentNotification(_ context.Context, t custos.TenantID, incident string) (*custos.IncidentNotification, error) {
	var n custos.IncidentNotification
	err := s.get(notificationKey(t, incident), func(v []byte) error { return decodeRecord(v, &n, "incident notification") })
	if errors.Is(err, custos.ErrNotFound) {
		return nil, custos.Errorf(custos.NotFound, "no incident %q", incident)
	}
	if err != nil {
		return nil, err
	}
	return &n, nil
}

// IncidentNotifications returns a tenant's notifications ordered by incident id.
func (s *Store) IncidentNotifications(ctx context.Context, t custos.TenantID) ([]*custos.IncidentNotification, error) {
	out := []*custos.IncidentNotification{}
	err := s.scanValues(ctx, append(tenantDataPrefix(nil, t), kindNotification), func(v []byte) error {
		var n custos.IncidentNotification
		if err := decodeRecord(v, &n, "incident notification"); err != nil {
			return err
		}
		out = append(out, &n)
		return nil
	})
	return out, err
}

// scanValues calls fn with the value of every key with the prefix, in key order.
func (s *Store) scanValues(ctx context.Context, prefix []byte, fn func(v []byte) error) error {
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		if err := fn(it.Value()); err != nil {
			return err
		}
	}
	return it.Error()
}

func decodeRecord(v []byte, out any, what string) error {
	if err := json.Unmarshal(v, out); err != nil {
		return fmt.Errorf("decode %s: %w", what, err)
	}
	return nil
}
