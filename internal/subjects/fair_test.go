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
	hold, err := g.acquire(ctx, a, 1)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []custos.TenantID
	var wg sync.WaitGroup
	enqueue := func(tenant custos.TenantID) {
		n := g.waiters(tenant)
		wg.Go(func() {
			rel, err := g.acquire(ctx, tenant, 1)
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
	hold, err := g.acquire(context.Background(), custos.TenantID{1}, 1)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := g.acquire(ctx, custos.TenantID{2}, 1)
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
	rel, err := g.acquire(ctx2, custos.TenantID{3}, 1)
	if err != nil {
		t.Fatalf("slot lost to a cancelled caller: %v", err)
	}
	rel()
	rel() // twice is harmless
}

// TestFairGateWindowInMessages: the window bounds messages, not calls;
// many one-message calls enter together, a chunk waits until it fits, and
// smaller calls behind it do not overtake it, unless it gives up.
func TestFairGateWindowInMessages(t *testing.T) {
	g := newFairGate(32)
	ctx := context.Background()
	a, b, c := custos.TenantID{1}, custos.TenantID{2}, custos.TenantID{3}
	var held []func()
	for range 31 {
		rel, err := g.acquire(ctx, a, 1)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, rel)
	}
	// B's chunk of 32 does not fit in the 1 left: it waits.
	bIn := make(chan func(), 1)
	go func() {
		rel, err := g.acquire(ctx, b, 32)
		if err != nil {
			t.Error(err)
		}
		bIn <- rel
	}()
	testenv.Poll(t, 5*time.Second, "B queued", func() bool { return g.waiters(b) == 1 })
	// C's single message would fit, but B is ahead in turn.
	cCtx, cancelC := context.WithCancel(ctx)
	cIn := make(chan error, 1)
	go func() {
		rel, err := g.acquire(cCtx, c, 1)
		if err == nil {
			rel()
		}
		cIn <- err
	}()
	testenv.Poll(t, 5*time.Second, "C queued", func() bool { return g.waiters(c) == 1 })
	for _, rel := range held[:30] {
		rel()
	}
	select {
	case <-bIn:
		t.Fatal("B's 32 admitted with 31 of the 32 free")
	case err := <-cIn:
		t.Fatalf("C overtook B (err %v)", err)
	default:
	}
	held[30]()
	relB := <-bIn
	// The window is full with B's chunk: C still waits, then gives up;
	// its leaving must not lose room.
	cancelC()
	if err := <-cIn; err == nil {
		t.Fatal("C admitted while B's 32 fill the window")
	}
	relB()
	rel, err := g.acquire(ctx, a, 32)
	if err != nil {
		t.Fatal(err)
	}
	rel()
	if g.free != 32 {
		t.Errorf("room after everything was released: %d, want 32", g.free)
	}
}
