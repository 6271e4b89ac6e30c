package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	csegment "github.com/custos-dev/custos/internal/segment"
)

// processingRecord is the part of GET /api/v1/processing-record the tests read.
type processingRecord struct {
	TenantID  string `json:"tenant_id"`
	Region    string `json:"region"`
	Processor struct {
		Name, Contact string
	} `json:"processor"`
	Controller struct {
		Name string `json:"name"`
	} `json:"controller"`
	Processing []struct {
		Name    string `json:"name"`
		Purpose string `json:"purpose"`
	} `json:"categories_of_processing"`
	PersonalData []struct {
		Name string `json:"name"`
	} `json:"categories_of_personal_data"`
	Recipients []struct {
		Kind, Name, Region string
		Outside            bool `json:"outside_region"`
		Blocked            bool `json:"blocked"`
		Reason             string
	} `json:"recipients"`
	Transfers struct {
		Allowed      bool `json:"allowed"`
		Destinations []struct {
			Name string `json:"name"`
		} `json:"destinations"`
	} `json:"transfers_outside_region"`
	Retention struct {
		Days int `json:"event_retention_days"`
	} `json:"retention"`
	IP struct {
		Truncated bool `json:"truncated"`
		IPv4      int  `json:"ipv4_prefix_bits"`
		IPv6      int  `json:"ipv6_prefix_bits"`
	} `json:"ip_addresses"`
	Measures struct {
		EncryptionAtRest string `json:"encryption_at_rest"`
		TLS              struct {
			Enabled bool `json:"enabled"`
		} `json:"tls"`
		AuditLog string `json:"audit_log"`
	} `json:"security_measures"`
}

func (r processingRecord) categories() []string {
	var out []string
	for _, c := range r.PersonalData {
		out = append(out, c.Name)
	}
	return out
}

func (s *testServer) processingRecord(t *testing.T, secretKey string) (processingRecord, []byte) {
	t.Helper()
	r := s.do(t, "GET", "/api/v1/processing-record", nil, "Authorization", "Bearer "+secretKey)
	if r.status != http.StatusOK {
		t.Fatalf("GET /api/v1/processing-record: status %d, want 200; body %s", r.status, r.body)
	}
	var rec processingRecord
	if err := json.Unmarshal(r.body, &rec); err != nil {
		t.Fatalf("record of processing %s: %v", r.body, err)
	}
	return rec, r.body
}

// TestProcessingRecord checks the record of processing: processor and
// controller named, purposes listed, a category of personal data listed
// only after a field of it was ingested (trait names, never values),
// each tenant seeing only its own record, and the HTML form.
func TestProcessingRecord(t *testing.T) {
	t.Parallel()
	cfg := newServerConfig(t)
	cfg.extraArgs = []string{"--processor-name", "Hosting Example GmbH", "--processor-contact", "privacy@hosting.example"}
	srv := startServer(t, cfg)
	a := srv.createTenant(t, "record-a")
	b := srv.createTenant(t, "record-b")

	rec, _ := srv.processingRecord(t, a.SecretKey)
	if rec.TenantID != a.ID || rec.Region != "eu" || rec.Processor.Name != "Hosting Example GmbH" || rec.Processor.Contact != "privacy@hosting.example" ||
		rec.Controller.Name != "record-a" || rec.Retention.Days != 395 || !rec.IP.Truncated || rec.IP.IPv4 != 24 || rec.IP.IPv6 != 48 ||
		rec.Measures.TLS.Enabled || rec.Measures.EncryptionAtRest == "" || rec.Measures.AuditLog == "" || len(rec.PersonalData) != 0 || rec.Transfers.Allowed {
		t.Errorf("fresh record = %+v; want processor and controller named, region eu, 395 days, truncation /24 /48, no TLS, no categories, no transfers", rec)
	}
	var purposes []string
	for _, p := range rec.Processing {
		if p.Name == "campaigns" {
			purposes = append(purposes, p.Purpose)
		}
	}
	if !slices.Equal(purposes, []string{"analytics", "marketing", "personalization"}) || rec.Processing[0].Name != "ingestion" {
		t.Errorf("categories of processing = %+v; want ingestion, then campaigns by each declared purpose", rec.Processing)
	}

	anon := "rec-anon-" + randomHex(4)
	srv.ingest(t, a.WriteKey, "/v1/batch", []byte(`{"batch":[{"type":"track","event":"Viewed","anonymousId":"`+anon+`"}]}`))
	rec, _ = srv.processingRecord(t, a.SecretKey)
	if got := rec.categories(); !slices.Equal(got, []string{"behaviour.events", "identity.anonymous_id"}) {
		t.Errorf("after an anonymous track: categories %v, want behaviour.events and identity.anonymous_id only", got)
	}
	email, planValue := "rec-"+randomHex(4)+"@example.com", "plan-value-"+randomHex(6)
	srv.ingest(t, a.WriteKey, "/v1/batch", []byte(`{"batch":[{"type":"identify","userId":"rec-u","anonymousId":"`+anon+`",
		"traits":{"email":"`+email+`","plan":"`+planValue+`"},"context":{"ip":"203.0.113.77","userAgent":"Mozilla/5.0"}}]}`))
	rec, body := srv.processingRecord(t, a.SecretKey)
	for _, want := range []string{"contact.email", "identity.user_id", "profile.traits.plan", "device.ip_address", "device.user_agent"} {
		if !slices.Contains(rec.categories(), want) {
			t.Errorf("after an identify with an e-mail, a plan and a context: categories %v, missing %s", rec.categories(), want)
		}
	}
	assertNoneOf(t, "record of processing", body, []string{email, planValue, "203.0.113"})

	// Tenant B sees its own, empty record.
	recB, bodyB := srv.processingRecord(t, b.SecretKey)
	if recB.TenantID != b.ID || len(recB.PersonalData) != 0 {
		t.Errorf("tenant B's record = %s; want B's id and no categories", bodyB)
	}
	if r := srv.do(t, "GET", "/api/v1/processing-record", nil, "Authorization", "Bearer "+a.WriteKey); r.status != http.StatusForbidden {
		t.Errorf("record with the write key: status %d, want 403", r.status)
	}

	h := srv.do(t, "GET", "/api/v1/processing-record?format=html", nil, "Authorization", "Bearer "+a.SecretKey)
	if h.status != http.StatusOK || !strings.HasPrefix(h.header.Get("Content-Type"), "text/html") ||
		!strings.Contains(string(h.body), "Record of processing") || !strings.Contains(string(h.body), "contact.email") || !strings.Contains(string(h.body), "Hosting Example GmbH") {
		t.Errorf("HTML record: status %d, type %q, body %.300s", h.status, h.header.Get("Content-Type"), h.body)
	}
	if r := srv.do(t, "GET", "/api/v1/processing-record?format=xml", nil, "Authorization", "Bearer "+a.SecretKey); r.status != http.StatusBadRequest || !strings.Contains(r.errorMessage(), "format") {
		t.Errorf("format=xml: status %d %s, want 400 naming format", r.status, r.body)
	}
}

