package campaign_test

import (
	"context"
	"maps"
	"slices"
	"testing"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/campaign"
)

func webhookCampaign(audience custos.Audience) campaign.Input {
	return campaign.Input{Channel: custos.ChannelWebhook, Audience: audience,
		Message: custos.CampaignMessage{Subject: "Hi {{.traits.first_name}}", Body: `{"text":"Hello {{.traits.first_name}}"}`}}
}

func excluded(p *custos.Campaign, reason string) int { return p.Progress.Excluded[reason] }

// TestDefaultDeny: a full profile without a consent record is never sent
// to; a grant on e-mail only does not open the webhook channel.
func TestDefaultDeny(t *testing.T) {
	e := newEnv(t, nil)
	r := newReceiver(t, e.clock.Now)
	tn := e.webhookTenant(t, r, "")
	ann := e.identify(t, tn.ID, "u-ann", "ann@example.com", map[string]any{"first_name": "Ann", "plan": "pro", "age": 41})
	bob := e.identify(t, tn.ID, "u-bob", "bob@example.com", map[string]any{"first_name": "Bob", "plan": "pro"})
	e.consent(t, tn.ID, "u-bob", "marketing", custos.ChannelEmail, true)

	c := e.create(t, tn, webhookCampaign(custos.Audience{}))
	pv, err := e.engine.Preview(context.Background(), tn, c.ID, 5)
	if err != nil {
		t.Fatal(err)
	}
	if pv.Audience != 2 || pv.Eligible != 0 || pv.Excluded["no_consent"] != 2 || len(pv.Sample) != 0 {
		t.Errorf("Preview = %+v; want audience 2, eligible 0, no_consent 2 (ann has no record, bob granted e-mail only)", pv)
	}
	done := e.sendAndWait(t, tn, c.ID)
	e.deliver(t)
	if done.Status != custos.CampaignCompleted || done.Progress.Sent != 0 || excluded(done, "no_consent") != 2 {
		t.Errorf("after sending: %s %+v; want completed, 0 sent, 2 no_consent", done.Status, done.Progress)
	}
	if got := r.messages(); len(got) != 0 {
		t.Errorf("receiver got %d messages, want none", len(got))
	}
	for _, s := range []custos.SubjectID{ann, bob} {
		if sends, err := e.engine.Sends(context.Background(), tn.ID, s); err != nil || len(sends) != 0 {
			t.Errorf("Sends(%s) = %v, %v; want none", s, sends, err)
		}
	}

	// A grant for the webhook channel opens it, for that subject only.
	e.consent(t, tn.ID, "u-bob", "marketing", custos.ChannelWebhook, true)
	c2 := e.create(t, tn, webhookCampaign(custos.Audience{}))
	done = e.sendAndWait(t, tn, c2.ID)
	e.deliver(t)
	got := r.messages()
	if done.Progress.Sent != 1 || excluded(done, "no_consent") != 1 || len(got) != 1 || got[0].SubjectID != bob.String() {
		t.Fatalf("second campaign: %+v, receiver %+v; want one message, to bob", done.Progress, got)
	}
	if got[0].Body != `{"text":"Hello Bob"}` || got[0].Subject != "Hi Bob" || got[0].CampaignID != c2.ID {
		t.Errorf("message = %+v", got[0])
	}
	sends, err := e.engine.Sends(context.Background(), tn.ID, bob)
	if err != nil || len(sends) != 1 || sends[0].Campaign != c2.ID || sends[0].Channel != "webhook" || sends[0].Status != "sent" {
		t.Errorf("Sends(bob) = %+v, %v; want the one webhook send of %s", sends, err, c2.ID)
	}
	if len(r.bad) != 0 {
		t.Errorf("receiver refused: %v", r.bad)
	}
}

// TestPreviewCountsEveryReason: each flag and the ledger give their own
// reason, and the audience conditions select who is counted at all.
func TestPreviewCountsEveryReason(t *testing.T) {
	e := newEnv(t, nil)
	r := newReceiver(t, e.clock.Now)
	tn := e.webhookTenant(t, r, `,"marketing_daily_cap":1`)
	ctx := context.Background()
	users := []string{"ok", "withdrawn", "suppressed", "restricted", "objected", "capped", "none", "outside"}
	for _, u := range users {
		plan := "pro"
		if u == "outside" {
			plan = "free"
		}
		e.identify(t, tn.ID, u, u+"@example.com", map[string]any{"plan": plan, "first_name": u})
		if u != "none" {
			e.consent(t, tn.ID, u, "marketing", "", true)
		}
	}
	e.consent(t, tn.ID, "withdrawn", "marketing", custos.ChannelWebhook, false)
	for u, change := range map[string]func(*custos.SubjectFlags){
		"suppressed": func(f *custos.SubjectFlags) { f.Suppressed = true },
		"restricted": func(f *custos.SubjectFlags) { f.Restricted = true },
		"objected":   func(f *custos.SubjectFlags) { f.ObjectedAt = e.clock.Now() },
	} {
		if _, err := e.pipe.SetFlags(ctx, tn.ID, custos.Identifier{Type: custos.UserID, Value: u}, change); err != nil {
			t.Fatal(err)
		}
	}
	// "capped" got one message today already.
	first := e.create(t, tn, webhookCampaign(custos.Audience{Traits: []custos.TraitCondition{{Key: "first_name", Op: "eq", Value: []byte(`"capped"`)}}}))
	if done := e.sendAndWait(t, tn, first.ID); done.Progress.Sent != 1 {
		t.Fatalf("first campaign sent %d, want 1", done.Progress.Sent)
	}

	c := e.create(t, tn, webhookCampaign(custos.Audience{Traits: []custos.TraitCondition{{Key: "plan", Op: "eq", Value: []byte(`"pro"`)}}}))
	pv, err := e.engine.Preview(ctx, tn, c.ID, 5)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"no_consent": 1, "withdrawn": 1, "suppressed": 1, "restricted": 1, "objected": 1, "frequency_cap": 1, "erased": 0, "no_address": 0}
	if pv.Audience != 7 || pv.Eligible != 1 || !maps.Equal(pv.Excluded, want) {
		t.Errorf("Preview = audience %d eligible %d excluded %v; want 7, 1, %v", pv.Audience, pv.Eligible, pv.Excluded, want)
	}
	if len(pv.Sample) != 1 || pv.Sample[0].Subject != "Hi ok" {
		t.Errorf("Preview sample = %+v, want the one message to ok", pv.Sample)
	}
	done := e.sendAndWait(t, tn, c.ID)
	if done.Progress.Audience != 7 || done.Progress.Sent != 1 || !maps.Equal(done.Progress.Excluded, want) {
		t.Errorf("Send = %+v; want the preview's counts", done.Progress)
	}
	e.deliver(t)
	var to []string
	for _, m := range r.messages() {
		to = append(to, m.Subject)
	}
	slices.Sort(to)
	if !slices.Equal(to, []string{"Hi capped", "Hi ok"}) {
		t.Errorf("receiver got %v", to)
	}
}
