package tenants

import (
	"context"
	"log/slog"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
)

// Audited makes the changes to tenants that the APIs offer, each followed
// by its audit entry: in the operator's chain and the tenant's for the
// operator's changes, in the tenant's for its settings. A change cannot be
// undone once made, so an audit entry that fails after it is logged, not
// returned.
type Audited struct {
	reg   *Registry
	audit *audit.Log
	log   *slog.Logger
	actor string // "": the API's actor of each change
}

// As returns an Audited whose entries name actor (a person in the
// console) instead of the API's actor.
func (a *Audited) As(actor string) *Audited {
	c := *a
	c.actor = actor
	return &c
}

func (a *Audited) by(api string) string {
	if a.actor != "" {
		return a.actor
	}
	return api
}

// NewAudited returns an Audited over reg, auditing to al and logging
// failed audit entries to log.
func NewAudited(reg *Registry, al *audit.Log, log *slog.Logger) *Audited {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Audited{reg: reg, audit: al, log: log}
}

// record writes e to each chain, logging a failure.
func (a *Audited) record(ctx context.Context, e audit.Entry, chains ...custos.TenantID) {
	for _, c := range chains {
		if _, err := a.audit.Record(ctx, c, e); err != nil {
			a.log.Error("audit entry not recorded", "action", e.Action, "tenant", c, "err", err)
		}
	}
}

// Create creates a tenant (Registry.Create) and audits it.
func (a *Audited) Create(ctx context.Context, name, region string) (*custos.Tenant, Keys, error) {
	t, keys, err := a.reg.Create(ctx, name, region)
	if err != nil {
		return nil, Keys{}, err
	}
	a.log.Info("tenant created", "tenant", t.ID, "region", t.Region)
	a.record(ctx, audit.Entry{Actor: a.by(audit.ActorOperator), Action: "tenant.create",
		Details: map[string]string{"tenant": t.ID.String(), "region": t.Region}}, custos.OperatorChain, t.ID)
	return t, keys, nil
}

// Rotate replaces a tenant's keys (Registry.Rotate) and audits it.
func (a *Audited) Rotate(ctx context.Context, id custos.TenantID) (*custos.Tenant, Keys, error) {
	t, keys, err := a.reg.Rotate(ctx, id)
	if err != nil {
		return nil, Keys{}, err
	}
	a.log.Info("tenant keys rotated", "tenant", t.ID)
	a.record(ctx, audit.Entry{Actor: a.by(audit.ActorOperator), Action: "tenant.keys.rotate",
		Details: map[string]string{"tenant": t.ID.String()}}, custos.OperatorChain, t.ID)
	return t, keys, nil
}

// SetRateLimits sets a tenant's own rate limits (Registry.SetRateLimits)
// and audits them.
func (a *Audited) SetRateLimits(ctx context.Context, id custos.TenantID, rl *custos.RateLimits) (*custos.Tenant, error) {
	t, err := a.reg.SetRateLimits(ctx, id, rl)
	if err != nil {
		return nil, err
	}
	details := map[string]any{"tenant": id.String()}
	if t.RateLimits != nil {
		details["ingest_per_second"], details["ingest_burst"] = t.RateLimits.IngestPerSecond, t.RateLimits.IngestBurst
		details["api_per_second"], details["api_burst"] = t.RateLimits.APIPerSecond, t.RateLimits.APIBurst
	}
	a.log.Info("tenant rate limits set", "tenant", id)
	a.record(ctx, audit.Entry{Actor: audit.ActorOperator, Action: "tenant.rate_limits.set", Details: details}, custos.OperatorChain, id)
	return t, nil
}

// Delete deletes a tenant (Registry.Delete) and audits it.
func (a *Audited) Delete(ctx context.Context, id custos.TenantID) error {
	if err := a.reg.Delete(ctx, id); err != nil {
		return err
	}
	a.log.Info("tenant deleted", "tenant", id)
	a.record(ctx, audit.Entry{Actor: a.by(audit.ActorOperator), Action: "tenant.delete",
		Details: map[string]string{"tenant": id.String()}}, id, custos.OperatorChain)
	return nil
}

// UpdateSettings merges a tenant's patch into its settings
// (Registry.UpdateSettings) and audits the fields it changed.
func (a *Audited) UpdateSettings(ctx context.Context, id custos.TenantID, patch []byte) (*custos.Tenant, error) {
	t, fields, err := a.reg.UpdateSettings(ctx, id, patch)
	if err != nil {
		return nil, err
	}
	a.record(ctx, audit.Entry{Actor: a.by(audit.ActorTenant), Action: "settings.update", Details: map[string]any{"fields": fields}}, id)
	return t, nil
}

// AddConsoleUser lets a person into the tenant's console
// (Registry.AddConsoleUser) and audits it.
func (a *Audited) AddConsoleUser(ctx context.Context, id custos.TenantID, name, password string, admin bool) error {
	if err := a.reg.AddConsoleUser(ctx, id, name, password, admin); err != nil {
		return err
	}
	a.record(ctx, audit.Entry{Actor: a.by(audit.ActorTenant), Action: "console.user.create",
		Details: map[string]any{"user": name, "admin": admin}}, id)
	return nil
}

// RemoveConsoleUser removes a console user (Registry.RemoveConsoleUser)
// and audits it.
func (a *Audited) RemoveConsoleUser(ctx context.Context, id custos.TenantID, name string) error {
	if err := a.reg.RemoveConsoleUser(ctx, id, name); err != nil {
		return err
	}
	a.record(ctx, audit.Entry{Actor: a.by(audit.ActorTenant), Action: "console.user.delete", Details: map[string]any{"user": name}}, id)
	return nil
}

// SetConsoleTOTP sets or clears a user's second factor
// (Registry.SetConsoleTOTP) and audits it.
func (a *Audited) SetConsoleTOTP(ctx context.Context, id custos.TenantID, name string, secret []byte) error {
	if err := a.reg.SetConsoleTOTP(ctx, id, name, secret); err != nil {
		return err
	}
	a.record(ctx, audit.Entry{Actor: a.by(audit.ActorTenant), Action: "console.user.totp",
		Details: map[string]any{"user": name, "enabled": secret != nil}}, id)
	return nil
}