// TestIPTruncation checks that context.ip is stored truncated to /24 or
// /48, batch-level contexts included, and in full once the tenant turns
// keep_full_ip on; the setting shows in the record of processing.
func TestIPTruncation(t *testing.T) {
	t.Parallel()
	cfg := newServerConfig(t)
	srv := startServer(t, cfg)
	tn := srv.createTenant(t, "ip")
	anon := "ip-anon-" + randomHex(4)
	srv.ingest(t, tn.WriteKey, "/v1/batch", []byte(`{"context":{"ip":"198.51.100.201"},"batch":[
		{"type":"track","event":"A","anonymousId":"`+anon+`","messageId":"ip-1","timestamp":"2026-01-01T00:00:01Z","context":{"ip":"203.0.113.77"}},
		{"type":"track","event":"B","anonymousId":"`+anon+`","messageId":"ip-2","timestamp":"2026-01-01T00:00:02Z","context":{"ip":"2001:db8:abcd:12:3456:7890:abcd:ef01"}},
		{"type":"track","event":"C","anonymousId":"`+anon+`","messageId":"ip-3","timestamp":"2026-01-01T00:00:03Z"}]}`))
	srv.ingest(t, tn.WriteKey, "/v1/track", []byte(`{"type":"track","event":"D","anonymousId":"`+anon+`","messageId":"ip-4","timestamp":"2026-01-01T00:00:04Z","context":{"ip":"192.0.2.99"}}`))
	srv.patchSettings(t, tn.SecretKey, map[string]any{"keep_full_ip": true})
	srv.ingest(t, tn.WriteKey, "/v1/batch", []byte(`{"batch":[{"type":"track","event":"E","anonymousId":"`+anon+`","messageId":"ip-5","timestamp":"2026-01-01T00:00:05Z","context":{"ip":"192.0.2.99"}}]}`))
	p := srv.findProfile(t, tn.SecretKey, "anonymous_id", anon)
	want := map[string]string{"ip-1": "203.0.113.0", "ip-2": "2001:db8:abcd::", "ip-3": "198.51.100.0", "ip-4": "192.0.2.0", "ip-5": "192.0.2.99"}
	for id, e := range byMessageID(t, srv.events(t, tn.SecretKey, p.SubjectID, 0)) {
		var c struct{ IP string }
		mustDecode(t, e.Context, &c)
		if c.IP != want[id] {
			t.Errorf("event %s stored context.ip %q, want %q", id, c.IP, want[id])
		}
	}
	if rec, _ := srv.processingRecord(t, tn.SecretKey); rec.IP.Truncated {
		t.Errorf("record of processing says IPs are truncated after keep_full_ip was turned on")
	}
	srv.stop(t)
	// Sealed at rest, the addresses are not in the data directory either way.
	for _, v := range []string{"203.0.113.77", "198.51.100.201", "192.0.2.99"} {
		assertNotInDir(t, cfg.dir, v)
	}
}

// storedIP is context.ip as a tenant with the default settings has it
// stored: truncated.
func storedIP(ip string) string { return csegment.TruncateIP(ip) }
