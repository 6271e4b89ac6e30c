package webhook

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/urlpolicy"
)

// Sealer seals the body and secret of a delivery at rest (keyring.Ring
// satisfies it).
type Sealer interface {
	SealTenant(t custos.TenantID, recordKey, plaintext []byte) ([]byte, error)
	OpenTenant(t custos.TenantID, recordKey, sealed []byte) ([]byte, error)
}

// Options configures an Outbox. The zero value is usable.
type Options struct {
	// Client sends the POSTs. The default times out after 10 seconds and
	// follows no redirect: a signed body goes only where it was addressed,
	// and a 3xx answer is retried like any other failure.
	Client *http.Client
	// Now is the clock (default time.Now).
	Now func() time.Time
	// MinBackoff and MaxBackoff bound the wait before a retry (defaults 1s
	// and 1h); MinBackoff is also how often an idle Run polls the store.
	MinBackoff, MaxBackoff time.Duration
	// Log receives a line per attempt: delivery id, kind, tenant, status;
	// never a body or a secret (default: discarded).
	Log *slog.Logger
	// OnResult, if set, is called with each attempt's outcome once it is
	// stored (delivered, refused or rescheduled), without Body and Secret,
	// on the attempt's goroutine: calls may come at once.
	OnResult func(custos.Delivery)
	// Concurrency bounds the attempts in flight at once (default 16), and
	// PerTenant those of one tenant (default 2): a tenant whose receiver
	// hangs until the client's timeout holds PerTenant of them, and the
	// other tenants' deliveries go on.
	Concurrency, PerTenant int
	// Signers sign the deliveries whose Signing names them, in place of
	// the HMAC; a delivery naming a signer not here fails for good.
	Signers map[string]Signer
	// MaxAge is how long after its creation a delivery is retried: one
	// still undelivered then is given up, recorded final with the reason
	// (default DefaultMaxAge).
	MaxAge time.Duration
	// OnGiveUp, if set, is called with each delivery given up for age,
	// once it is stored (for a metric).
	OnGiveUp func(custos.Delivery)
}

// DefaultMaxAge is how long a delivery is retried by default.
const DefaultMaxAge = 7 * 24 * time.Hour

// Signer signs a delivery body with headers of its protocol (OpenDSR's
// certificate signature, say).
type Signer interface {
	SignHeaders(body []byte) (http.Header, error)
}

// Outbox stores deliveries durably and sends them, retrying until the
// receiver answers 2xx or refuses for good. It is safe for concurrent use.
type Outbox struct {
	store    custos.OutboxStore
	sealer   Sealer
	client   *http.Client
	now      func() time.Time
	min, max time.Duration
	log      *slog.Logger
	onResult func(custos.Delivery)
	onGiveUp func(custos.Delivery)
	signers  map[string]Signer
	maxAge   time.Duration

	kick chan struct{}
	// pass makes passes one at a time.
	pass sync.Mutex

	concurrency, perTenant int
	mu                     sync.Mutex
	inflight               map[deliveryRef]bool
	busy                   map[custos.TenantID]int // attempts in flight by tenant
	running                int
	// finished are the deliveries whose attempts ended since the current
	// pass began reading: what it read of them may be older than their
	// outcome, so it must not attempt them again.
	finished map[deliveryRef]bool
	attempts sync.WaitGroup
}

// deliveryRef names a delivery.
type deliveryRef struct {
	t  custos.TenantID
	id string
}

// batchSize is how many due deliveries a pass reads from the store at a time.
const batchSize = 100

// The defaults of Options.Concurrency and Options.PerTenant.
const (
	DefaultConcurrency = 16
	DefaultPerTenant   = 2
)

