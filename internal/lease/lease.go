package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/custos-dev/custos"
)

// DefaultTTL is how long a lease lasts unless renewed: how long a node's
// work waits, at most, to be taken over after that node died.
const DefaultTTL = 15 * time.Second

// Options configures Leases. The zero value is usable.
type Options struct {
	// TTL is the lifetime of a lease (default DefaultTTL). A holder renews
	// it every TTL/3, and stops its work once TTL*2/3 passed without a
	// successful renewal, so it has stopped before another node can take
	// the lease over.
	TTL time.Duration
	// Node names this node in lease holders (default: host name and pid),
	// for an operator reading the leases table.
	Node string
	// Log receives a line when a lease is lost or taken over (default:
	// discarded).
	Log *slog.Logger
}

// Leases holds leases in a store for work of this node.
type Leases struct {
	store custos.LeaseStore
	ttl   time.Duration
	node  string
	log   *slog.Logger
}

// ErrLost is the cause of the context of work whose lease was lost or
// could not be renewed in time.
var ErrLost = errors.New("lease lost")

// New returns Leases over store; a nil store means a store only this
// process opens, and the leases are kept in memory (Local).
func New(store custos.LeaseStore, o Options) *Leases {
	if store == nil {
		store = &Local{}
	}
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.Node == "" {
		host, _ := os.Hostname()
		o.Node = host + ":" + strconv.Itoa(os.Getpid())
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Leases{store: store, ttl: o.TTL, node: o.Node, log: o.Log}
}

// TTL returns the lifetime of a lease.
func (l *Leases) TTL() time.Duration { return l.ttl }

// Hold runs fn while holding the lease (t, name), and returns fn's error
// with held true. If another holder has the lease, it returns held false
// at once without calling fn. The lease is renewed while fn runs; fn's
// context ends (cause ErrLost) if a renewal fails for long enough that
// the lease could expire, so fn stops before another node may start the
// same work. fn's context carries the lease's fence (custos.WithFence):
// a shared store refuses fn's writes once another holder took the lease
// over, should fn not have stopped in time. The lease is released when
// fn returns.
func (l *Leases) Hold(ctx context.Context, t custos.TenantID, name string, fn func(context.Context) error) (held bool, err error) {
	holder := l.node + "/" + random()
	start := time.Now()
	token, err := l.store.AcquireLease(ctx, t, name, holder, l.ttl)
	if err != nil || token == 0 {
		return false, err
	}
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { l.renew(wctx, cancel, stop, t, name, holder, token, start) })
	err = fn(custos.WithFence(wctx, custos.Fence{Tenant: t, Lease: name, Token: token}))
	close(stop)
	wg.Wait()
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), l.ttl/3)
	defer rcancel()
	if rerr := l.store.ReleaseLease(rctx, t, name, holder); rerr != nil {
		// It expires by itself.
		l.log.Warn("release lease", "lease", name, "tenant", t.String(), "err", rerr)
	}
	return true, err
}

// renew renews the lease every TTL/3 until stop is closed; when the lease
// is lost, or not renewed for TTL*2/3, it cancels the work.
func (l *Leases) renew(ctx context.Context, cancel context.CancelCauseFunc, stop <-chan struct{}, t custos.TenantID, name, holder string, token uint64, last time.Time) {
	tick := time.NewTicker(l.ttl / 3)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		start := time.Now()
		rctx, rcancel := context.WithTimeout(ctx, l.ttl/3)
		got, err := l.store.AcquireLease(rctx, t, name, holder, l.ttl)
		rcancel()
		switch {
		case err == nil && got == token:
			last = start
			continue
		case err == nil:
			l.log.Warn("lease taken over by another node: stopping its work", "lease", name, "tenant", t.String())
			cancel(ErrLost)
			return
		case time.Since(last) >= l.ttl*2/3:
			l.log.Warn("lease not renewed in time: stopping its work", "lease", name, "tenant", t.String(), "err", err)
			cancel(ErrLost)
			return
		}
	}
}

// Run runs fn, a background loop that returns when its context ends,
// whenever this node holds the cluster-wide lease name: it tries to take
// the lease every TTL/3, runs fn while it holds it, and tries again when
// the lease was lost. It returns nil when ctx ends, or when fn returned
// nil on its own (it has nothing to do, e.g. no mail server configured).
func (l *Leases) Run(ctx context.Context, name string, fn func(context.Context) error) error {
	for {
		lost := false
		held, err := l.Hold(ctx, custos.TenantID{}, name, func(ctx context.Context) error {
			l.log.Info("lease taken: running", "lease", name)
			err := fn(ctx)
			lost = errors.Is(context.Cause(ctx), ErrLost)
			return err
		})
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case held && err == nil && !lost:
			return nil
		case err != nil && held:
			l.log.Error("leased work stopped", "lease", name, "err", err)
		case err != nil:
			l.log.Warn("acquire lease", "lease", name, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(l.ttl / 3):
		}
	}
}

func random() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}
