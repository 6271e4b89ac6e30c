package lease

import (
	"context"
	"sync"
	"time"

	"github.com/custos-dev/custos"
)

// Local is a custos.LeaseStore in memory, for a store that only one
// process opens: leases keep work of that process from running twice at
// once (an erasure resumed while its request is still being served), and
// a restart frees them all. The zero value is ready to use.
type Local struct {
	mu     sync.Mutex
	leases map[localKey]localLease
	// Now is the clock (default time.Now).
	Now func() time.Time
}

type localKey struct {
	t    custos.TenantID
	name string
}

// localLease is a lease's state; a released lease keeps its entry (with
// no holder) so that its next holder gets a greater token.
type localLease struct {
	holder  string
	expires time.Time
	token   uint64
}

var _ custos.LeaseStore = (*Local)(nil)

func (l *Local) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

// AcquireLease takes or renews the lease (see custos.LeaseStore).
func (l *Local) AcquireLease(_ context.Context, t custos.TenantID, name, holder string, ttl time.Duration) (uint64, error) {
	if holder == "" {
		return 0, custos.Errorf(custos.Invalid, "lease %s: no holder", name)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	k := localKey{t, name}
	cur := l.leases[k]
	if cur.holder != "" && cur.holder != holder && !cur.expires.Before(now) {
		return 0, nil
	}
	if cur.holder != holder {
		cur.token++
	}
	if l.leases == nil {
		l.leases = map[localKey]localLease{}
	}
	l.leases[k] = localLease{holder: holder, expires: now.Add(ttl), token: cur.token}
	return cur.token, nil
}

// ReleaseLease frees the lease if holder holds it.
func (l *Local) ReleaseLease(_ context.Context, t custos.TenantID, name, holder string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := localKey{t, name}
	if cur, ok := l.leases[k]; ok && cur.holder == holder {
		l.leases[k] = localLease{token: cur.token}
	}
	return nil
}
