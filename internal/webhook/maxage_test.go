package webhook_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/webhook"
)

// TestGivenUpAfterMaxAge: a receiver that keeps failing is retried until
// the delivery is MaxAge old, then given up: final, the reason recorded,
// OnGiveUp told, and no POST after.
func TestGivenUpAfterMaxAge(t *testing.T) {
	e := newEnv(t)
	fails := make([]int, 1000)
	for i := range fails {
		fails[i] = http.StatusServiceUnavailable
	}
	rcv := newReceiver(t, e.clock.Now, fails...)
	var (
		mu     sync.Mutex
		gaveUp []custos.Delivery
	)
	o := e.outbox(rcv.srv.Client(), webhook.Options{MaxAge: 48 * time.Hour, MaxBackoff: 7 * time.Hour,
		OnGiveUp: func(d custos.Delivery) { mu.Lock(); gaveUp = append(gaveUp, d); mu.Unlock() }})
	d := e.enqueue(o, rcv.srv.URL+"/hooks")
	deadline := d.CreatedAt.Add(48 * time.Hour)

	for i := 0; i < 200; i++ {
		got := e.delivery(d.ID)
		if got.Final {
			break
		}
		if got.NextAt.After(deadline) {
			t.Fatalf("attempt %d: next retry %v is past the give-up time %v", i, got.NextAt, deadline)
		}
		e.clock.Set(got.NextAt)
		if _, err := o.DeliverDue(t.Context()); err != nil {
			t.Fatalf("DeliverDue = %v", err)
		}
	}
	got := e.delivery(d.ID)
	if !got.Final || !got.DeliveredAt.IsZero() {
		t.Fatalf("after 48h of 503s: final %v, delivered %v; want given up", got.Final, got.DeliveredAt)
	}
	if !strings.Contains(got.LastError, "gave up") || !strings.Contains(got.LastError, "48h0m0s") || !strings.Contains(got.LastError, "503") {
		t.Errorf("LastError = %q, want the give-up, the age and the last failure", got.LastError)
	}
	if e.clock.Now().Before(deadline) {
		t.Errorf("given up at %v, before the deadline %v", e.clock.Now(), deadline)
	}
	posts := len(rcv.Hits())
	if posts < 2 {
		t.Errorf("only %d POSTs before giving up, want retries", posts)
	}
	e.clock.Set(e.clock.Now().Add(30 * 24 * time.Hour))
	deliverDue(t, o, 0)
	if n := len(rcv.Hits()); n != posts {
		t.Errorf("POSTs after giving up: %d, want none", n-posts)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(gaveUp) != 1 || gaveUp[0].ID != d.ID {
		t.Errorf("OnGiveUp got %d deliveries, want the one given up", len(gaveUp))
	}
}

// TestDefaultMaxAgeIsSevenDays: without MaxAge a delivery is still retried
// just before seven days and given up at seven days.
func TestDefaultMaxAgeIsSevenDays(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t, e.clock.Now, 503, 503, 503)
	o := e.outbox(rcv.srv.Client(), webhook.Options{})
	d := e.enqueue(o, rcv.srv.URL+"/hooks")
	e.clock.Set(d.CreatedAt.Add(webhook.DefaultMaxAge - time.Minute))
	deliverDue(t, o, 1)
	if got := e.delivery(d.ID); got.Final {
		t.Fatalf("given up before 7 days: %+v", got)
	}
	e.clock.Set(d.CreatedAt.Add(webhook.DefaultMaxAge))
	deliverDue(t, o, 0)
	if got := e.delivery(d.ID); !got.Final || !strings.Contains(got.LastError, "gave up") {
		t.Errorf("at 7 days: final %v, last error %q; want given up", got.Final, got.LastError)
	}
	if webhook.DefaultMaxAge != 7*24*time.Hour {
		t.Errorf("DefaultMaxAge = %v, want 7 days", webhook.DefaultMaxAge)
	}
}
