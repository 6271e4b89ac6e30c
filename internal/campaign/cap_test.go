package campaign_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/campaign"
	"github.com/custos-dev/custos/internal/pgtest"
)

// meet is a barrier for two parties: each call waits until the other
// arrived, or until a while passed (then the test fails).
type meet struct {
	t  *testing.T
	wg sync.WaitGroup
}

func newMeet(t *testing.T) *meet {
	m := &meet{t: t}
	m.wg.Add(2)
	return m
}

func (m *meet) arrive() {
	m.wg.Done()
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		m.t.Error("the other sender never reached the send record")
	}
}

// TestCapAcrossSenders: two campaigns sent at once by two engines, as two
// nodes would run them (each with its own in-process locks), to one
// person under a daily cap of 1. Both engines pass their gate before
// either writes a send record (a barrier holds them there), so only the
// store's capped write can keep the second message back: exactly one is
// sent, the other campaign counts the person as frequency_cap. On
// PostgreSQL and on the embedded store.
func TestCapAcrossSenders(t *testing.T) {
	for _, engine := range []string{"pebble", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			url := ""
			if engine == "postgres" {
				url = pgtest.NewDatabase(t)
			}
			e := newEnvOn(t, url, nil)
			r := newReceiver(t, e.clock.Now)
			tn := e.webhookTenant(t, r, `,"marketing_daily_cap":1`)
			e.identify(t, tn.ID, "u-ann", "ann@example.com", map[string]any{"first_name": "Ann"})
			e.consent(t, tn.ID, "u-ann", "marketing", custos.ChannelWebhook, true)
			c1 := e.create(t, tn, webhookCampaign(custos.Audience{}))
			c2 := e.create(t, tn, webhookCampaign(custos.Audience{}))

			d := e.used
			d.Resume = nil // it sends only what it is told to, c2
			other := campaign.New(d)
			ctx, stop := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- other.Run(ctx) }()
			t.Cleanup(func() {
				stop()
				if err := <-done; err != nil {
					t.Errorf("second engine's Run = %v", err)
				}
			})
			m := newMeet(t)
			for _, en := range []*campaign.Engine{e.engine, other} {
				en.SetBeforeRecord(func(custos.SubjectID) { m.arrive() })
			}

			cur := e.current(t, tn.ID)
			if _, err := e.engine.Send(context.Background(), cur, c1.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := other.Send(context.Background(), cur, c2.ID); err != nil {
				t.Fatal(err)
			}
			d1, d2 := e.waitDone(t, tn.ID, c1.ID), e.waitDone(t, tn.ID, c2.ID)
			e.deliver(t)
			sent := d1.Progress.Sent + d2.Progress.Sent
			capped := excluded(d1, campaign.ReasonFrequencyCap) + excluded(d2, campaign.ReasonFrequencyCap)
			if sent != 1 || capped != 1 {
				t.Errorf("campaigns sent %d and excluded %d for the cap (progress %+v and %+v); want 1 and 1", sent, capped, d1.Progress, d2.Progress)
			}
			if got := r.messages(); len(got) != 1 {
				t.Errorf("receiver got %d messages under a daily cap of 1, want 1", len(got))
			}
		})
	}
}
