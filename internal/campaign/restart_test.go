package campaign_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/campaign"
)

// TestRestartDuringSend stops the node in the middle of a run; the next
// start resumes it, and every consenting recipient gets exactly one
// message, none lost, none twice.
func TestRestartDuringSend(t *testing.T) {
	e := newEnv(t, nil)
	r := newReceiver(t, e.clock.Now)
	tn := e.webhookTenant(t, r, "")
	const n = 30
	want := map[string]bool{}
	for i := range n {
		u := fmt.Sprintf("u%02d", i)
		s := e.identify(t, tn.ID, u, u+"@example.com", map[string]any{"first_name": u})
		if i%3 != 0 {
			e.consent(t, tn.ID, u, "marketing", custos.ChannelWebhook, true)
			want[s.String()] = true
		}
	}
	c := e.create(t, tn, webhookCampaign(custos.Audience{}))
	gated := 0
	e.engine.SetBeforeGate(func(custos.SubjectID) {
		gated++
		if gated == n/2 {
			e.stopRun() // the node is told to stop: SIGTERM
		}
	})
	if _, err := e.engine.Send(context.Background(), e.current(t, tn.ID), c.ID); err != nil {
		t.Fatal(err)
	}
	e.waitRun(t)
	mid, err := e.engine.Get(context.Background(), tn.ID, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if mid.Status != custos.CampaignSending || mid.Progress.Sent == 0 || mid.Progress.Sent >= len(want) {
		t.Fatalf("after the stop: %s %+v; want a run half done", mid.Status, mid.Progress)
	}
	e.restart(t) // Start resumes it
	done := e.waitDone(t, tn.ID, c.ID)
	e.deliver(t)
	got := map[string]int{}
	for _, m := range r.messages() {
		got[m.SubjectID]++
	}
	for s := range want {
		if got[s] != 1 {
			t.Errorf("subject %s got %d messages, want 1", s, got[s])
		}
	}
	for s, k := range got {
		if !want[s] {
			t.Errorf("subject %s without consent got %d messages", s, k)
		}
	}
	if done.Status != custos.CampaignCompleted || done.Progress.Sent != len(want) || done.Progress.Excluded["no_consent"] != n-len(want) || done.Progress.Audience != n {
		t.Errorf("after resuming: %s %+v; want completed, %d sent, %d no_consent, audience %d", done.Status, done.Progress, len(want), n-len(want), n)
	}
}

// TestResumeAfterCrashMidMessage: a crash between a recipient's send
// record and the outcome. A webhook message already in the outbox counts
// as sent and is not queued again; one not yet queued is gated again and
// queued.
func TestResumeAfterCrashMidMessage(t *testing.T) {
	e := newEnv(t, nil)
	r := newReceiver(t, e.clock.Now)
	tn := e.webhookTenant(t, r, "")
	ctx := context.Background()
	queuedS := e.identify(t, tn.ID, "queued", "q@example.com", nil)
	lostS := e.identify(t, tn.ID, "lost", "l@example.com", nil)
	for _, u := range []string{"queued", "lost"} {
		e.consent(t, tn.ID, u, "marketing", "", true)
	}
	c := e.create(t, tn, webhookCampaign(custos.Audience{}))
	for _, s := range []custos.SubjectID{queuedS, lostS} {
		if err := e.engine.PutSending(ctx, c, s, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	secret, _ := e.reg.DeliverySecret(tn)
	if _, err := e.outbox.Enqueue(ctx, custos.Delivery{ID: campaign.DeliveryID(c, queuedS), Tenant: tn.ID, Kind: campaign.DeliveryKind,
		RequestID: c.ID, Target: "delivery_webhook", URL: r.srv.URL, Secret: []byte(secret), Body: []byte(`{"delivery_id":"` + campaign.DeliveryID(c, queuedS) + `","subject_id":"` + queuedS.String() + `"}`)}); err != nil {
		t.Fatal(err)
	}
	done := e.sendAndWait(t, tn, c.ID)
	e.deliver(t)
	got := map[string]int{}
	for _, m := range r.messages() {
		got[m.SubjectID]++
	}
	if got[queuedS.String()] != 1 || got[lostS.String()] != 1 || done.Progress.Sent != 2 {
		t.Errorf("messages %v, progress %+v; want one each, 2 sent", got, done.Progress)
	}
	for _, s := range []custos.SubjectID{queuedS, lostS} {
		sends, err := e.engine.Sends(ctx, tn.ID, s)
		if err != nil || len(sends) != 1 || sends[0].Status != "sent" {
			t.Errorf("Sends(%s) = %+v, %v; want one record, sent", s, sends, err)
		}
	}
}
