package server

import (
	"log/slog"
	"net/http"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
	"github.com/custos-dev/custos/internal/tenants"
)

// settingsView is a tenant's settings with every default spelled out, so
// the tenant sees what is in force; the sealed SMTP password is never shown.
type settingsView struct {
	custos.Settings
	Region                 string `json:"region"`
	EffectiveRetentionDays int    `json:"effective_event_retention_days"`
	EffectiveDailyCap      int    `json:"effective_marketing_daily_cap"`
	TransfersAllowed       bool   `json:"effective_allow_transfers_outside_region"`
	SMTPPasswordSet        bool   `json:"smtp_password_set"`
}

func viewSettings(t *custos.Tenant) settingsView {
	s := t.Settings
	s.Purposes = s.EffectivePurposes()
	v := settingsView{Region: t.Region, EffectiveRetentionDays: s.RetentionDays(), EffectiveDailyCap: s.DailyCap(), TransfersAllowed: s.TransfersAllowed(t.Region)}
	if s.SMTP != nil {
		m := *s.SMTP
		v.SMTPPasswordSet = len(m.PasswordSealed) > 0
		m.Password, m.PasswordSealed = "", nil
		s.SMTP = &m
	}
	v.Settings = s
	return v
}

func handleGetSettings() tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		writeJSON(w, http.StatusOK, viewSettings(t))
	}
}

// handlePatchSettings merges the fields sent into the tenant's settings.
func handlePatchSettings(log *slog.Logger, reg *tenants.Registry, al *audit.Log) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		// The registry decodes the patch itself (it tells a field sent as
		// null from one left out); the body is read whole, or refused.
		body, err := readBody(w, r, maxBody)
		if err != nil {
			writeError(w, log, err)
			return
		}
		nt, fields, err := reg.UpdateSettings(r.Context(), t.ID, body)
		if err != nil {
			writeError(w, log, err)
			return
		}
		recordDone(r, log, al, t.ID, audit.Entry{Actor: audit.ActorTenant, Action: "settings.update", Details: map[string]any{"fields": fields}})
		writeJSON(w, http.StatusOK, viewSettings(nt))
	}
}
