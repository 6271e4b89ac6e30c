package postgres_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/pgtest"
	"github.com/custos-dev/custos/internal/testenv"
)

// TestOutboxNotified: a delivery queued through one pool is notified to
// a listener on another (custos.ChangeOutbox, with its tenant), so the
// node sending the outbox is woken at once; recording an attempt, or a
// final outcome, notifies nothing.
func TestOutboxNotified(t *testing.T) {
	url := pgtest.NewDatabase(t)
	a, b := openStore(t, url), openStore(t, url)
	ten := custos.NewTenantID()
	var mu sync.Mutex
	var got []custos.Change
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	listening := make(chan struct{})
	var once sync.Once
	go func() {
		done <- a.ListenChanges(ctx, func(c custos.Change) {
			if c.Topic == custos.ChangeAll {
				once.Do(func() { close(listening) })
				return
			}
			mu.Lock()
			got = append(got, c)
			mu.Unlock()
		})
	}()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("ListenChanges = %v", err)
		}
	}()
	<-listening
	outboxChanges := func() []custos.Change {
		mu.Lock()
		defer mu.Unlock()
		var out []custos.Change
		for _, c := range got {
			if c.Topic == custos.ChangeOutbox {
				out = append(out, c)
			}
		}
		return out
	}
	now := time.Now().UTC()
	d := custos.Delivery{ID: "dlv_1", Tenant: ten, Kind: "request.status", Target: "callback", URL: "https://example.test/h", CreatedAt: now, NextAt: now}
	if err := b.PutDelivery(context.Background(), &d, []byte("sealed")); err != nil {
		t.Fatal(err)
	}
	testenv.Poll(t, 10*time.Second, "the queued delivery notified", func() bool { return len(outboxChanges()) == 1 })
	if c := outboxChanges()[0]; c.Tenant != ten {
		t.Errorf("notified tenant %s, want %s", c.Tenant, ten)
	}
	// An attempt and a final outcome are recorded; then a second delivery
	// is queued: only it is notified after the first.
	d.Attempts, d.NextAt = 1, now.Add(time.Minute)
	if err := b.PutDelivery(context.Background(), &d, []byte("sealed")); err != nil {
		t.Fatal(err)
	}
	d.Attempts, d.Final = 2, true
	if err := b.PutDelivery(context.Background(), &d, nil); err != nil {
		t.Fatal(err)
	}
	d2 := custos.Delivery{ID: "dlv_2", Tenant: ten, Kind: "request.status", Target: "callback", URL: "https://example.test/h", CreatedAt: now, NextAt: now}
	if err := b.PutDelivery(context.Background(), &d2, []byte("sealed")); err != nil {
		t.Fatal(err)
	}
	testenv.Poll(t, 10*time.Second, "the second delivery notified", func() bool { return len(outboxChanges()) >= 2 })
	if n := len(outboxChanges()); n != 2 {
		t.Errorf("%d outbox notifications for two queued deliveries and two recorded attempts, want 2", n)
	}
}
