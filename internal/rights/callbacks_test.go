package rights_test

import (
	"context"
	"testing"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
	"github.com/custos-dev/custos/internal/opendsr"
	"github.com/custos-dev/custos/internal/rights"
	"github.com/custos-dev/custos/internal/webhook"
)

// TestOpenDSRCallbacksSurviveACrash checks that status callbacks are queued
// before the request records them as sent: a request stored with a status
// its callbacks were not queued for (a crash in between) gets them queued
// at the next start (Resume), once.
func TestOpenDSRCallbacksSurviveACrash(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	outbox := webhook.New(e.store, e.ring, webhook.Options{Now: e.clock.now})
	eng := rights.New(rights.Deps{Store: e.store, Gate: e.pipe, Subjects: e.rd, Keys: e.ring,
		Audit: audit.New(e.store, e.clock.now), SigningKey: e.signing, Region: "eu", Now: e.clock.now,
		Outbox: outbox, Deliveries: e.store})
	e.ingest(t, track("dsr-user", ""))

	cb := "https://controller.example/cb"
	r, err := eng.Create(ctx, e.tenant, rights.Input{Type: custos.Access, Identity: custos.Identifier{Type: custos.UserID, Value: "dsr-user"},
		Source: "opendsr", Actor: "test", ID: "dsr_0a8c5a3e-7e44-4c43-9d3b-5f6f7a2d1e00",
		OpenDSR: &custos.OpenDSRLink{SubjectRequestID: "0a8c5a3e-7e44-4c43-9d3b-5f6f7a2d1e00", APIVersion: "2.0", CallbackURLs: []string{cb}, BaseURL: "https://custos.example"}})
	if err != nil {
		t.Fatal(err)
	}
	statuses := func() []string {
		t.Helper()
		ds, err := e.store.Deliveries(ctx, e.tenant, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, d := range ds {
			if d.Kind == opendsr.CallbackKind && d.URL == cb {
				out = append(out, d.Signing)
			}
		}
		return out
	}
	stored, err := eng.Get(ctx, e.tenant, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Status != custos.Completed || stored.OpenDSR.Notified != opendsr.StatusCompleted {
		t.Fatalf("after Create: status %s, notified %q; want completed and its callback queued", stored.Status, stored.OpenDSR.Notified)
	}
	queued := len(statuses())

	// As if the process died after storing the completed request but
	// before queueing its callback.
	stored.OpenDSR.Notified = opendsr.StatusInProgress
	if err := e.store.PutRequest(ctx, stored); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Resume(ctx, []custos.TenantID{e.tenant}); err != nil {
		t.Fatalf("Resume = %v", err)
	}
	if got := len(statuses()); got != queued+1 {
		t.Errorf("callbacks queued after the resume: %d, want %d (one more)", got, queued+1)
	}
	if _, err := eng.Resume(ctx, []custos.TenantID{e.tenant}); err != nil {
		t.Fatalf("a second Resume = %v", err)
	}
	if got := len(statuses()); got != queued+1 {
		t.Errorf("callbacks queued after a second resume: %d, want still %d (nothing owed)", got, queued+1)
	}
	after, _ := eng.Get(ctx, e.tenant, r.ID)
	if after.OpenDSR.Notified != opendsr.StatusCompleted {
		t.Errorf("after the resume, notified = %q, want completed", after.OpenDSR.Notified)
	}
	// The queued body is the protocol's callback for the completed request.
	ds, _ := e.store.Deliveries(ctx, e.tenant, r.ID)
	var last custos.Delivery
	for _, d := range ds {
		if d.Kind == opendsr.CallbackKind {
			last = d
		}
	}
	if last.Signing != opendsr.SigningV2 || last.Final {
		t.Errorf("resumed callback delivery = %+v, want an OpenDSR-signed delivery still to send", last)
	}
}
