package custos

import (
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Settings are a tenant's choices about how Custos processes its data. The
// zero value of every field means the documented default, so a tenant that
// never changed anything gets the most protective behaviour.
type Settings struct {
	// ControllerName and ControllerContact identify the tenant as
	// controller in the record of processing (Art. 30(2)); DPOContact is its
	// data protection officer, when it has one.
	ControllerName    string `json:"controller_name,omitempty"`
	ControllerContact string `json:"controller_contact,omitempty"`
	DPOContact        string `json:"dpo_contact,omitempty"`

	// Purposes are the purposes of processing the tenant declares; empty
	// means DefaultPurposes.
	Purposes []Purpose `json:"purposes,omitempty"`
	// ConsentCategories maps a consent category named by an SDK (Segment's
	// categoryPreferences keys, RudderStack's consent ids) to a purpose.
	// Names are compared case-insensitively; an unmapped category whose
	// name equals a purpose maps to that purpose.
	ConsentCategories map[string]string `json:"consent_categories,omitempty"`
	// CollectionRequiresConsent drops, at ingestion, the events of subjects
	// without a current analytics grant.
	CollectionRequiresConsent bool `json:"collection_requires_consent"`
	// MarketingDailyCap is the most marketing messages a subject receives
	// per day (UTC); 0 means DefaultMarketingDailyCap, negative means none.
	MarketingDailyCap int `json:"marketing_daily_cap,omitempty"`

	// OpenDSRReview holds requests that arrive over OpenDSR as pending
	// until the tenant approves them (POST /api/v1/requests/{id}/approve);
	// by default they are carried out at once.
	OpenDSRReview bool `json:"opendsr_review"`

	// DeliveryWebhook receives campaign messages of the webhook channel.
	DeliveryWebhook *Endpoint `json:"delivery_webhook,omitempty"`
	// SMTP is the mail server campaign e-mail goes through.
	SMTP *SMTPSettings `json:"smtp,omitempty"`

	// SecurityContactURL receives breach notifications as signed webhooks;
	// SecurityContactEmail receives them by e-mail.
	SecurityContactURL   *Endpoint `json:"security_contact_url,omitempty"`
	SecurityContactEmail string    `json:"security_contact_email,omitempty"`

	// EventRetentionDays is how long events are kept; 0 means
	// DefaultEventRetentionDays.
	EventRetentionDays int `json:"event_retention_days,omitempty"`
	// KeepFullIP stores context.ip as sent; by default it is truncated to
	// /24 (IPv4) or /48 (IPv6) before it is stored.
	KeepFullIP bool `json:"keep_full_ip"`
	// AllowTransfers permits destinations (recipients, webhooks) outside
	// the tenant's region; nil means the region's default (forbidden for
	// eu, allowed elsewhere).
	AllowTransfers *bool `json:"allow_transfers_outside_region,omitempty"`

	// PrivacyCenter brands the tenant's privacy center at
	// /privacy/{tenant}; nil shows the tenant's name in neutral colours.
	PrivacyCenter *PrivacyCenter `json:"privacy_center,omitempty"`
}

// PrivacyCenter is how the privacy center presents the tenant to its data
// subjects. Every field is optional.
type PrivacyCenter struct {
	// Name is shown as the page title; "" shows the tenant's name.
	Name string `json:"name,omitempty"`
	// LogoURL is an https image shown beside the name.
	LogoURL string `json:"logo_url,omitempty"`
	// PrimaryColor and BackgroundColor are #rrggbb colours; the text on
	// each is chosen black or white for contrast.
	PrimaryColor    string `json:"primary_color,omitempty"`
	BackgroundColor string `json:"background_color,omitempty"`
	// PolicyURL links the tenant's privacy policy.
	PolicyURL string `json:"policy_url,omitempty"`
}

// Purpose is a declared purpose of processing.
type Purpose struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// LegalBasis is the Art. 6(1) basis: consent, contract,
	// legal_obligation, vital_interests, public_task or legitimate_interests.
	LegalBasis string `json:"legal_basis"`
}

