// Package processing builds a tenant's record of processing activities
// (GDPR Art. 30(2)): what Custos, as processor, does for the tenant as
// controller — the categories of processing, the categories of personal
// data actually observed at ingestion, the recipients and where they are,
// transfers outside the tenant's region, retention, and the technical
// security measures in force. It renders the record as JSON and as a
// small HTML page for people.
package processing

import (
	"time"

	"github.com/custos-dev/custos"
)

// Processor names the processor: the operator running Custos.
type Processor struct {
	Name    string `json:"name"`
	Contact string `json:"contact"`
}

// Security is what the node knows of its own protections.
type Security struct {
	// TLS reports whether the node serves HTTPS; TLSMinVersion is the
	// oldest protocol version it accepts.
	TLS           bool
	TLSMinVersion string
}

// Category is one category of personal data observed, with when it was
// first stored.
type Category struct {
	Name      string    `json:"name"`
	FirstSeen time.Time `json:"first_seen"`
}

// Record is the record of processing of one tenant.
type Record struct {
	GeneratedAt time.Time  `json:"generated_at"`
	TenantID    string     `json:"tenant_id"`
	Region      string     `json:"region"`
	Processor   Processor  `json:"processor"`
	Controller  Controller `json:"controller"`
	// Processing are the categories of processing carried out.
	Processing []Activity `json:"categories_of_processing"`
	// PersonalData are the categories of personal data seen at ingestion.
	PersonalData []Category `json:"categories_of_personal_data"`
	// Recipients are where data goes, each with its region.
	Recipients []Destination `json:"recipients"`
	Transfers  Transfers     `json:"transfers_outside_region"`
	Retention  Retention     `json:"retention"`
	IP         IPHandling    `json:"ip_addresses"`
	Measures   Measures      `json:"security_measures"`
}

// Controller names the tenant as controller.
type Controller struct {
	Name       string `json:"name"`
	Contact    string `json:"contact"`
	DPOContact string `json:"dpo_contact,omitempty"`
}

// Activity is a category of processing; campaigns appear once per
// declared purpose.
type Activity struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Purpose     string `json:"purpose,omitempty"`
	LegalBasis  string `json:"legal_basis,omitempty"`
}

// Destination is a recipient of data, or a destination configured in the
// tenant's settings, with its region and whether sending there is
// currently blocked (outside the region while transfers are forbidden).
type Destination struct {
	Kind    string `json:"kind"` // recipient, delivery_webhook, smtp, security_contact_url
	Name    string `json:"name"`
	Region  string `json:"region"`
	Outside bool   `json:"outside_region"`
	Blocked bool   `json:"blocked"`
	Reason  string `json:"reason,omitempty"`
}

// Transfers states whether data may leave the tenant's region and which
// destinations are outside it.
type Transfers struct {
	Allowed      bool          `json:"allowed"`
	Destinations []Destination `json:"destinations"`
}

// Retention states how long data is kept.
type Retention struct {
	EventDays int    `json:"event_retention_days"`
	Events    string `json:"events"`
	Profiles  string `json:"profiles"`
}

// IPHandling states what is kept of IP addresses.
type IPHandling struct {
	Truncated  bool `json:"truncated"`
	IPv4Prefix int  `json:"ipv4_prefix_bits,omitempty"`
	IPv6Prefix int  `json:"ipv6_prefix_bits,omitempty"`
}

// Measures are the technical security measures in force (Art. 32).
type Measures struct {
	EncryptionAtRest string `json:"encryption_at_rest"`
	TLS              TLS    `json:"tls"`
	AuditLog         string `json:"audit_log"`
	Pseudonymisation string `json:"pseudonymisation"`
	Residency        string `json:"residency"`
}

// TLS is the node's transport security.
type TLS struct {
	Enabled    bool   `json:"enabled"`
	MinVersion string `json:"min_version,omitempty"`
}

