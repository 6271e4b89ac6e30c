package subjects

import (
	"context"
	"sync"

	"github.com/custos-dev/custos"
)

// fairGate admits Ingest calls into the writer's queue a bounded number
// of chunks at a time, and when work waits, hands the next free slot to the
// tenants in turn, round-robin: a tenant with a hundred requests queued
// and one with a single request alternate, so the second waits for at
// most one of the first's, not for all of them. It is safe for concurrent
// use.
type fairGate struct {
	mu      sync.Mutex
	free    int
	order   []custos.TenantID                   // tenants with waiters, in turn order
	waiting map[custos.TenantID][]chan struct{} // per tenant, first come first served
}

// newFairGate returns a gate of slots concurrent admissions (at least 1).
func newFairGate(slots int) *fairGate {
	return &fairGate{free: max(slots, 1), waiting: map[custos.TenantID][]chan struct{}{}}
}

// acquire waits for a slot for tenant and returns its release, which must
// be called once the work is done. It returns ctx's error if ctx ends
// first.
func (g *fairGate) acquire(ctx context.Context, tenant custos.TenantID) (release func(), err error) {
	g.mu.Lock()
	if g.free > 0 && len(g.order) == 0 {
		g.free--
		g.mu.Unlock()
		return g.releaser(), nil
	}
	ch := make(chan struct{})
	if len(g.waiting[tenant]) == 0 {
		g.order = append(g.order, tenant)
	}
	g.waiting[tenant] = append(g.waiting[tenant], ch)
	g.mu.Unlock()

	select {
	case <-ch:
		return g.releaser(), nil
	case <-ctx.Done():
		g.mu.Lock()
		if g.drop(tenant, ch) {
			g.mu.Unlock()
			return nil, ctx.Err()
		}
		g.mu.Unlock()
		// The slot was handed over as ctx ended: pass it on.
		g.releaser()()
		return nil, ctx.Err()
	}
}

// releaser returns a release function that frees one slot once.
func (g *fairGate) releaser() func() {
	var once sync.Once
	return func() { once.Do(g.release) }
}

// release hands the slot to the next tenant in turn, or frees it.
func (g *fairGate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.order) == 0 {
		g.free++
		return
	}
	t := g.order[0]
	g.order = g.order[1:]
	q := g.waiting[t]
	ch := q[0]
	if len(q) > 1 {
		g.waiting[t] = q[1:]
		g.order = append(g.order, t) // back of the line
	} else {
		delete(g.waiting, t)
	}
	close(ch)
}

// drop removes a waiter that gave up; false if it was already granted.
func (g *fairGate) drop(tenant custos.TenantID, ch chan struct{}) bool {
	q := g.waiting[tenant]
	for i, c := range q {
		if c != ch {
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
