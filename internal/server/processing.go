package server

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/processing"
	"github.com/custos-dev/custos/internal/segment"
	"github.com/custos-dev/custos/internal/subjects"
)

// handleProcessingRecord answers the tenant's record of processing (Art.
// 30(2)) as JSON, or as a page with ?format=html.
func handleProcessingRecord(log *slog.Logger, reader *subjects.Reader, recipients custos.RecipientStore, processor processing.Processor, security processing.Security, now func() time.Time) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		format := r.URL.Query().Get("format")
		if format != "" && format != "json" && format != "html" {
			writeError(w, log, custos.Errorf(custos.Invalid, "format %q must be json or html", format))
			return
		}
		observed, err := reader.Observed(r.Context(), t.ID)
		if err != nil {
			writeError(w, log, err)
			return
		}
		in := processing.Inputs{Tenant: t, Processor: processor, Security: security, Now: now(),
			IPv4Prefix: segment.IPv4Bits, IPv6Prefix: segment.IPv6Bits}
		for _, c := range observed {
			in.Observed = append(in.Observed, processing.Category{Name: c.Name, FirstSeen: c.FirstSeen})
		}
		if recipients != nil {
			if in.Recipients, err = recipients.Recipients(r.Context(), t.ID); err != nil {
				writeError(w, log, err)
				return
			}
		}
		rec := processing.Build(in)
		if format == "html" {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			if err := rec.WriteHTML(w); err != nil {
				log.Error("render record of processing", "tenant", t.ID, "err", err)
			}
			return
		}
		writeJSON(w, http.StatusOK, viewProcessingRecord(rec))
	}
}

// processingRecordView is the record of processing (processing.Record) as
// the API shows it.
type processingRecordView struct {
	GeneratedAt  time.Time         `json:"generated_at"`
	TenantID     string            `json:"tenant_id"`
	Region       string            `json:"region"`
	Processor    partyView         `json:"processor"`
	Controller   controllerView    `json:"controller"`
	Processing   []activityView    `json:"categories_of_processing"`
	PersonalData []dataCategory    `json:"categories_of_personal_data"`
	Recipients   []destinationView `json:"recipients"`
	Transfers    transfersView     `json:"transfers_outside_region"`
	Retention    retentionView     `json:"retention"`
	IP           ipHandlingView    `json:"ip_addresses"`
	Measures     measuresView      `json:"security_measures"`
}

// partyView names the processor.
type partyView struct {
	Name    string `json:"name"`
	Contact string `json:"contact"`
}

// controllerView names the tenant as controller.
type controllerView struct {
	Name       string `json:"name"`
	Contact    string `json:"contact"`
	DPOContact string `json:"dpo_contact,omitempty"`
}

// activityView is a category of processing.
type activityView struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Purpose     string `json:"purpose,omitempty"`
	LegalBasis  string `json:"legal_basis,omitempty"`
}

// dataCategory is a category of personal data observed at ingestion.
type dataCategory struct {
	Name      string    `json:"name"`
	FirstSeen time.Time `json:"first_seen"`
}

// destinationView is where data goes, with its region.
type destinationView struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Region  string `json:"region"`
	Outside bool   `json:"outside_region"`
	Blocked bool   `json:"blocked"`
	Reason  string `json:"reason,omitempty"`
}

// transfersView states whether data may leave the tenant's region.
type transfersView struct {
	Allowed      bool              `json:"allowed"`
	Destinations []destinationView `json:"destinations"`
}

// retentionView states how long data is kept.
type retentionView struct {
	EventDays int    `json:"event_retention_days"`
	Events    string `json:"events"`
	Profiles  string `json:"profiles"`
}

// ipHandlingView states what is kept of IP addresses.
type ipHandlingView struct {
	Truncated  bool `json:"truncated"`
	IPv4Prefix int  `json:"ipv4_prefix_bits,omitempty"`
	IPv6Prefix int  `json:"ipv6_prefix_bits,omitempty"`
}

// measuresView are the technical security measures in force (Art. 32).
type measuresView struct {
	EncryptionAtRest string  `json:"encryption_at_rest"`
	TLS              tlsView `json:"tls"`
	AuditLog         string  `json:"audit_log"`
	Pseudonymisation string  `json:"pseudonymisation"`
	Residency        string  `json:"residency"`
}

// tlsView is the node's transport security.
type tlsView struct {
	Enabled    bool   `json:"enabled"`
	MinVersion string `json:"min_version,omitempty"`
}

// convertAll converts each element of in, keeping a nil slice nil.
func convertAll[T, U any](in []T, f func(T) U) []U {
	if in == nil {
		return nil
	}
	out := make([]U, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}

func viewProcessingRecord(rec *processing.Record) processingRecordView {
	dest := func(d processing.Destination) destinationView { return destinationView(d) }
	m := rec.Measures
	return processingRecordView{
		GeneratedAt:  rec.GeneratedAt,
		TenantID:     rec.TenantID,
		Region:       rec.Region,
		Processor:    partyView(rec.Processor),
		Controller:   controllerView(rec.Controller),
		Processing:   convertAll(rec.Processing, func(a processing.Activity) activityView { return activityView(a) }),
		PersonalData: convertAll(rec.PersonalData, func(c processing.Category) dataCategory { return dataCategory(c) }),
		Recipients:   convertAll(rec.Recipients, dest),
		Transfers:    transfersView{Allowed: rec.Transfers.Allowed, Destinations: convertAll(rec.Transfers.Destinations, dest)},
		Retention:    retentionView(rec.Retention),
		IP:           ipHandlingView(rec.IP),
		Measures: measuresView{EncryptionAtRest: m.EncryptionAtRest, TLS: tlsView(m.TLS), AuditLog: m.AuditLog,
			Pseudonymisation: m.Pseudonymisation, Residency: m.Residency},
	}
}
