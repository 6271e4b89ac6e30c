package subjects

import (
	"context"
	"sync"

	"github.com/custos-dev/custos"
)

// fairGate admits Ingest calls into the writer's queue up to a bounded
// number of messages at a time (its window), and when work waits, hands
// the room that frees up to the tenants in turn, round-robin: a tenant
// with a hundred chunks queued and one with a single request alternate,
// so the second waits for at most one of the first's, not for all of
// them. Bounding messages rather than calls lets many one-message
// requests share a group commit while a flood of large batches still
// puts at most a window's worth ahead of anyone. It is safe for
// concurrent use.
type fairGate struct {
	mu      sync.Mutex
	window  int
	free    int                          // messages of room left
	order   []custos.TenantID            // tenants with waiters, in turn order
	waiting map[custos.TenantID][]waiter // per tenant, first come first served
}

// A waiter is an acquire call waiting for room for n messages.
type waiter struct {
	n  int
	ch chan struct{}
}

// newFairGate returns a gate admitting window messages at once (at least
// 1).
func newFairGate(window int) *fairGate {
	window = max(window, 1)
	return &fairGate{window: window, free: window, waiting: map[custos.TenantID][]waiter{}}
}

// acquire waits for room for n messages of tenant (n is capped at the
// window) and returns its release, which must be called once the work is
// done. It returns ctx's error if ctx ends first.
func (g *fairGate) acquire(ctx context.Context, tenant custos.TenantID, n int) (release func(), err error) {
	n = min(max(n, 1), g.window)
	g.mu.Lock()
	if g.free >= n && len(g.order) == 0 {
		g.free -= n
		g.mu.Unlock()
		return g.releaser(n), nil
	}
	ch := make(chan struct{})
	if len(g.waiting[tenant]) == 0 {
		g.order = append(g.order, tenant)
	}
	g.waiting[tenant] = append(g.waiting[tenant], waiter{n, ch})
	g.mu.Unlock()

	select {
	case <-ch:
		return g.releaser(n), nil
	case <-ctx.Done():
		g.mu.Lock()
		if g.drop(tenant, ch) {
			// Its leaving may let the next in turn in.
			g.grant()
			g.mu.Unlock()
			return nil, ctx.Err()
		}
		g.mu.Unlock()
		// The room was handed over as ctx ended: pass it on.
		g.releaser(n)()
		return nil, ctx.Err()
	}
}

// releaser returns a release function that frees n messages of room once.
func (g *fairGate) releaser(n int) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			g.free += n
			g.grant()
		})
	}
}

// grant hands the free room to the waiting tenants in turn, each the
// first of its waiters, for as long as the next in turn fits; the next
// in turn is never overtaken, so a chunk cannot be starved by smaller
// ones. Called with g.mu held.
func (g *fairGate) grant() {
	for len(g.order) > 0 {
		t := g.order[0]
		q := g.waiting[t]
		if q[0].n > g.free {
			return
		}
		g.free -= q[0].n
		close(q[0].ch)
		g.order = g.order[1:]
		if len(q) > 1 {
			g.waiting[t] = q[1:]
			g.order = append(g.order, t) // back of the line
		} else {
			delete(g.waiting, t)
		}
	}
}

// drop removes a waiter that gave up; false if it was already granted.
func (g *fairGate) drop(tenant custos.TenantID, ch chan struct{}) bool {
	q := g.waiting[tenant]
	for i, w := range q {
		if w.ch != ch {
			continue
		}
		q = append(q[:i:i], q[i+1:]...)
		if len(q) == 0 {
			delete(g.waiting, tenant)
			for j, t := range g.order {
				if t == tenant {
					g.order = append(g.order[:j:j], g.order[j+1:]...)
					break
				}
			}
		} else {
			g.waiting[tenant] = q
		}
		return true
	}
	return false
}
