package server

import (
	"log/slog"
	"net/http"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/tenants"
)

// settingsView is a tenant's settings with every default spelled out, so
// the tenant sees what is in force; the SMTP password is never shown.
type settingsView struct {
	ControllerName            string            `json:"controller_name,omitempty"`
	ControllerContact         string            `json:"controller_contact,omitempty"`
	DPOContact                string            `json:"dpo_contact,omitempty"`
	Purposes                  []purposeView     `json:"purposes"`
	ConsentCategories         map[string]string `json:"consent_categories,omitempty"`
	CollectionRequiresConsent bool              `json:"collection_requires_consent"`
	MarketingDailyCap         int               `json:"marketing_daily_cap,omitempty"`
	OpenDSRReview             bool              `json:"opendsr_review"`
	DeliveryWebhook           *endpointView     `json:"delivery_webhook,omitempty"`
	SMTP                      *smtpView         `json:"smtp,omitempty"`
	SecurityContactURL        *endpointView     `json:"security_contact_url,omitempty"`
	SecurityContactEmail      string            `json:"security_contact_email,omitempty"`
	EventRetentionDays        int               `json:"event_retention_days,omitempty"`
	KeepFullIP                bool              `json:"keep_full_ip"`
	AllowTransfers            *bool             `json:"allow_transfers_outside_region,omitempty"`
	Region                    string            `json:"region"`
	EffectiveRetentionDays    int               `json:"effective_event_retention_days"`
	EffectiveDailyCap         int               `json:"effective_marketing_daily_cap"`
	TransfersAllowed          bool              `json:"effective_allow_transfers_outside_region"`
	SMTPPasswordSet           bool              `json:"smtp_password_set"`
}

// purposeView is a declared purpose of processing.
type purposeView struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	LegalBasis  string `json:"legal_basis"`
}

// endpointView is a URL Custos delivers to, and where it is.
type endpointView struct {
	URL    string `json:"url"`
	Region string `json:"region"`
}

// smtpView is the tenant's mail server, without its password.
type smtpView struct {
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Username string `json:"username,omitempty"`
	From     string `json:"from"`
	TLS      string `json:"tls,omitempty"`
	Region   string `json:"region"`
}

func viewEndpoint(e *custos.Endpoint) *endpointView {
	if e == nil {
		return nil
	}
	return &endpointView{URL: e.URL, Region: e.Region}
}

func viewSettings(t *custos.Tenant) settingsView {
	s := t.Settings
	v := settingsView{ControllerName: s.ControllerName, ControllerContact: s.ControllerContact, DPOContact: s.DPOContact,
		ConsentCategories: s.ConsentCategories, CollectionRequiresConsent: s.CollectionRequiresConsent,
		MarketingDailyCap: s.MarketingDailyCap, OpenDSRReview: s.OpenDSRReview, DeliveryWebhook: viewEndpoint(s.DeliveryWebhook),
		SecurityContactURL: viewEndpoint(s.SecurityContactURL), SecurityContactEmail: s.SecurityContactEmail,
		EventRetentionDays: s.EventRetentionDays, KeepFullIP: s.KeepFullIP, AllowTransfers: s.AllowTransfers,
		Region: t.Region, EffectiveRetentionDays: s.RetentionDays(), EffectiveDailyCap: s.DailyCap(), TransfersAllowed: s.TransfersAllowed(t.Region)}
	for _, p := range s.EffectivePurposes() {
		v.Purposes = append(v.Purposes, purposeView{Name: p.Name, Description: p.Description, LegalBasis: p.LegalBasis})
	}
	if m := s.SMTP; m != nil {
		v.SMTP = &smtpView{Host: m.Host, Port: m.Port, Username: m.Username, From: m.From, TLS: m.TLS, Region: m.Region}
		v.SMTPPasswordSet = len(m.PasswordSealed) > 0
	}
	return v
}

func handleGetSettings() tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		writeJSON(w, http.StatusOK, viewSettings(t))
	}
}

// handlePatchSettings merges the fields sent into the tenant's settings.
func handlePatchSettings(log *slog.Logger, reg *tenants.Audited) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		// The registry decodes the patch itself (it tells a field sent as
		// null from one left out); the body is read whole, or refused.
		body, err := readBody(w, r, maxBody)
		if err != nil {
			writeError(w, log, err)
			return
		}
		nt, err := reg.UpdateSettings(r.Context(), t.ID, body)
		if err != nil {
			writeError(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, viewSettings(nt))
	}
}
