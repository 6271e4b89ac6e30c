package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/testenv"
)

// RunLeases runs the conformance cases of a custos.LeaseStore: one
// holder at a time, renewal by the holder, take-over after expiry,
// release, independence of names and tenants, exactly one winner when
// holders race through two handles, and fencing tokens that grow with
// every new holder. open returns two handles on one new,
// empty lease store (the same handle twice for a store one process owns).
func RunLeases(t *testing.T, open func(t *testing.T) (a, b custos.LeaseStore)) {
	tests := []struct {
		name string
		fn   func(t *testing.T, a, b custos.LeaseStore)
	}{
		{"OneHolder", testLeaseOneHolder},
		{"Expiry", testLeaseExpiry},
		{"Release", testLeaseRelease},
		{"Independent", testLeaseIndependent},
		{"Race", testLeaseRace},
		{"Tokens", testLeaseTokens},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := open(t)
			tc.fn(t, a, b)
		})
	}
}

func acquire(t *testing.T, ls custos.LeaseStore, ten custos.TenantID, name, holder string, ttl time.Duration) bool {
	t.Helper()
	return acquireToken(t, ls, ten, name, holder, ttl) != 0
}

// acquireToken acquires a lease and returns its token (zero: not held).
func acquireToken(t *testing.T, ls custos.LeaseStore, ten custos.TenantID, name, holder string, ttl time.Duration) uint64 {
	t.Helper()
	token, err := ls.AcquireLease(context.Background(), ten, name, holder, ttl)
	if err != nil {
		t.Fatalf("AcquireLease(%s, %s) = %v", name, holder, err)
	}
	return token
}

// testLeaseOneHolder: a lease held by one holder is refused to another,
// through either handle, and renewed for its holder.
func testLeaseOneHolder(t *testing.T, a, b custos.LeaseStore) {
	ten := custos.NewTenantID()
	if !acquire(t, a, ten, "outbox", "h1", time.Minute) {
		t.Fatal("a free lease was refused")
	}
	if acquire(t, b, ten, "outbox", "h2", time.Minute) {
		t.Error("a lease held by h1 was given to h2 through the other handle")
	}
	if acquire(t, a, ten, "outbox", "h2", time.Minute) {
		t.Error("a lease held by h1 was given to h2 through the same handle")
	}
	if !acquire(t, b, ten, "outbox", "h1", time.Minute) {
		t.Error("the holder's renewal through the other handle was refused")
	}
}

// testLeaseExpiry: a lease its holder stops renewing is taken over once
// it expired, and the old holder's renewal is refused then.
func testLeaseExpiry(t *testing.T, a, b custos.LeaseStore) {
	ten := custos.NewTenantID()
	if !acquire(t, a, ten, "campaign/c1", "dead", 200*time.Millisecond) {
		t.Fatal("a free lease was refused")
	}
	testenv.Poll(t, 10*time.Second, "take-over of an expired lease", func() bool {
		return acquire(t, b, ten, "campaign/c1", "alive", time.Minute)
	})
	if acquire(t, a, ten, "campaign/c1", "dead", time.Minute) {
		t.Error("the old holder renewed a lease taken over by another")
	}
}

// testLeaseRelease: only the holder's release frees a lease.
func testLeaseRelease(t *testing.T, a, b custos.LeaseStore) {
	ten := custos.NewTenantID()
	ctx := context.Background()
	acquire(t, a, ten, "retention", "h1", time.Minute)
	if err := b.ReleaseLease(ctx, ten, "retention", "h2"); err != nil {
		t.Fatal(err)
	}
	if acquire(t, b, ten, "retention", "h2", time.Minute) {
		t.Error("a release by another holder freed the lease")
	}
	if err := b.ReleaseLease(ctx, ten, "retention", "h1"); err != nil {
		t.Fatal(err)
	}
	if !acquire(t, a, ten, "retention", "h2", time.Minute) {
		t.Error("a released lease was refused")
	}
	if err := a.ReleaseLease(ctx, ten, "never-held", "h1"); err != nil {
		t.Errorf("releasing a lease nobody holds = %v, want nil", err)
	}
}

