package custos

import (
	"context"
	"errors"
	"fmt"
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
	// free, expired or already held by holder (then it is a renewal). It
	// returns the lease's fencing token if holder holds it now, zero if
	// not. The token of a name grows with every new holder (a take-over,
	// or an acquisition after a release) and stays the same on a renewal,
	// so a write made under an older token can be told from one made
	// under the current holder's (see Fence).
	AcquireLease(ctx context.Context, t TenantID, name, holder string, ttl time.Duration) (token uint64, err error)
	// ReleaseLease frees the lease if holder holds it; otherwise it does
	// nothing.
	ReleaseLease(ctx context.Context, t TenantID, name, holder string) error
}

// Fence names the lease some work holds and the fencing token its holder
// got. Work done under a lease writes with a context carrying its fence
// (WithFence; internal/lease does it for the work it runs), and a store
// several processes share refuses a write whose fence is no longer
// current — another holder took the lease over since — with an error
// whose cause is ErrFenced, changing nothing. A holder that stalled past
// its lease (a paused VM, a long GC pause) thus cannot land a late write
// over the work of the node that took over.
//
// Which writes a shared store checks is part of its contract; the
// PostgreSQL store checks PutDelivery (outbox attempts, and deliveries
// queued under a lease), PutRequest (erasure steps), PutSend,
// PutSendCapped and PutCampaign (campaign runs). A store only one process
// opens ignores fences: its leases are in that process.
type Fence struct {
	Tenant TenantID
	Lease  string
	Token  uint64
}

type fenceKey struct{}

// WithFence returns a context whose writes are made under the fence f as
// well as under the fences ctx carries already (work under a lease that
// takes another lease writes under both).
func WithFence(ctx context.Context, f Fence) context.Context {
	fs := Fences(ctx)
	return context.WithValue(ctx, fenceKey{}, append(fs[:len(fs):len(fs)], f))
}

// Fences returns the fences ctx carries, outermost first.
func Fences(ctx context.Context) []Fence {
	fs, _ := ctx.Value(fenceKey{}).([]Fence)
	return fs
}

// ErrFenced is the cause of a write a shared store refused because the
// lease it was made under has a newer holder (see Fence).
var ErrFenced = errors.New("the lease this write was made under has a newer holder")

// FencedError returns the error of a write refused for fence f: a
// Conflict whose cause is ErrFenced; current is the lease's token now
// (zero when the lease is gone).
func FencedError(f Fence, current uint64) error {
	return &Error{Code: Conflict,
		Message: fmt.Sprintf("lease %s of tenant %s has a newer holder (fencing token %d, this write's %d): the write is refused", f.Lease, f.Tenant, current, f.Token),
		Err:     ErrFenced}
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
	Topic  string // ChangeTenants, ChangeGate, ChangeSubject, ChangeOutbox or ChangeAll
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
	// ChangeOutbox: a delivery was queued in the tenant's outbox; the
	// node sending the outbox looks for due deliveries at once instead of
	// at its next poll.
	ChangeOutbox = "outbox"
	// ChangeAll: changes may have been missed; reload everything.
	ChangeAll = "all"
)