// Endpoint is a destination Custos sends data to, with the region it is in.
type Endpoint struct {
	URL    string `json:"url"`
	Region string `json:"region"`
}

// SMTPSettings configure outgoing e-mail. The password is kept sealed with
// the tenant key and never shown again.
type SMTPSettings struct {
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Username string `json:"username,omitempty"`
	// Password is accepted on input only; stores keep PasswordSealed.
	Password       string `json:"password,omitempty"`
	PasswordSealed []byte `json:"password_sealed,omitempty"`
	From           string `json:"from"`
	// TLS is "starttls" (the default: STARTTLS required), "tls" (implicit
	// TLS) or "none" (only for a local test server).
	TLS string `json:"tls,omitempty"`
	// Region is where the mail server is.
	Region string `json:"region"`
}

// Defaults.
const (
	DefaultEventRetentionDays = 395 // 13 months
	DefaultMarketingDailyCap  = 3
)

// Channels a message can go through.
const (
	ChannelEmail   = "email"
	ChannelPush    = "push"
	ChannelSMS     = "sms"
	ChannelInApp   = "in_app"
	ChannelWebhook = "webhook"
	// ChannelWhatsApp is its own channel: an SMS opt-in does not cover it.
	ChannelWhatsApp = "whatsapp"
)

// Channels lists every channel.
var Channels = []string{ChannelEmail, ChannelPush, ChannelSMS, ChannelInApp, ChannelWebhook, ChannelWhatsApp}

// DefaultPurposes are the purposes of a tenant that declared none.
func DefaultPurposes() []Purpose {
	return []Purpose{
		{Name: "analytics", Description: "Measuring how the product is used", LegalBasis: "consent"},
		{Name: "marketing", Description: "Sending promotional messages", LegalBasis: "consent"},
		{Name: "personalization", Description: "Tailoring the product to the person", LegalBasis: "consent"},
	}
}

// EffectivePurposes returns the declared purposes, or the defaults.
func (s *Settings) EffectivePurposes() []Purpose {
	if len(s.Purposes) == 0 {
		return DefaultPurposes()
	}
	return s.Purposes
}

// Purpose returns the declared purpose with that name.
func (s *Settings) Purpose(name string) (Purpose, bool) {
	for _, p := range s.EffectivePurposes() {
		if p.Name == name {
			return p, true
		}
	}
	return Purpose{}, false
}

// RetentionDays returns the event retention in days.
func (s *Settings) RetentionDays() int {
	if s.EventRetentionDays <= 0 {
		return DefaultEventRetentionDays
	}
	return s.EventRetentionDays
}

// DailyCap returns the marketing messages a subject may receive per day;
// negative means no cap.
func (s *Settings) DailyCap() int {
	if s.MarketingDailyCap == 0 {
		return DefaultMarketingDailyCap
	}
	return s.MarketingDailyCap
}

// TransfersAllowed reports whether destinations outside region are allowed.
func (s *Settings) TransfersAllowed(region string) bool {
	if s.AllowTransfers != nil {
		return *s.AllowTransfers
	}
	return region != "eu"
}

// CheckDestination refuses a destination outside the tenant's region when
// transfers are forbidden, naming why.
func (s *Settings) CheckDestination(tenantRegion, what, destRegion string) error {
	if destRegion == "" {
		return Errorf(Invalid, "%s: region is required (where the destination processes the data)", what)
	}
	if destRegion != tenantRegion && !s.TransfersAllowed(tenantRegion) {
		return Errorf(Forbidden, "%s is in region %q but this tenant's data stays in %q: transfers outside the region are forbidden (setting allow_transfers_outside_region)", what, destRegion, tenantRegion)
	}
	return nil
}

var legalBases = map[string]bool{"consent": true, "contract": true, "legal_obligation": true, "vital_interests": true, "public_task": true, "legitimate_interests": true}