// testLeaseIndependent: leases of other names or tenants do not interfere.
func testLeaseIndependent(t *testing.T, a, b custos.LeaseStore) {
	t1, t2 := custos.NewTenantID(), custos.NewTenantID()
	acquire(t, a, t1, "x", "h1", time.Minute)
	if !acquire(t, b, t2, "x", "h2", time.Minute) {
		t.Error("a lease of another tenant with the same name was refused")
	}
	if !acquire(t, b, t1, "y", "h2", time.Minute) {
		t.Error("a lease of another name was refused")
	}
	if !acquire(t, b, custos.TenantID{}, "x", "h2", time.Minute) {
		t.Error("the cluster-wide lease with the same name was refused")
	}
}

// testLeaseRace: holders racing for one free lease through two handles:
// exactly one gets it.
func testLeaseRace(t *testing.T, a, b custos.LeaseStore) {
	for round := range 5 {
		ten := custos.NewTenantID()
		var wg sync.WaitGroup
		var mu sync.Mutex
		won := 0
		for i := range 8 {
			ls := a
			if i%2 == 1 {
				ls = b
			}
			wg.Go(func() {
				token, err := ls.AcquireLease(context.Background(), ten, "race", "h"+string(rune('a'+i)), time.Minute)
				if err != nil {
					t.Errorf("AcquireLease: %v", err)
				}
				if token != 0 {
					mu.Lock()
					won++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if won != 1 {
			t.Errorf("round %d: %d of 8 racing holders got the lease, want 1", round, won)
		}
	}
}

// testLeaseTokens: a renewal keeps the token; a take-over, and an
// acquisition after a release, get a greater one, through either handle;
// names count their holders apart.
func testLeaseTokens(t *testing.T, a, b custos.LeaseStore) {
	ten := custos.NewTenantID()
	ctx := context.Background()
	first := acquireToken(t, a, ten, "request/r1", "h1", 200*time.Millisecond)
	if first == 0 {
		t.Fatal("a free lease was refused")
	}
	if got := acquireToken(t, b, ten, "request/r1", "h1", 200*time.Millisecond); got != first {
		t.Errorf("renewal: token %d, want the holder's %d", got, first)
	}
	var second uint64
	testenv.Poll(t, 10*time.Second, "take-over of an expired lease", func() bool {
		second = acquireToken(t, b, ten, "request/r1", "h2", time.Minute)
		return second != 0
	})
	if second <= first {
		t.Errorf("take-over: token %d, want more than the old holder's %d", second, first)
	}
	if got := acquireToken(t, a, ten, "request/r1", "h1", time.Minute); got != 0 {
		t.Errorf("the old holder's renewal after a take-over got token %d, want 0 (refused)", got)
	}
	if err := a.ReleaseLease(ctx, ten, "request/r1", "h2"); err != nil {
		t.Fatal(err)
	}
	third := acquireToken(t, a, ten, "request/r1", "h3", time.Minute)
	if third <= second {
		t.Errorf("acquisition after a release: token %d, want more than %d", third, second)
	}
	if err := b.ReleaseLease(ctx, ten, "request/r1", "h3"); err != nil {
		t.Fatal(err)
	}
	if got := acquireToken(t, b, ten, "request/r1", "h3", time.Minute); got <= third {
		t.Errorf("the same holder acquiring again after its release: token %d, want more than %d", got, third)
	}
	other := acquireToken(t, b, ten, "request/r2", "h1", time.Minute)
	if other == 0 || other > first {
		t.Errorf("first holder of another name: token %d, want a first token (1..%d)", other, first)
	}
	if _, err := a.AcquireLease(ctx, ten, "request/r3", "", time.Minute); err == nil {
		t.Error("AcquireLease with no holder = nil, want an error")
	}
}
