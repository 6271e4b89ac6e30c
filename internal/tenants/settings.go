package tenants

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/urlpolicy"
)

var smtpPasswordRecord = []byte("settings/smtp-password")

// UpdateSettings applies a JSON merge patch to a tenant's settings: the
// fields present in patch replace the current ones, the rest stay. An
// SMTP password in the patch is sealed with the tenant key before it is
// stored. It returns the tenant as stored and the names of the top-level
// fields the patch set.
func (r *Registry) UpdateSettings(ctx context.Context, id custos.TenantID, patch []byte) (*custos.Tenant, []string, error) {
	t, err := r.store.Tenant(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(patch, &fields); err != nil {
		return nil, nil, custos.Errorf(custos.Invalid, "settings: body must be a JSON object: %v", err)
	}
	next := t.Settings
	if next.SMTP != nil {
		smtp := *next.SMTP
		next.SMTP = &smtp
	}
	if _, ok := fields["consent_categories"]; ok {
		// A map would be merged key by key; the patch gives the whole map.
		next.ConsentCategories = nil
	}
	dec := json.NewDecoder(bytes.NewReader(patch))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&next); err != nil {
		return nil, nil, custos.Errorf(custos.Invalid, "settings: %v", err)
	}
	if m := next.SMTP; m != nil {
		if len(m.PasswordSealed) > 0 && (t.Settings.SMTP == nil || !bytes.Equal(m.PasswordSealed, t.Settings.SMTP.PasswordSealed)) {
			return nil, nil, custos.Errorf(custos.Invalid, "settings: smtp.password_sealed cannot be set; send smtp.password")
		}
		if m.Password != "" {
			sealed, err := r.ring.SealTenant(id, smtpPasswordRecord, []byte(m.Password))
			if err != nil {
				return nil, nil, fmt.Errorf("seal smtp password: %w", err)
			}
			m.Password, m.PasswordSealed = "", sealed
		}
	}
	if err := next.Validate(); err != nil {
		return nil, nil, err
	}
	if err := checkDestinations(t.Region, &next, fields); err != nil {
		return nil, nil, err
	}
	if err := r.checkHosts(&next, fields); err != nil {
		return nil, nil, err
	}
	t.Settings = next
	if err := r.store.UpdateTenant(ctx, t); err != nil {
		return nil, nil, err
	}
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	slices.Sort(names)
	return t, names, r.reload(ctx)
}

// SMTPPassword opens the tenant's sealed SMTP password ("" when none).
func (r *Registry) SMTPPassword(t *custos.Tenant) (string, error) {
	m := t.Settings.SMTP
	if m == nil || len(m.PasswordSealed) == 0 {
		return "", nil
	}
	p, err := r.ring.OpenTenant(t.ID, smtpPasswordRecord, m.PasswordSealed)
	if err != nil {
		return "", fmt.Errorf("open smtp password: %w", err)
	}
	return string(p), nil
}

// checkDestinations gives each destination the patch sets a region (the
// tenant's, when none is named) and refuses one outside the tenant's
// region while transfers are forbidden, naming it. Destinations set
// earlier are not checked again: forbidding transfers later blocks them
// where data would leave (delivery), and the record of processing shows
// them as blocked.
func checkDestinations(region string, s *custos.Settings, patched map[string]json.RawMessage) error {
	for _, d := range []struct {
		what   string
		region *string
	}{
		{"delivery_webhook", regionOf(s.DeliveryWebhook)},
		{"security_contact_url", regionOf(s.SecurityContactURL)},
		{"smtp", smtpRegion(s.SMTP)},
	} {
		if _, set := patched[d.what]; !set || d.region == nil {
			continue
		}
		if *d.region == "" {
			*d.region = region
		}
		if err := s.CheckDestination(region, d.what, *d.region); err != nil {
			return err
		}
	}
	return nil
}

func regionOf(e *custos.Endpoint) *string {
	if e == nil {
		return nil
	}
	return &e.Region
}

func smtpRegion(m *custos.SMTPSettings) *string {
	if m == nil {
		return nil
	}
	return &m.Region
}

// checkHosts asks the registry's URLHost check about the destinations the
// patch sets; destinations set earlier are guarded when called.
func (r *Registry) checkHosts(s *custos.Settings, patched map[string]json.RawMessage) error {
	if r.urlHost == nil {
		return nil
	}
	for _, e := range []struct {
		name string
		ep   *custos.Endpoint
	}{{"delivery_webhook", s.DeliveryWebhook}, {"security_contact_url", s.SecurityContactURL}} {
		if _, ok := patched[e.name]; !ok || e.ep == nil {
			continue
		}
		if _, err := (urlpolicy.Policy{Host: r.urlHost}).Check(e.name+".url", e.ep.URL); err != nil {
			return custos.Errorf(custos.Invalid, "%v", err)
		}
	}
	if _, ok := patched["smtp"]; ok && s.SMTP != nil {
		if err := r.urlHost(s.SMTP.Host); err != nil {
			return custos.Errorf(custos.Invalid, "smtp.host: %v", err)
		}
	}
	return nil
}