// Inputs are what a record is built from.
type Inputs struct {
	Tenant     *custos.Tenant
	Processor  Processor
	Security   Security
	Observed   []Category
	Recipients []*custos.Recipient
	// IPv4Prefix and IPv6Prefix are the truncation lengths at ingestion.
	IPv4Prefix, IPv6Prefix int
	Now                    time.Time
}

// Build returns the record of processing of in.Tenant.
func Build(in Inputs) *Record {
	t := in.Tenant
	s := &t.Settings
	rec := &Record{
		GeneratedAt:  in.Now.UTC(),
		TenantID:     t.ID.String(),
		Region:       t.Region,
		Processor:    in.Processor,
		Controller:   Controller{Name: s.ControllerName, Contact: s.ControllerContact, DPOContact: s.DPOContact},
		PersonalData: in.Observed,
		Recipients:   []Destination{},
	}
	if rec.Controller.Name == "" {
		rec.Controller.Name = t.Name
	}
	if rec.PersonalData == nil {
		rec.PersonalData = []Category{}
	}
	rec.Processing = append(rec.Processing, Activity{Name: "ingestion",
		Description: "Collecting events and profile traits sent by the controller's apps, sites and servers (Segment tracking spec), resolving them to one data subject, and storing them encrypted"},
		Activity{Name: "data_subject_rights",
			Description: "Carrying out access, portability, erasure, rectification, restriction, suppression and objection requests, and telling recipients (Art. 19)"})
	for _, p := range s.EffectivePurposes() {
		rec.Processing = append(rec.Processing, Activity{Name: "campaigns",
			Description: "Selecting audiences and sending messages for this purpose: " + p.Description, Purpose: p.Name, LegalBasis: p.LegalBasis})
	}
	add := func(kind, name, region string) {
		d := Destination{Kind: kind, Name: name, Region: region, Outside: region != t.Region}
		if err := s.CheckDestination(t.Region, kind+" "+name, region); err != nil {
			d.Blocked, d.Reason = true, custos.ErrorMessage(err)
		}
		rec.Recipients = append(rec.Recipients, d)
	}
	for _, r := range in.Recipients {
		add("recipient", r.Name, r.Region)
	}
	if e := s.DeliveryWebhook; e != nil {
		add("delivery_webhook", hostOf(e.URL), e.Region)
	}
	if m := s.SMTP; m != nil {
		add("smtp", m.Host, m.Region)
	}
	if e := s.SecurityContactURL; e != nil {
		add("security_contact_url", hostOf(e.URL), e.Region)
	}
	rec.Transfers = Transfers{Allowed: s.TransfersAllowed(t.Region), Destinations: []Destination{}}
	for _, d := range rec.Recipients {
		if d.Outside {
			rec.Transfers.Destinations = append(rec.Transfers.Destinations, d)
		}
	}
	days := s.RetentionDays()
	rec.Retention = Retention{EventDays: days,
		Events:   "events older than the retention period are deleted by a sweep that runs at least hourly",
		Profiles: "a profile is deleted once its subject has no events left and no request activity within the retention period, unless a standing suppression, restriction or objection must be kept to be honoured"}
	rec.IP = IPHandling{Truncated: !s.KeepFullIP}
	if rec.IP.Truncated {
		rec.IP.IPv4Prefix, rec.IP.IPv6Prefix = in.IPv4Prefix, in.IPv6Prefix
	}
	rec.Measures = Measures{
		EncryptionAtRest: "AES-256-GCM with a separate data key per data subject (erasure destroys the key: crypto-shredding, backups included); records of the tenant sealed with a tenant key; keys wrapped by a master key kept apart from the data",
		TLS:              TLS{Enabled: in.Security.TLS},
		AuditLog:         "every action on personal data is recorded in a hash-chained, tamper-evident audit log with pseudonyms, never identifiers",
		Pseudonymisation: "identifiers are indexed only as keyed hashes (HMAC-SHA-256 with a tenant key)",
		Residency:        "data of this tenant is stored and processed only by nodes of region " + t.Region,
	}
	if in.Security.TLS {
		rec.Measures.TLS.MinVersion = in.Security.TLSMinVersion
	}
	return rec
}
