package custos

import (
	"context"
	"time"
)

// LeaseStore is implemented by stores several processes may share (several
// nodes on one PostgreSQL database), so that background work — a campaign
// run, an erasure's steps, the outbox — runs in one process at a time and
// is taken over by another when the process holding it dies.
//
// A lease is named within a tenant (the zero TenantID for cluster-wide
// work). It is held by one holder until it expires; the holder renews it
// before then, or releases it. Expiry is judged by the store's clock, not
// by the holders', so that processes whose clocks differ agree on it.
//
// A store only one process opens needs no LeaseStore: that process holds
// every lease (internal/lease keeps them in memory then).
// internal/storetest.RunLeases is the conformance suite.
type LeaseStore interface {
	// AcquireLease takes the lease for holder until ttl from now if it is
	// free, expired or already held by holder (then it is a renewal), and
	// reports whether holder holds it now.
	AcquireLease(ctx context.Context, t TenantID, name, holder string, ttl time.Duration) (bool, error)
	// ReleaseLease frees the lease if holder holds it; otherwise it does
	// nothing.
	ReleaseLease(ctx context.Context, t TenantID, name, holder string) error
}

// ChangeFeed is implemented by stores several processes may share: each
// is told when another changed shared state it may cache (the tenant
// registry, a tenant's gate, a subject's key), so that its caches follow
// without a restart. A store only one process opens needs none.
type ChangeFeed interface {
	// ListenChanges calls fn for every change committed by any process
	// sharing the store (this one included), until ctx ends. When changes
	// may have been missed (the connection was lost), fn gets a Change of
	// topic ChangeAll, and the caller reloads whatever it caches. It
	// returns nil when ctx ends.
	ListenChanges(ctx context.Context, fn func(Change)) error
}

// Change is one change a ChangeFeed reports.
type Change struct {
	Topic  string // ChangeTenants, ChangeGate, ChangeSubject or ChangeAll
	Tenant TenantID
	// Subject is the subject of a ChangeSubject.
	Subject SubjectID
}

// The topics of a ChangeFeed.
const (
	// ChangeTenants: a tenant was created, updated (keys, settings) or deleted.
	ChangeTenants = "tenants"
	// ChangeGate: a tenant's gate generation advanced (a suppression,
	// erasure, consent change or merge).
	ChangeGate = "gate"
	// ChangeSubject: a subject's records were deleted (erased, or merged
	// into another): caches of its key are dropped.
	ChangeSubject = "subject"
	// ChangeAll: changes may have been missed; reload everything.
	ChangeAll = "all"
)