// Validate checks the settings, naming the first thing wrong.
func (s *Settings) Validate() error {
	seen := map[string]bool{}
	for i, p := range s.Purposes {
		if !validName(p.Name) {
			return Errorf(Invalid, "purposes[%d].name %q must be 1 to 64 lowercase letters, digits, '_' or '-'", i, p.Name)
		}
		if seen[p.Name] {
			return Errorf(Invalid, "purposes[%d].name %q is declared twice", i, p.Name)
		}
		seen[p.Name] = true
		if !legalBases[p.LegalBasis] {
			return Errorf(Invalid, "purposes[%d].legal_basis %q must be one of consent, contract, legal_obligation, vital_interests, public_task, legitimate_interests", i, p.LegalBasis)
		}
	}
	for k, v := range s.ConsentCategories {
		if _, ok := s.Purpose(v); !ok {
			return Errorf(Invalid, "consent_categories[%q] names purpose %q, which is not declared", k, v)
		}
	}
	if _, ok := s.Purpose("analytics"); s.CollectionRequiresConsent && !ok {
		return Errorf(Invalid, "collection_requires_consent needs a declared purpose named \"analytics\": its grant is what lets a subject's events be stored")
	}
	if s.EventRetentionDays < 0 || s.EventRetentionDays > 3650 {
		return Errorf(Invalid, "event_retention_days must be between 1 and 3650 (0 means the default, %d)", DefaultEventRetentionDays)
	}
	for _, e := range []struct {
		name string
		ep   *Endpoint
	}{{"delivery_webhook", s.DeliveryWebhook}, {"security_contact_url", s.SecurityContactURL}} {
		if e.ep == nil {
			continue
		}
		if err := checkURL(e.ep.URL); err != nil {
			return Errorf(Invalid, "%s.url: %v", e.name, err)
		}
	}
	if s.SecurityContactEmail != "" && !strings.Contains(s.SecurityContactEmail, "@") {
		return Errorf(Invalid, "security_contact_email %q is not an e-mail address", s.SecurityContactEmail)
	}
	if m := s.SMTP; m != nil {
		switch {
		case m.Host == "":
			return Errorf(Invalid, "smtp.host is required")
		case m.Port <= 0 || m.Port > 65535:
			return Errorf(Invalid, "smtp.port %d is not a port", m.Port)
		case !strings.Contains(m.From, "@"):
			return Errorf(Invalid, "smtp.from %q is not an e-mail address", m.From)
		case m.TLS != "" && m.TLS != "starttls" && m.TLS != "tls" && m.TLS != "none":
			return Errorf(Invalid, "smtp.tls %q must be starttls, tls or none", m.TLS)
		}
	}
	if pc := s.PrivacyCenter; pc != nil {
		if len(pc.Name) > 200 || !utf8.ValidString(pc.Name) {
			return Errorf(Invalid, "privacy_center.name must be valid UTF-8 of at most 200 bytes")
		}
		if pc.LogoURL != "" {
			if u, err := url.Parse(pc.LogoURL); err != nil || u.Scheme != "https" || u.Host == "" {
				return Errorf(Invalid, "privacy_center.logo_url %q must be an absolute https URL", pc.LogoURL)
			}
		}
		if pc.PolicyURL != "" {
			if err := checkURL(pc.PolicyURL); err != nil {
				return Errorf(Invalid, "privacy_center.policy_url: %v", err)
			}
		}
		for name, c := range map[string]string{"primary_color": pc.PrimaryColor, "background_color": pc.BackgroundColor} {
			if c != "" && !HexColor(c) {
				return Errorf(Invalid, "privacy_center.%s %q must be a colour in the form #rrggbb", name, c)
			}
		}
	}
	return nil
}

// HexColor reports whether s is a colour in the form #rrggbb.
func HexColor(s string) bool {
	if len(s) != 7 || s[0] != '#' {
		return false
	}
	for _, c := range s[1:] {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
			return false
		}
	}
	return true
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q must be an absolute http or https URL", s)
	}
	return nil
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' && c != '-' {
			return false
		}
	}
	return true
}
