package subjects

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/consent"
	"github.com/custos-dev/custos/internal/keyring"
)

// Options tunes a Pipeline. The zero value is usable.
type Options struct {
	// QueueLen bounds the requests waiting for the writer (default 4096).
	QueueLen int
	// MaxGroup bounds the messages the writer commits in one group (default 20,000).
	MaxGroup int
	// IdentityCache bounds the identifier→subject entries cached per tenant
	// (default 1,000,000): a tenant's cache that reached it starts over
	// before the next group, so one group may take it past.
	IdentityCache int
	// EnqueueTimeout is how long Ingest waits for room in a full queue
	// before answering Unavailable (default 2s).
	EnqueueTimeout time.Duration
	// DedupeCapacity is how many message ids the in-memory duplicate filter
	// holds per generation (default 20,000,000, 24 MB).
	DedupeCapacity int
	// DedupeWindow is how long a generation of the duplicate filter lasts
	// (default 24h): a retry is recognised for at least this long.
	DedupeWindow time.Duration
	// FilterFile, if set, is where Close saves the duplicate filter and
	// New loads it from, instead of rebuilding it from every record in the
	// store. New removes the file once loaded, so that after a crash (no
	// Close) the filter is rebuilt rather than trusted stale.
	FilterFile string
	// OnRebuild, if set, is told the records read so far while the
	// duplicate filter is rebuilt at start (every million, and at the end).
	OnRebuild func(records int, done bool)
	// OnCommit, if set, is called after each durable group commit with the
	// number of messages and how long the write took to become durable.
	OnCommit func(messages int, d time.Duration)
	// OnStaleRetry, if set, is called each time the writer composes a
	// group again because a shared store refused it as stale.
	OnStaleRetry func()
	// ConsentCache bounds the subjects whose consent state the writer
	// keeps in memory (default 200,000).
	ConsentCache int
	// FairWindow, if above 0, shares the writer between tenants: at most
	// this many messages are in the writer's hands at once, and when more
	// wait, the room that frees up goes to the tenants in turn, so one
	// tenant's flood does not hold up another's small batches (0: first
	// come, first served).
	FairWindow int
	// FairChunk is how many messages of one Ingest call enter the writer
	// at a time when FairWindow is set (default 32), so a tenant's large
	// batches interleave with other tenants' small ones.
	FairChunk int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Result counts what happened to the messages of one Ingest call.
type Result struct {
	Stored     int // stored as new events
	Duplicates int // dropped: a message with that id was stored before
	Suppressed int // dropped: the subject is suppressed
	Restricted int // dropped: the subject's processing is restricted
	Erased     int // dropped: carries an erased identifier and predates the erasure
	NoConsent  int // dropped: collection requires consent and the subject has no analytics grant
	// Consents counts the consent records the messages added to ledgers
	// (only changes are recorded); Unmapped counts the SDK consent
	// categories that map to no purpose, ignored.
	Consents int
	Unmapped int
}

// Pipeline is the ingest path. Create it with New, stop it with Close.
type Pipeline struct {
	store custos.DataStore
	ring  *keyring.Ring
	opts  Options

	queue  chan *job
	acks   chan *group
	mu     sync.RWMutex // guards closed against concurrent sends
	closed bool
	done   chan struct{}
	writer *writer   // touched by the writer goroutine only, until done
	fair   *fairGate // nil: no fair sharing
}

type job struct {
	// gone is closed when the caller stopped waiting (its context's Done).
	gone   <-chan struct{}
	tenant custos.TenantID
	msgs   []prepared
	// control, if set, makes this a change other than ingestion, run by
	// the writer in order with the messages.
	control func(*writer, *group) error
	// fences are those of the control job's context: work under a lease,
	// whose writes a shared store refuses once the lease has a newer
	// holder.
	fences []custos.Fence
	// policy, if set, is the tenant's consent policy for msgs.
	policy *consent.Policy
	res    Result
	err    error
	// release, if not nil, is called by the writer once it has applied
	// the job's group (or failed it): the job's messages are then no
	// longer ahead of anyone in the writer, only waiting for durability,
	// and their room in the fair gate's window frees up.
	release func()
	done    chan struct{}
}

// prepared is a message with everything computed that needs no ordering.
type prepared struct {
	msg  *custos.Message
	mid  custos.MessageHash
	ids  []hashedID
	prev []hashedID // alias: previousId as a user id and as an anonymous id
	body []byte     // the event, encoded, not yet sealed
	// consents are the consent records the message carries (policy set).
	consents []custos.ConsentRecord
	obs      observation // the categories of personal data it shows
}

type hashedID struct {
	id custos.Identifier
	h  custos.IdentifierHash
}

// New starts a pipeline writing to store with keys from ring. It first
// rebuilds the duplicate filter from the store's records.
func New(ctx context.Context, store custos.DataStore, ring *keyring.Ring, opts Options) (*Pipeline, error) {
	if opts.QueueLen <= 0 {
		opts.QueueLen = 4096
	}
	if opts.MaxGroup <= 0 {
		opts.MaxGroup = 20000
	}
	if opts.IdentityCache <= 0 {
		opts.IdentityCache = 1_000_000
	}
	if opts.EnqueueTimeout <= 0 {
		opts.EnqueueTimeout = 2 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.DedupeCapacity <= 0 {
		opts.DedupeCapacity = 20_000_000
	}
	if opts.ConsentCache <= 0 {
		opts.ConsentCache = 200_000
	}
	if opts.DedupeWindow <= 0 {
		opts.DedupeWindow = 24 * time.Hour
	}
	if opts.FairChunk <= 0 {
		opts.FairChunk = 32
	}
	p := &Pipeline{
		store: store,
		ring:  ring,
		opts:  opts,
		queue: make(chan *job, opts.QueueLen),
		acks:  make(chan *group, 64),
		done:  make(chan struct{}),
	}
	if opts.FairWindow > 0 {
		p.fair = newFairGate(opts.FairWindow)
	}
	w := &writer{
		p:      p,
		cache:  map[custos.TenantID]map[custos.IdentifierHash]custos.SubjectID{},
		recent: newRecentFilter(opts.DedupeCapacity, opts.DedupeWindow, opts.Now),
		flags:  map[subjectRef]custos.SubjectFlags{},
		tombs:  map[tombRef]custos.Tombstone{},

		observed: map[custos.TenantID]*observed{},
		consents: map[subjectRef]consent.State{},
		seq:      newSeq(),
		shared:   newShared(store),
		landed:   map[seenRef]bool{},
		ahead:    ahead{unlinked: map[linkRef]bool{}, profiles: map[subjectRef]storedProfile{}},
	}
	if err := w.loadGenerations(ctx); err != nil {
		return nil, err
	}
	if err := w.loadFlags(ctx); err != nil {
		return nil, fmt.Errorf("load subject flags: %w", err)
	}
	if err := w.loadTombstones(ctx); err != nil {
		return nil, fmt.Errorf("load erasure tombstones: %w", err)
	}
	// A filter saved by the last orderly stop is loaded (and removed, so
	// that a crash later rebuilds rather than trusts a stale one); else it
	// is rebuilt from every deduplication record.
	loaded := false
	if opts.FilterFile != "" {
		var err error
		if loaded, err = w.recent.load(opts.FilterFile); err != nil {
			return nil, fmt.Errorf("load duplicate filter: %w", err)
		}
		if err := os.Remove(opts.FilterFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("remove loaded duplicate filter: %w", err)
		}
	}
	if !loaded {
		if err := w.rebuildFilter(ctx); err != nil {
			return nil, fmt.Errorf("rebuild duplicate filter: %w", err)
		}
	}
	p.writer = w
	go w.run()
	go p.ack()
	return p, nil
}

// ErrClosed is returned by Ingest once the pipeline is shutting down.
var ErrClosed = &custos.Error{Code: custos.Unavailable, Message: "the server is shutting down; retry"}

// Ingest stores msgs for tenant t and returns once they are durable. The
// consent messages carry is ignored: see IngestWith.
func (p *Pipeline) Ingest(ctx context.Context, t custos.TenantID, msgs []custos.Message) (Result, error) {
	return p.IngestWith(ctx, t, msgs, nil)
}

// IngestWith is Ingest under a tenant's consent policy: the consent
// records messages carry are added to their subjects' ledgers (changes
// only), and, when the policy requires it, the events of subjects without
// a current analytics grant are dropped like a suppressed subject's.
func (p *Pipeline) IngestWith(ctx context.Context, t custos.TenantID, msgs []custos.Message, pol *consent.Policy) (Result, error) {
	if len(msgs) == 0 {
		return Result{}, nil
	}
	if p.fair == nil {
		return p.ingest(ctx, t, msgs, pol)
	}
	// One chunk at a time through the fair gate. A chunk holds its room
	// until the writer has applied it, not until it is durable: what the
	// window bounds is work ahead of other callers in the writer, and a
	// chunk waiting for the log's sync is not (the sync is shared). So
	// the next chunk can go in while the previous one's sync runs; the
	// call returns once every chunk is durable. If a chunk fails, the
	// caller gets the error and retries the whole batch, which
	// deduplication makes safe.
	var jobs []*job
	var err error
	for start := 0; start < len(msgs); start += p.opts.FairChunk {
		chunk := msgs[start:min(start+p.opts.FairChunk, len(msgs))]
		release, aerr := p.fair.acquire(ctx, t, len(chunk))
		if aerr != nil {
			err = &custos.Error{Code: custos.Unavailable, Message: "request cancelled while waiting for the writer", Err: aerr}
			break
		}
		j, serr := p.submit(ctx, t, chunk, pol, release)
		if serr != nil {
			release()
			err = serr
			break
		}
		jobs = append(jobs, j)
	}
	var total Result
	for _, j := range jobs {
		r, jerr := p.await(ctx, j)
		if err == nil {
			err = jerr
		}
		total.add(r)
	}
	if err != nil {
		return Result{}, err
	}
	return total, nil
}

// add adds the counts of r to res.
func (res *Result) add(r Result) {
	res.Stored += r.Stored
	res.Duplicates += r.Duplicates
	res.Suppressed += r.Suppressed
	res.Restricted += r.Restricted
	res.Erased += r.Erased
	res.NoConsent += r.NoConsent
	res.Consents += r.Consents
	res.Unmapped += r.Unmapped
}

// ingest is IngestWith for one chunk of messages.
func (p *Pipeline) ingest(ctx context.Context, t custos.TenantID, msgs []custos.Message, pol *consent.Policy) (Result, error) {
	j, err := p.submit(ctx, t, msgs, pol, nil)
	if err != nil {
		return Result{}, err
	}
	return p.await(ctx, j)
}

// submit prepares messages and queues them for the writer as one job,
// whose release, if not nil, the writer calls once it has applied the
// job. If submit fails, the job was not queued: release is the caller's.
func (p *Pipeline) submit(ctx context.Context, t custos.TenantID, msgs []custos.Message, pol *consent.Policy, release func()) (*job, error) {
	j := &job{gone: ctx.Done(), tenant: t, msgs: make([]prepared, len(msgs)), policy: pol, release: release, done: make(chan struct{})}
	unmapped := 0
	var obs observer
	for i := range msgs {
		if err := p.prepare(t, &msgs[i], &j.msgs[i]); err != nil {
			return nil, err
		}
		if pol != nil {
			var n int
			j.msgs[i].consents, n = pol.FromMessage(&msgs[i])
			unmapped += n
		}
		j.msgs[i].obs = obs.observe(&msgs[i])
	}
	j.res.Unmapped = unmapped
	if err := p.enqueue(ctx, j); err != nil {
		return nil, err
	}
	return j, nil
}

// await waits until a queued job is durable, or ctx ends.
func (p *Pipeline) await(ctx context.Context, j *job) (Result, error) {
	select {
	case <-j.done:
		return j.res, j.err
	case <-ctx.Done():
		// The write goes on; the caller will not learn its outcome and
		// must retry, which deduplication makes safe.
		return Result{}, &custos.Error{Code: custos.Unavailable, Message: "request cancelled before the write was durable", Err: ctx.Err()}
	}
}

func (p *Pipeline) enqueue(ctx context.Context, j *job) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	select {
	case p.queue <- j:
		return nil
	default:
	}
	timer := time.NewTimer(p.opts.EnqueueTimeout)
	defer timer.Stop()
	select {
	case p.queue <- j:
		return nil
	case <-timer.C:
		return &custos.Error{Code: custos.Unavailable, Message: "the store is busy; retry shortly"}
	case <-ctx.Done():
		return &custos.Error{Code: custos.Unavailable, Message: "request cancelled while waiting for the store", Err: ctx.Err()}
	}
}

func (p *Pipeline) prepare(t custos.TenantID, m *custos.Message, out *prepared) error {
	var err error
	out.msg = m
	if out.mid, err = p.ring.HashMessageID(t, m.MessageID); err != nil {
		return err
	}
	for _, id := range m.Identifiers() {
		h, err := p.ring.HashIdentifier(t, id)
		if err != nil {
			return err
		}
		out.ids = append(out.ids, hashedID{id.Normalize(), h})
		if d, ok := id.Derived(); ok {
			if h, err = p.ring.HashIdentifier(t, d); err != nil {
				return err
			}
			out.ids = append(out.ids, hashedID{d, h})
		}
	}
	if m.Type == custos.Alias && m.PreviousID != "" {
		for _, typ := range []custos.IdentifierType{custos.UserID, custos.AnonymousID} {
			id := custos.Identifier{Type: typ, Value: m.PreviousID}
			h, err := p.ring.HashIdentifier(t, id)
			if err != nil {
				return err
			}
			out.prev = append(out.prev, hashedID{id, h})
		}
	}
	out.body = appendEvent(make([]byte, 0, 256+len(m.Properties)+len(m.Traits)+len(m.Context)), m)
	return nil
}

// Close stops accepting work, finishes what was accepted and waits for it
// to be durable.
func (p *Pipeline) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.done
		return
	}
	p.closed = true
	close(p.queue)
	p.mu.Unlock()
	<-p.done
}