// New returns an Outbox over store that seals with sealer. Call Run to
// send; Enqueue works without it, and DeliverDue sends what is due once.
func New(store custos.OutboxStore, sealer Sealer, opts Options) *Outbox {
	o := &Outbox{
		store: store, sealer: sealer, client: opts.Client, now: opts.Now,
		min: opts.MinBackoff, max: opts.MaxBackoff, log: opts.Log, onResult: opts.OnResult, signers: opts.Signers,
		maxAge: opts.MaxAge, onGiveUp: opts.OnGiveUp,
		kick:        make(chan struct{}, 1),
		concurrency: opts.Concurrency, perTenant: opts.PerTenant,
		inflight: map[deliveryRef]bool{}, busy: map[custos.TenantID]int{}, finished: map[deliveryRef]bool{},
	}
	if o.concurrency <= 0 {
		o.concurrency = DefaultConcurrency
	}
	if o.perTenant <= 0 {
		o.perTenant = DefaultPerTenant
	}
	o.perTenant = min(o.perTenant, o.concurrency)
	if o.client == nil {
		o.client = &http.Client{
			Timeout:       10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.maxAge <= 0 {
		o.maxAge = DefaultMaxAge
	}
	if o.min <= 0 {
		o.min = time.Second
	}
	if o.max <= 0 {
		o.max = time.Hour
	}
	o.max = max(o.max, o.min)
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	return o
}

// Enqueue stores a delivery durably, its Body and Secret sealed together
// under the tenant's key (record key: the delivery id), due now, and kicks
// the sender. It fills ID (sortable by creation: time, then random) and
// CreatedAt when empty, and starts the delivery afresh: no attempts, not
// final. It returns the delivery as stored.
func (o *Outbox) Enqueue(ctx context.Context, d custos.Delivery) (custos.Delivery, error) {
	if err := validate(&d); err != nil {
		return custos.Delivery{}, err
	}
	now := o.now().UTC()
	if d.ID == "" {
		d.ID = newID(now)
	}
	if d.CreatedAt.IsZero() {
		d.CreatedAt = now
	}
	d.Attempts, d.NextAt, d.LastStatus, d.LastError = 0, now, 0, ""
	d.DeliveredAt, d.Final = time.Time{}, false
	sealed, err := o.sealer.SealTenant(d.Tenant, []byte(d.ID), pack(d.Secret, d.Body))
	if err != nil {
		return custos.Delivery{}, fmt.Errorf("seal delivery %s: %w", d.ID, err)
	}
	// The store gets the body and secret only sealed.
	stored := d
	stored.Body, stored.Secret = nil, nil
	if err := o.store.PutDelivery(ctx, &stored, sealed); err != nil {
		return custos.Delivery{}, fmt.Errorf("store delivery %s: %w", d.ID, err)
	}
	o.log.Info("webhook enqueued", "delivery", d.ID, "kind", d.Kind, "tenant", d.Tenant.String())
	o.Kick()
	return d, nil
}

// validate checks what a delivery needs to be sent; the id and kind go
// into headers and keys, so they are kept to a safe alphabet.
func validate(d *custos.Delivery) error {
	switch {
	case d.Tenant == custos.TenantID{}:
		return custos.Errorf(custos.Invalid, "delivery has no tenant")
	case d.ID != "" && !token(d.ID):
		return custos.Errorf(custos.Invalid, "delivery id must be 1 to 128 letters, digits or ._:-")
	case !token(d.Kind):
		return custos.Errorf(custos.Invalid, "delivery kind must be 1 to 128 letters, digits or ._:-")
	case len(d.Secret) == 0 && d.Signing == "":
		return custos.Errorf(custos.Invalid, "delivery has no signing secret")
	}
	if _, err := (urlpolicy.Policy{}).Check("delivery URL", d.URL); err != nil {
		return custos.Errorf(custos.Invalid, "%v", err)
	}
	return nil
}

func token(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for _, c := range []byte(s) {
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '.' || c == '_' || c == ':' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

// newID returns a delivery id that sorts by creation time.
func newID(now time.Time) string {
	b := make([]byte, 8)
	rand.Read(b)
	return "dlv_" + now.UTC().Format("20060102T150405.000000000") + "_" + hex.EncodeToString(b)
}

// pack joins secret and body into one plaintext to seal: a 4-byte
// big-endian secret length, the secret, the body.
func pack(secret, body []byte) []byte {
	p := make([]byte, 0, 4+len(secret)+len(body))
	p = binary.BigEndian.AppendUint32(p, uint32(len(secret)))
	p = append(p, secret...)
	return append(p, body...)
}

func unpack(p []byte) (secret, body []byte, err error) {
	if len(p) < 4 || uint64(len(p)-4) < uint64(binary.BigEndian.Uint32(p)) {
		return nil, nil, fmt.Errorf("sealed delivery of %d bytes is malformed", len(p))
	}
	n := 4 + int(binary.BigEndian.Uint32(p))
	return p[4:n], p[n:], nil
}

// Kick wakes Run to look for due deliveries now. It never blocks.
func (o *Outbox) Kick() {
	select {
	case o.kick <- struct{}{}:
	default:
	}
}

// Run delivers due deliveries until ctx is done. It makes a pass at once,
// then after each Kick, each attempt's end, and when the earliest NextAt
// in the store arrives, and polls the store every MinBackoff when idle
// (another process may share it). A pass starts attempts and does not
// wait for them, so a receiver that hangs delays no other tenant's
// deliveries. A failed pass is logged and retried. Run returns nil, once
// the attempts it started have ended.
func (o *Outbox) Run(ctx context.Context) error {
	defer o.attempts.Wait()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-o.kick:
		case <-timer.C:
		}
		_, err := o.deliver(ctx, false)
		if ctx.Err() != nil {
			return nil
		}
		wait := o.min
		if err != nil {
			o.log.Error("webhook pass failed", "err", err)
		} else {
			wait = o.untilNext(ctx)
		}
		timer.Reset(wait)
	}
}

// untilNext returns how long to wait for the earliest delivery not final
// that no attempt in flight holds, at most MinBackoff, and at least a
// little so that a delivery a pass could not move never makes Run spin.
func (o *Outbox) untilNext(ctx context.Context) time.Duration {
	// Due by the end of time, limit 1: the earliest delivery not final.
	farFuture := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	ds, _, err := o.store.DueDeliveries(ctx, custos.DueQuery{Now: farFuture, Skip: o.fullTenants(), Limit: 1})
	if err != nil {
		o.log.Error("webhook: read next due delivery", "err", err)
		return o.min
	}
	if len(ds) == 0 || o.inFlight(ds[0]) {
		// An attempt's end kicks Run.
		return o.min
	}
	return min(max(ds[0].NextAt.Sub(o.now()), 10*time.Millisecond), o.min)
}

// DeliverDue attempts each delivery due now once (what Run does each
// time it wakes) and waits for the attempts to end; exported for tests and
// for a clean shutdown. A delivery whose attempt is in flight is left to
// that attempt. It returns how many POSTs it made and the first error
// storing an outcome, or ctx's error if ctx ended it; a delivery whose
// attempt ctx interrupted stays due.
func (o *Outbox) DeliverDue(ctx context.Context) (attempted int, err error) {
	return o.deliver(ctx, true)
}

// deliver makes passes over the due deliveries. A pass pages through
// them in due order and starts an attempt at each that the tenant's share
// and the concurrency allow. Without wait, deliver makes one pass and
// returns at once; with wait, it waits for its attempts, and makes more
// passes while deliveries were left for want of a place.
func (o *Outbox) deliver(ctx context.Context, wait bool) (int, error) {
	var (
		mu        sync.Mutex
		attempted int
		first     error
		mine      sync.WaitGroup
	)
	done := func(posted bool, err error) {
		mu.Lock()
		defer mu.Unlock()
		if posted {
			attempted++
		}
		if err != nil && first == nil {
			first = err
		}
	}
	// A delivery rescheduled by an attempt of this call, and due again
	// already, waits for the next.
	seen := map[deliveryRef]bool{}
	for {
		started, left, err := o.passOnce(ctx, seen, &mine, done)
		if wait {
			mine.Wait()
		}
		// Places held by attempts not of this call (Run's) are not waited
		// for: a pass that could start nothing ends the call.
		if err != nil || ctx.Err() != nil || !wait || !left || started == 0 {
			mu.Lock()
			defer mu.Unlock()
			switch {
			case ctx.Err() != nil:
				return attempted, ctx.Err()
			case err != nil:
				return attempted, err
			}
			return attempted, first
		}
	}
}

// passOnce makes one pass: it starts attempts, each under mine and
// reporting to done, and says how many, and whether it left a due
// delivery for want of a place.
func (o *Outbox) passOnce(ctx context.Context, seen map[deliveryRef]bool, mine *sync.WaitGroup, done func(bool, error)) (started int, left bool, err error) {
	o.pass.Lock()
	defer o.pass.Unlock()
	o.mu.Lock()
	clear(o.finished)
	o.mu.Unlock()
	var after *custos.DueCursor
	for ctx.Err() == nil {
		if o.full() {
			return started, true, nil // an attempt's end kicks Run
		}
		ds, sealed, err := o.store.DueDeliveries(ctx, custos.DueQuery{Now: o.now(), After: after, Skip: o.fullTenants(), Limit: batchSize})
		if err != nil {
			return started, left, fmt.Errorf("read due deliveries: %w", err)
		}
		for i := range ds {
			d := ds[i]
			after = d.Cursor()
			ref := deliveryRef{d.Tenant, d.ID}
			if seen[ref] {
				continue
			}
			earlier, err := o.earlierPending(ctx, d)
			if err != nil {
				return started, left, fmt.Errorf("read the deliveries of request %s: %w", d.RequestID, err)
			}
			if earlier {
				left = true
				continue
			}
			switch o.start(ref) {
			case noPlace:
				left = true
				continue
			case alreadyTried:
				continue
			}
			seen[ref] = true
			started++
			mine.Add(1)
			go func() {
				defer mine.Done()
				defer o.end(ref)
				done(o.attempt(ctx, d, sealed[i]))
			}()
		}
		if len(ds) < batchSize {
			// The tenants skipped as full were left too.
			return started, left || len(o.fullTenants()) > 0, nil
		}
	}
	return started, left, nil
}

// earlierPending reports whether a delivery made earlier for the same
// request to the same URL is in flight or due too: a receiver gets a
// request's callbacks in the order they were made — in_progress before
// completed — even though attempts run concurrently, so a later one waits
// for the earlier's attempt. An earlier one waiting for a retry does not
// hold it back: the receiver learns the newer status meanwhile (and each
// callback carries its status and time).
func (o *Outbox) earlierPending(ctx context.Context, d custos.Delivery) (bool, error) {
	if d.RequestID == "" {
		return false, nil
	}
	ds, err := o.store.Deliveries(ctx, d.Tenant, d.RequestID)
	if err != nil {
		return false, err
	}
	now := o.now()
	for _, e := range ds {
		if e.ID == d.ID {
			return false, nil
		}
		if e.URL == d.URL && !e.Final && (o.inFlight(e) || !e.NextAt.After(now)) {
			return true, nil
		}
	}
	return false, nil
}

// What start says.
const (
	placeTaken   = iota // the attempt may go
	noPlace             // the tenant's share or the outbox is full
	alreadyTried        // an attempt is in flight or has just ended
)

// start takes an attempt's place for a delivery, unless one is in flight
// or has just ended, or its tenant or the outbox has none left.
func (o *Outbox) start(ref deliveryRef) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case o.inflight[ref] || o.finished[ref]:
		return alreadyTried
	case o.running >= o.concurrency || o.busy[ref.t] >= o.perTenant:
		return noPlace
	}
	o.inflight[ref] = true
	o.busy[ref.t]++
	o.running++
	o.attempts.Add(1)
	return placeTaken
}

// end gives back an attempt's place and kicks Run to use it.
func (o *Outbox) end(ref deliveryRef) {
	o.mu.Lock()
	delete(o.inflight, ref)
	o.finished[ref] = true
	if o.busy[ref.t]--; o.busy[ref.t] == 0 {
		delete(o.busy, ref.t)
	}
	o.running--
	o.mu.Unlock()
	o.attempts.Done()
	o.Kick()
}

// full reports whether every attempt's place is taken.
func (o *Outbox) full() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.running >= o.concurrency
}

// fullTenants returns the tenants with every place of their share taken.
func (o *Outbox) fullTenants() []custos.TenantID {
	o.mu.Lock()
	defer o.mu.Unlock()
	var ts []custos.TenantID
	for t, n := range o.busy {
		if n >= o.perTenant {
			ts = append(ts, t)
		}
	}
	return ts
}

// inFlight reports whether an attempt at d is in flight.
func (o *Outbox) inFlight(d custos.Delivery) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.inflight[deliveryRef{d.Tenant, d.ID}]
}
