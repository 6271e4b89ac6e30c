package server

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/processing"
)

// TestProcessingRecordView: the API's view of a record of processing
// shows every field of processing.Record, under the same names, and
// nothing else, so a field added to the record must be added to the view
// (and documented) before it is shown.
func TestProcessingRecordView(t *testing.T) {
	for _, c := range []struct {
		name string
		in   processing.Inputs
	}{
		{"bare", processing.Inputs{Tenant: &custos.Tenant{ID: custos.NewTenantID(), Name: "acme", Region: "eu"}}},
		{"full", processing.Inputs{
			Tenant: &custos.Tenant{ID: custos.NewTenantID(), Name: "acme", Region: "eu", Settings: custos.Settings{
				ControllerName: "Acme GmbH", ControllerContact: "privacy@acme.example", DPOContact: "dpo@acme.example",
				DeliveryWebhook:    &custos.Endpoint{URL: "https://hooks.example/x", Region: "us"},
				SecurityContactURL: &custos.Endpoint{URL: "https://sec.example/y", Region: "eu"},
			}},
			Processor:  processing.Processor{Name: "Operator", Contact: "ops@example.com"},
			Security:   processing.Security{TLS: true, TLSMinVersion: "1.2"},
			Observed:   []processing.Category{{Name: "email", FirstSeen: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}},
			Recipients: []*custos.Recipient{{Name: "crm", Region: "us"}},
			IPv4Prefix: 24, IPv6Prefix: 48,
			Now: time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC),
		}},
	} {
		rec := processing.Build(c.in)
		want, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		got, err := json.Marshal(viewProcessingRecord(rec))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s: view\n%s\nwant the record's fields\n%s", c.name, got, want)
		}
	}
}