// Run lets the writer work until ctx ends, then drains it: it stops
// accepting work, waits until everything accepted is durable (Close) and
// saves the duplicate filter (SaveFilter). The writer's goroutines start
// in New, so that the state it loads is checked before anything runs.
func (p *Pipeline) Run(ctx context.Context) error {
	<-ctx.Done()
	p.Close()
	if err := p.SaveFilter(); err != nil {
		return fmt.Errorf("the duplicate filter was not saved; the next start rebuilds it: %w", err)
	}
	return nil
}

// SaveFilter writes the duplicate filter to Options.FilterFile, for the
// next New to load. Call it after Close: the filter is the writer's.
func (p *Pipeline) SaveFilter() error {
	if p.opts.FilterFile == "" {
		return nil
	}
	select {
	case <-p.done:
	default:
		return errors.New("save duplicate filter: the pipeline is still running")
	}
	return p.writer.recent.save(p.opts.FilterFile)
}

// ack completes groups in commit order once they are durable.
func (p *Pipeline) ack() {
	defer close(p.done)
	for g := range p.acks {
		err := g.wait()
		// A group one of whose Applies was refused (failGroup) has not
		// made its changes: a merge refused by a shared store must not
		// destroy the key of the subject it did not absorb.
		if err == nil && g.failed == nil {
			for _, f := range g.afterDurable {
				if ferr := f(); ferr != nil && err == nil {
					err = ferr
				}
			}
		}
		if p.opts.OnCommit != nil {
			p.opts.OnCommit(g.messages, time.Since(g.start))
		}
		for _, j := range g.jobs {
			if j.err == nil && err != nil {
				j.err = &custos.Error{Code: custos.Unavailable, Message: "the write could not be made durable; retry", Err: err}
			}
			close(j.done)
		}
	}
}

// errShreddedSubject marks a resolved subject whose key was destroyed.
var errShreddedSubject = errors.New("subject key shredded")
