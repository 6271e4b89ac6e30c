package subjects

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/testenv"
)

// waiters is how many acquire calls of tenant wait.
func (g *fairGate) waiters(tenant custos.TenantID) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.waiting[tenant])
}

// TestFairGateRoundRobin: with the one slot held, tenant A queues five
// calls, then B one; B is served second, not sixth.
func TestFairGateRoundRobin(t *testing.T) {
	g := newFairGate(1)
	ctx := context.Background()
	a, b := custos.TenantID{1}, custos.TenantID{2}
	hold, err := g.acquire(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []custos.TenantID
	var wg sync.WaitGroup
	enqueue := func(tenant custos.TenantID) {
		n := g.waiters(tenant)
		wg.Go(func() {
			rel, err := g.acquire(ctx, tenant)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, tenant)
			mu.Unlock()
			rel()
		})
		// Queued before the next one is.
		testenv.Poll(t, 5*time.Second, "a call queued", func() bool { return g.waiters(tenant) == n+1 })
	}
	for range 5 {
		enqueue(a)
	}
	enqueue(b)
	hold()
	wg.Wait()
	if len(order) != 6 || order[1] != b {
		t.Errorf("served in order %v, want B second", order)
	}
}

// TestFairGateCancel: a caller that stops waiting leaves the queue, and
// does not keep the slot.
func TestFairGateCancel(t *testing.T) {
	g := newFairGate(1)
	hold, err := g.acquire(context.Background(), custos.TenantID{1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := g.acquire(ctx, custos.TenantID{2})
		errc <- err
	}()
	testenv.Poll(t, 5*time.Second, "B queued", func() bool { return g.waiters(custos.TenantID{2}) == 1 })
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("acquire with a full gate returned no error once its context ended")
	}
	if n := g.waiters(custos.TenantID{2}); n != 0 {
		t.Fatalf("cancelled caller still queued (%d waiters)", n)
	}
	hold()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	rel, err := g.acquire(ctx2, custos.TenantID{3})
	if err != nil {
		t.Fatalf("slot lost to a cancelled caller: %v", err)
	}
	rel()
	rel() // twice is harmless
}
