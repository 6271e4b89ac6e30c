package main

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
)

func TestAuditTrailOfReadsOperatorActionsAndIngestion(t *testing.T) {
	cfg := newServerConfig(t)
	srv := startServer(t, cfg)
	tn := srv.createTenant(t, "audited")
	user := "audited-user-" + randomHex(4)
	srv.ingest(t, tn.WriteKey, "/v1/batch", batchBody(t, "", trackMessages(user, "au-"+randomHex(4), 3)))
	prof := srv.findProfile(t, tn.SecretKey, "user_id", user)
	srv.events(t, tn.SecretKey, prof.SubjectID, 10)

	entries := func(path, auth string) []custos.AuditEntry {
		t.Helper()
		res := srv.do(t, "GET", path, nil, "Authorization", "Bearer "+auth)
		if res.status != 200 {
			t.Fatalf("GET %s: status %d: %s", path, res.status, res.body)
		}
		var page struct{ Entries []custos.AuditEntry }
		if err := json.Unmarshal(res.body, &page); err != nil {
			t.Fatal(err)
		}
		return page.Entries
	}
	actions := func(es []custos.AuditEntry) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Action)
		}
		return out
	}

	got := entries("/api/v1/audit?limit=100", tn.SecretKey)
	for _, want := range []string{"tenant.create", "profile.read", "events.read"} {
		if !slices.Contains(actions(got), want) {
			t.Errorf("tenant chain actions = %v, want %s among them", actions(got), want)
		}
	}
	// Reads name the subject by pseudonym only, never by id or identifier.
	chain, _ := json.Marshal(got)
	for _, leak := range []string{user, prof.SubjectID} {
		if bytes.Contains(chain, []byte(leak)) {
			t.Errorf("the audit chain holds %q", leak)
		}
	}
	for _, e := range got {
		if e.Action == "profile.read" && e.Subject == "" {
			t.Errorf("profile.read entry %d has no subject pseudonym", e.Seq)
		}
	}
	if ops := actions(entries("/admin/v1/audit", cfg.token)); !slices.Contains(ops, "tenant.create") {
		t.Errorf("operator chain actions = %v, want tenant.create", ops)
	}
	// A tenant key reads its own chain only; a write key none.
	other := srv.createTenant(t, "other")
	for _, e := range entries("/api/v1/audit", other.SecretKey) {
		if e.Action == "profile.read" {
			t.Errorf("tenant B sees a profile.read entry: %+v", e)
		}
	}
	if res := srv.do(t, "GET", "/api/v1/audit", nil, "Authorization", "Bearer "+tn.WriteKey); res.status != 403 {
		t.Errorf("audit with a write key: status %d, want 403", res.status)
	}

	// The CLI downloads every chain and verifies it against a signed checkpoint.
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"audit", "verify", "--server", srv.URL}, cfg.getenv(), strings.NewReader(""), &out, &errOut); err != nil {
		t.Fatalf("audit verify: %v\n%s%s", err, out.String(), errOut.String())
	}
	if n := strings.Count(out.String(), "verified"); n < 3 {
		t.Errorf("audit verify printed %q; want the operator chain and both tenants verified", out.String())
	}
	pem := srv.do(t, "GET", "/.well-known/custos/signing-key", nil)
	pub, err := audit.ParsePublicKeyPEM(pem.body)
	if err != nil {
		t.Fatalf("signing key: %v (%s)", err, pem.body)
	}
	var cp audit.Checkpoint
	res := srv.do(t, "GET", "/api/v1/audit/checkpoint", nil, "Authorization", "Bearer "+tn.SecretKey)
	if err := json.Unmarshal(res.body, &cp); err != nil || audit.VerifyCheckpoint(cp, pub) != nil {
		t.Errorf("tenant checkpoint %s does not verify with the published key: %v", res.body, err)
	}

	// Ingestion is audited in aggregate: one summary with the counts, written
	// at the latest when the server stops.
	srv.stop(t)
	srv = startServer(t, cfg)
	var summary *custos.AuditEntry
	for _, e := range entries("/api/v1/audit?limit=1000", tn.SecretKey) {
		if e.Action == "ingest.summary" {
			summary = &e
		}
	}
	if summary == nil {
		t.Fatal("no ingest.summary entry after the server stopped")
	}
	var counts audit.IngestCounts
	if err := json.Unmarshal(summary.Details, &counts); err != nil || counts.Accepted != 3 {
		t.Errorf("ingest.summary details = %s, want 3 accepted", summary.Details)
	}
}
