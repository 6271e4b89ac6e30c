package webhook_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/testenv"
	"github.com/custos-dev/custos/internal/webhook"
)

// TestHangingReceiverDelaysNoOtherTenant: tenant A's receiver holds every
// POST open, and 120 of A's deliveries are due before tenant B's three
// (more than a page of the store's due deliveries). B's are delivered
// while A's hang, A holds no more attempts than its share, and once A's
// receiver answers, each of A's is delivered, POSTed once. Before, a pass sent one delivery at a time, in due order, so B
// waited for A's every attempt to time out.
func TestHangingReceiverDelaysNoOtherTenant(t *testing.T) {
	e := newEnv(t)
	a := e.tenant
	b := custos.NewTenantID()
	if err := e.ring.CreateTenant(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var mu sync.Mutex
	hung, ok := map[string]int{}, map[string]int{} // POSTs by delivery id
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(webhook.HeaderDelivery)
		mu.Lock()
		if r.URL.Path == "/hang" {
			hung[id]++
		} else {
			ok[id]++
		}
		mu.Unlock()
		if r.URL.Path == "/hang" {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	releaseAll := sync.OnceFunc(func() { close(release) })
	defer releaseAll()
	counts := func() (hanging, answered int) {
		mu.Lock()
		defer mu.Unlock()
		return len(hung), len(ok)
	}
	o := e.outbox(srv.Client(), webhook.Options{Concurrency: 4, PerTenant: 2})
	// Each to a URL of its own: one request's callbacks to one URL go in
	// order, one at a time.
	n := 0
	enqueue := func(ten custos.TenantID, path string) custos.Delivery {
		n++
		d, err := o.Enqueue(context.Background(), custos.Delivery{
			Tenant: ten, Kind: "request.status", RequestID: testRequest, Target: "callback",
			URL: fmt.Sprintf("%s%s?n=%d", srv.URL, path, n), Secret: testSecret, Body: testBody,
		})
		if err != nil {
			t.Fatalf("Enqueue = %v, want nil", err)
		}
		return d
	}
	const manyA = 120
	for range manyA {
		enqueue(a, "/hang")
	}
	// B's are due a second after A's, behind them in due order.
	e.clock.Set(e.clock.Now().Add(time.Second))
	for range 3 {
		enqueue(b, "/ok")
	}
	stop := runOutbox(t, o)
	defer stop()

	testenv.Poll(t, 10*time.Second, "B's three deliveries POSTed while A's receiver hangs", func() bool {
		_, answered := counts()
		return answered == 3
	}, func() string { h, a := counts(); return fmt.Sprintf("hanging %d, answered %d", h, a) })
	// delivered counts a tenant's deliveries recorded delivered.
	delivered := func(ten custos.TenantID) int {
		ds, err := e.store.Deliveries(context.Background(), ten, testRequest)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, d := range ds {
			if d.Final && !d.DeliveredAt.IsZero() {
				n++
			}
		}
		return n
	}
	testenv.Poll(t, 10*time.Second, "B's deliveries recorded delivered", func() bool { return delivered(b) == 3 })
	if hanging, _ := counts(); hanging != 2 {
		t.Errorf("A's receiver holds %d POSTs, want its share of 2", hanging)
	}

	releaseAll()
	testenv.Poll(t, 20*time.Second, "A's deliveries recorded delivered", func() bool { return delivered(a) == manyA })
	stop()
	mu.Lock()
	defer mu.Unlock()
	for id, n := range hung {
		if n != 1 {
			t.Errorf("delivery %s was POSTed %d times, want once", id, n)
		}
	}
	if len(hung) != manyA {
		t.Errorf("A's receiver got %d deliveries, want %d", len(hung), manyA)
	}
}

// TestDeliverDueAttemptsEveryDue: one DeliverDue attempts each due
// delivery once, also beyond a tenant's share of the concurrent attempts.
func TestDeliverDueAttemptsEveryDue(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t, e.clock.Now)
	o := e.outbox(rcv.srv.Client(), webhook.Options{Concurrency: 2, PerTenant: 1})
	for range 5 {
		e.enqueue(o, rcv.srv.URL)
	}
	deliverDue(t, o, 5)
	if got := len(rcv.Hits()); got != 5 {
		t.Errorf("receiver got %d POSTs, want 5", got)
	}
	deliverDue(t, o, 0)
}
