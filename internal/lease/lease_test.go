package lease_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/lease"
	"github.com/custos-dev/custos/internal/testenv"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestHoldOneAtATime: while one Hold runs its work, another Hold of the
// same lease (another node, or the same node twice) does not run it.
func TestHoldOneAtATime(t *testing.T) {
	store := &lease.Local{}
	a := lease.New(store, lease.Options{TTL: time.Minute, Node: "a"})
	b := lease.New(store, lease.Options{TTL: time.Minute, Node: "b"})
	ten := custos.NewTenantID()
	inside := make(chan struct{})
	release := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		held, err := a.Hold(t.Context(), ten, "erasure/r1", func(context.Context) error {
			close(inside)
			<-release
			return nil
		})
		if !held || err != nil {
			t.Errorf("first Hold = %t, %v; want true, nil", held, err)
		}
	})
	<-inside
	for _, l := range []*lease.Leases{a, b} {
		held, err := l.Hold(t.Context(), ten, "erasure/r1", func(context.Context) error {
			t.Error("the work ran twice at once")
			return nil
		})
		if held || err != nil {
			t.Errorf("second Hold = %t, %v; want false, nil", held, err)
		}
	}
	close(release)
	wg.Wait()
	// Released when the work returned: the next Hold runs at once.
	ran := false
	if held, err := b.Hold(t.Context(), ten, "erasure/r1", func(context.Context) error { ran = true; return nil }); !held || err != nil || !ran {
		t.Errorf("Hold after release = %t, %v, ran %t; want true, nil, true", held, err, ran)
	}
}

// TestHoldStopsWorkWhenTakenOver: work whose lease another holder took
// (its renewals were too late) has its context ended with ErrLost.
func TestHoldStopsWorkWhenTakenOver(t *testing.T) {
	clock := testenv.NewClock(time.Now())
	store := &lease.Local{Now: clock.Now}
	a := lease.New(store, lease.Options{TTL: 300 * time.Millisecond, Node: "a"})
	ten := custos.NewTenantID()
	var cause error
	held, err := a.Hold(t.Context(), ten, "campaign/c1", func(ctx context.Context) error {
		// The store's clock jumps past the expiry, as if this node had
		// stalled: another node takes the lease.
		clock.Add(time.Hour)
		if token, err := store.AcquireLease(ctx, ten, "campaign/c1", "other", time.Hour); token == 0 || err != nil {
			t.Errorf("take-over = %d, %v", token, err)
		}
		<-ctx.Done()
		cause = context.Cause(ctx)
		return nil
	})
	if !held || err != nil {
		t.Fatalf("Hold = %t, %v", held, err)
	}
	if !errors.Is(cause, lease.ErrLost) {
		t.Errorf("the work's context ended with %v, want ErrLost", cause)
	}
	// The release did not free the other holder's lease.
	if token, _ := store.AcquireLease(t.Context(), ten, "campaign/c1", "third", time.Hour); token != 0 {
		t.Error("the lease taken over was freed by the old holder's release")
	}
}

// failing is a lease store that grants the first acquisition and fails
// every renewal, like a database that went away.
type failing struct{ n atomic.Int32 }

func (f *failing) AcquireLease(context.Context, custos.TenantID, string, string, time.Duration) (uint64, error) {
	if f.n.Add(1) == 1 {
		return 1, nil
	}
	return 0, errors.New("connection refused")
}
func (f *failing) ReleaseLease(context.Context, custos.TenantID, string, string) error { return nil }

// TestHoldStopsWorkWhenRenewalsFail: work whose lease cannot be renewed
// stops before the lease could have expired.
func TestHoldStopsWorkWhenRenewalsFail(t *testing.T) {
	ttl := 300 * time.Millisecond
	a := lease.New(&failing{}, lease.Options{TTL: ttl})
	start := time.Now()
	var stopped time.Duration
	held, _ := a.Hold(t.Context(), custos.TenantID{}, "outbox", func(ctx context.Context) error {
		<-ctx.Done()
		stopped = time.Since(start)
		return nil
	})
	if !held {
		t.Fatal("Hold = false")
	}
	if stopped >= ttl {
		t.Errorf("work stopped %v after the lease was taken, want before its %v lifetime", stopped, ttl)
	}
}

// TestRunTakesOver: two nodes Run the same cluster-wide work; one runs it;
// when that node stops, the other takes it over.
func TestRunTakesOver(t *testing.T) {
	store := &lease.Local{}
	var running atomic.Int32
	var maxRunning atomic.Int32
	var runs [2]atomic.Int32
	work := func(i int) func(context.Context) error {
		return func(ctx context.Context) error {
			n := running.Add(1)
			if n > maxRunning.Load() {
				maxRunning.Store(n)
			}
			runs[i].Add(1)
			<-ctx.Done()
			running.Add(-1)
			return nil
		}
	}
	ctxA, stopA := context.WithCancel(t.Context())
	ctxB, stopB := context.WithCancel(t.Context())
	defer stopB()
	var wg sync.WaitGroup
	wg.Go(func() { lease.New(store, lease.Options{TTL: 150 * time.Millisecond}).Run(ctxA, "outbox", work(0)) })
	testenv.Poll(t, 5*time.Second, "node A running the work", func() bool { return runs[0].Load() == 1 })
	wg.Go(func() { lease.New(store, lease.Options{TTL: 150 * time.Millisecond}).Run(ctxB, "outbox", work(1)) })
	// B keeps trying while A holds the lease; then A stops.
	stopA()
	testenv.Poll(t, 5*time.Second, "node B taking the work over", func() bool { return runs[1].Load() == 1 })
	stopB()
	wg.Wait()
	if m := maxRunning.Load(); m != 1 {
		t.Errorf("the work ran on %d nodes at once, want 1", m)
	}
}

// TestRunReturnsWhenWorkIsDone: work that returns on its own (nothing to
// do) is not started again.
func TestRunReturnsWhenWorkIsDone(t *testing.T) {
	runs := 0
	err := lease.New(&lease.Local{}, lease.Options{TTL: time.Minute}).Run(t.Context(), "incident-mail", func(context.Context) error {
		runs++
		return nil
	})
	if err != nil || runs != 1 {
		t.Errorf("Run = %v after %d runs, want nil after 1", err, runs)
	}
}

// TestHoldCarriesFence: the work's context carries the lease's fence,
// and a later holder of the same lease gets a greater token.
func TestHoldCarriesFence(t *testing.T) {
	l := lease.New(&lease.Local{}, lease.Options{TTL: time.Minute, Node: "a"})
	ten := custos.NewTenantID()
	var tokens []uint64
	for range 2 {
		held, err := l.Hold(t.Context(), ten, "request/r1", func(ctx context.Context) error {
			fs := custos.Fences(ctx)
			if len(fs) != 1 || fs[0].Tenant != ten || fs[0].Lease != "request/r1" || fs[0].Token == 0 {
				t.Errorf("fences of the work's context = %+v, want the lease's one", fs)
			}
			for _, f := range fs {
				tokens = append(tokens, f.Token)
			}
			return nil
		})
		if !held || err != nil {
			t.Fatalf("Hold = %t, %v", held, err)
		}
	}
	if len(tokens) != 2 || tokens[1] <= tokens[0] {
		t.Errorf("tokens of two holds one after the other = %v, want growing", tokens)
	}
}
