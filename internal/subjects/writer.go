package subjects

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/consent"
	"github.com/custos-dev/custos/internal/keyring"
)

// writer is the single goroutine that orders every change to the data.
// Its caches need no locks because nothing else touches them.
type writer struct {
	p     *Pipeline
	cache map[custos.TenantID]map[custos.IdentifierHash]custos.SubjectID
	// recent remembers the ids of recently stored messages.
	recent *recentFilter
	// flags is the gate: every subject's standing restrictions.
	flags map[subjectRef]custos.SubjectFlags
	// tombs are the identifiers of erased subjects.
	tombs map[tombRef]custos.Tombstone
	// consents caches the consent State of subjects (see consent.go);
	// seq numbers consent records.
	consents map[subjectRef]consent.State
	seq      uint64
	// observed are the categories of personal data seen per tenant, loaded
	// on a tenant's first message.
	observed map[custos.TenantID]*observed
	// shared is set when other processes write the store too (shared.go).
	shared *shared
	// ahead is what was read ahead for the jobs being handled (ahead.go).
	ahead ahead
	// landed are the messages a group refused in part stored (split.go),
	// until the group is composed again.
	landed map[seenRef]bool
}

// group is the work committed together: one store batch, one WAL sync.
type group struct {
	start        time.Time
	jobs         []*job
	messages     int
	writes       map[custos.TenantID]*custos.Write
	order        []custos.TenantID
	profiles     map[subjectRef]*profileState
	seen         map[seenRef]struct{}
	waits        []func() error
	afterDurable []func() error
	// observedDirty are the tenants whose observed categories changed.
	observedDirty []custos.TenantID
	// failed is set when an Apply of the group failed (see failGroup).
	failed error
	// wrote is set once an Apply of the group succeeded.
	wrote bool
	// touched counts the calls of write: a control job that made none
	// (and dirtied no profile) only read.
	touched int
	// created are the subjects the group created that no applied write
	// holds yet: nothing but this group knows them.
	created map[subjectRef]bool
}

type subjectRef struct {
	t custos.TenantID
	s custos.SubjectID
}

type seenRef struct {
	t  custos.TenantID
	id custos.MessageHash
}

type profileState struct {
	rec   *profileRecord
	key   *keyring.SubjectKey
	dirty bool
	// base is the SHA-256 of the sealed profile as last read or written
	// (zero: none was stored), what a shared store checks it still holds.
	base [32]byte
}

func newGroup() *group {
	return &group{
		start:    time.Now(),
		writes:   map[custos.TenantID]*custos.Write{},
		profiles: map[subjectRef]*profileState{},
		seen:     map[seenRef]struct{}{},
		created:  map[subjectRef]bool{},
	}
}

func (g *group) write(t custos.TenantID) *custos.Write {
	g.touched++
	w := g.writes[t]
	if w == nil {
		w = &custos.Write{Tenant: t}
		g.writes[t] = w
		g.order = append(g.order, t)
	}
	return w
}

// dirtyProfiles counts the group's profiles changed and not yet sealed.
func (g *group) dirtyProfiles() int {
	n := 0
	for _, ps := range g.profiles {
		if ps.dirty {
			n++
		}
	}
	return n
}

// wait blocks until every write of the group is durable.
func (g *group) wait() error {
	var first error
	for _, w := range g.waits {
		if err := w(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (w *writer) run() {
	defer close(w.p.acks)
	for j := range w.p.queue {
		if len(w.consents) >= w.p.opts.ConsentCache {
			// Between groups everything is in the store: starting over is safe.
			w.consents = map[subjectRef]consent.State{}
		}
		for t, c := range w.cache {
			if len(c) >= w.p.opts.IdentityCache {
				// Starting over is cheaper than tracking recency on every
				// hit, and a miss costs one indexed read. Within a group
				// it would forget links the group made and the store does
				// not hold yet.
				delete(w.cache, t)
			}
		}
		g := newGroup()
		batch, open := w.take([]*job{j}, 0)
		for {
			w.handleAll(g, batch)
			if !open || g.messages >= w.p.opts.MaxGroup {
				break
			}
			if batch, open = w.take(batch[:0], g.messages); len(batch) == 0 {
				break
			}
		}
		g = w.commit(g)
		for _, j := range g.jobs {
			if j.release != nil {
				j.release()
			}
		}
		w.p.acks <- g
		clear(w.landed)
	}
}

// take appends to batch the jobs queued now, until the group would hold
// its most messages (has already); open is false once the queue is closed.
func (w *writer) take(batch []*job, has int) (_ []*job, open bool) {
	for _, j := range batch {
		has += len(j.msgs)
	}
	for has < w.p.opts.MaxGroup {
		select {
		case j, ok := <-w.p.queue:
			if !ok {
				return batch, false
			}
			batch = append(batch, j)
			has += len(j.msgs)
		default:
			return batch, true
		}
	}
	return batch, true
}

// staleRetries is how many times a group a shared store refused as stale
// is composed again before its clients are answered 503. Before each, the
// writer waits a random time up to staleBackoff, doubled at each try, so
// that two nodes updating the same people do not collide in step again.
const (
	staleRetries = 5
	staleBackoff = 2 * time.Millisecond
)

// commit flushes the group and returns it, or the group that replaced it.
// On a shared store another node may have changed, since this node's
// caches read it, what a group was composed on (a profile, a link, the
// gate): the store refuses the group whole (a *StaleError), and the
// writer, its caches refreshed, composes it again from the same messages,
// as the clients' retry would, rather than answer them 503.
func (w *writer) commit(g *group) *group {
	for try := 0; ; try++ {
		if g.failed == nil {
			if err := w.flush(context.Background(), g); err != nil {
				// The cache may hold records the store refused.
				w.consents = map[subjectRef]consent.State{}
				// Categories noted for messages that were not stored are
				// forgotten; the next message of each tenant reloads them.
				clear(w.observed)
				for _, j := range g.jobs {
					if j.err == nil {
						j.err = &custos.Error{Code: custos.Unavailable, Message: "the store refused the write; retry", Err: err}
					}
				}
				if g.failed == nil {
					return g // not a refused Apply: nothing to compose again
				}
			}
		}
		if g.failed == nil || try == staleRetries || !g.recomposable() {
			return g
		}
		if w.p.opts.OnStaleRetry != nil {
			w.p.opts.OnStaleRetry()
		}
		time.Sleep(rand.N(staleBackoff << try))
		again := newGroup()
		again.start = g.start
		// The keys of subjects the refused attempt created are in the key
		// store already; they are waited for as before.
		again.waits = g.waits
		for _, j := range g.jobs {
			j.res, j.err = Result{}, nil
		}
		w.handleAll(again, g.jobs)
		g = again
	}
}

// recomposable reports whether a failed group can be composed again: the
// store refused it as stale before any of it was written, and it holds
// only messages (a control job, an erasure say, is its caller's to retry).
// Its work after durability (a merged subject's key to shred) is dropped
// with it; the group composed again has its own.
func (g *group) recomposable() bool {
	var stale *custos.StaleError
	if !errors.As(g.failed, &stale) || g.wrote {
		return false
	}
	for _, j := range g.jobs {
		if j.control != nil {
			return false
		}
	}
	return true
}

// flush seals dirty profiles and applies the group's pending writes.
func (w *writer) flush(ctx context.Context, g *group) error {
	// What was read ahead may be what these writes replace.
	w.forgetAhead()
	for ref, ps := range g.profiles {
		if !ps.dirty {
			continue
		}
		plain, err := json.Marshal(ps.rec)
		if err != nil {
			return fmt.Errorf("encode profile: %w", err)
		}
		sealed, err := ps.key.Seal(nil, profileRecordKey, plain)
		if err != nil {
			return fmt.Errorf("seal profile: %w", err)
		}
		wr := g.write(ref.t)
		wr.Profiles = append(wr.Profiles, custos.StoredProfile{Subject: ref.s, Value: sealed})
		ps.dirty = false
		w.noteProfile(ref.t, ref.s, ps.base)
		ps.base = sha256.Sum256(sealed)
	}
	if err := w.sealObserved(g); err != nil {
		return err
	}
	var ws []*custos.Write
	for _, t := range g.order {
		if w := g.writes[t]; !w.Empty() {
			ws = append(ws, w)
		}
	}
	g.writes = map[custos.TenantID]*custos.Write{}
	g.order = g.order[:0]
	if len(ws) == 0 {
		return nil
	}
	w.guard(g, ws)
	wait, err := w.apply(ctx, ws)
	if err != nil {
		if w.shared != nil {
			w.refused(ctx, err)
		}
		w.failGroup(g, err)
		return err
	}
	w.applied(ws)
	g.wrote = true
	// Once stored, the subjects can be read, and cached, by other nodes.
	clear(g.created)
	g.waits = append(g.waits, wait)
	return nil
}

func (w *writer) handle(g *group, j *job) {
	g.jobs = append(g.jobs, j)
	g.messages += len(j.msgs)
	if g.failed != nil {
		j.err = &custos.Error{Code: custos.Unavailable, Message: "the store refused the write; retry", Err: g.failed}
		return
	}
	select {
	case <-j.gone:
		j.err = &custos.Error{Code: custos.Unavailable, Message: "request cancelled before it was written"}
		return
	default:
	}
	if j.control != nil {
		// A control job may change what was read ahead.
		w.forgetAhead()
		w.runControl(g, j)
		return
	}
	// Once begun, a job is finished even if its caller goes away: the
	// writer never leaves a message half-applied.
	ctx := context.Background()
	for i := range j.msgs {
		outcome, err := w.message(ctx, g, j, &j.msgs[i])
		if err != nil {
			// Messages before this one are stored; a retry of the whole
			// request is safe because duplicates are dropped.
			j.err = &custos.Error{Code: custos.Unavailable, Message: "the store failed; retry", Err: err}
			return
		}
		switch outcome {
		case "":
			j.res.Stored++
		case "duplicate":
			j.res.Duplicates++
		case "suppressed":
			j.res.Suppressed++
		case "restricted":
			j.res.Restricted++
		case "erased":
			j.res.Erased++
		case "no_consent":
			j.res.NoConsent++
		}
	}
}

// message stores one message, or says why it was dropped: "duplicate",
// "erased", "suppressed", "restricted" or "no_consent".
func (w *writer) message(ctx context.Context, g *group, j *job, m *prepared) (dropped string, err error) {
	t := j.tenant
	ref := seenRef{t, m.mid}
	if dup, err := w.duplicate(ctx, g, ref); err != nil {
		return "", err
	} else if dup {
		if w.landed[ref] {
			// Stored by a part of this group's refused try.
			delete(w.landed, ref)
			g.seen[ref] = struct{}{}
			return "", nil
		}
		return "duplicate", nil
	}
	if w.erased(t, m) {
		return "erased", nil
	}
	requireConsent := j.policy != nil && j.policy.RequireAnalytics
	if requireConsent && !consent.GrantsAny(m.consents) {
		// Nothing new is collected about a person who agreed to nothing:
		// no subject is created, no identifier linked.
		if reason, err := w.consentGate(ctx, g, j, m); reason != "" || err != nil {
			return reason, err
		}
	}
	s, key, err := w.resolve(ctx, g, t, m)
	if err != nil {
		return "", err
	}
	// Resolution has linked the message's new identifiers to the subject,
	// so a suppression also holds for identifiers that appear later; and a
	// message carrying any identifier of a suppressed subject is dropped,
	// even when it resolved to another subject.
	if reason, err := w.gateMessage(ctx, t, s, m); reason != "" || err != nil {
		return reason, err
	}
	if err := w.messageConsents(ctx, g, j, s, key, m); err != nil {
		return "", err
	}
	if requireConsent {
		st, err := w.consentState(ctx, t, s, key)
		if err != nil {
			return "", err
		}
		if granted, _ := st.Lookup(consent.Analytics, ""); !granted {
			return "no_consent", nil
		}
	}
	// The record of processing learns what the message shows; a new
	// category is written with it.
	if err := w.note(ctx, g, t, m.obs, m.msg.ReceivedAt); err != nil {
		return "", err
	}
	if err := w.updateProfile(ctx, g, t, s, key, m); err != nil {
		return "", err
	}
	at := m.msg.Timestamp
	sealed, err := key.Seal(nil, eventRecordKey(at, m.mid), m.body)
	if err != nil {
		return "", fmt.Errorf("seal event: %w", err)
	}
	wr := g.write(t)
	wr.Events = append(wr.Events, custos.StoredEvent{Subject: s, Time: at, ID: m.mid, Value: sealed})
	wr.Seen = append(wr.Seen, custos.Seen{ID: m.mid, Subject: s, Time: m.msg.ReceivedAt})
	g.seen[ref] = struct{}{}
	w.recent.add(m.mid)
	w.noteNewSeen(t, m.mid)
	return "", nil
}

// duplicate reports whether a message was stored before: in this group,
// or — when the in-memory filter says it may have been — in the store.
func (w *writer) duplicate(ctx context.Context, g *group, ref seenRef) (bool, error) {
	if _, dup := g.seen[ref]; dup {
		return true, nil
	}
	if !w.recent.mayContain(ref.id) {
		return false, nil
	}
	sn, err := w.p.store.Seen(ctx, ref.t, ref.id)
	if errors.Is(err, custos.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	// The record counts only if its subject's key became durable too: the
	// data and key stores sync apart, and a crash between the two syncs
	// leaves an unacknowledged event that can never be read. Its retry
	// must be stored, not dropped.
	if _, _, err := w.p.ring.SubjectKey(ctx, ref.t, sn.Subject, false); errors.Is(err, custos.ErrNotFound) {
		return false, nil
	} else if err != nil && !errors.Is(err, custos.ErrShredded) {
		return false, err
	}
	return true, nil
}

// eventRecordKey is the associated data of a sealed event: its position,
// so a ciphertext moved to another event fails to open.
func eventRecordKey(at time.Time, id custos.MessageHash) []byte {
	k := make([]byte, 0, 1+8+len(id))
	k = append(k, 'e')
	k = binary.BigEndian.AppendUint64(k, uint64(at.UnixNano()))
	return append(k, id[:]...)
}

func (w *writer) updateProfile(ctx context.Context, g *group, t custos.TenantID, s custos.SubjectID, key *keyring.SubjectKey, m *prepared) error {
	msg := m.msg
	switch {
	case msg.Type == custos.Identify && len(msg.Traits) > 0:
	case msg.Type == custos.Group && msg.GroupID != "":
	default:
		return nil
	}
	ps, err := w.profile(ctx, g, t, s, key)
	if err != nil {
		return err
	}
	if msg.Type == custos.Identify {
		changed, err := ps.rec.setTraits(msg.Traits, msg.Timestamp)
		if err != nil {
			// The decoder passed the traits as JSON, so this is not the
			// caller's fault worth refusing a whole batch for; keep the event.
			return nil
		}
		ps.dirty = ps.dirty || changed
	} else {
		ps.rec.setGroup(msg.GroupID, msg.Traits, msg.Timestamp)
		ps.dirty = true
	}
	return nil
}

// profile returns the group's view of a subject's profile, reading it from
// the store the first time.
func (w *writer) profile(ctx context.Context, g *group, t custos.TenantID, s custos.SubjectID, key *keyring.SubjectKey) (*profileState, error) {
	ref := subjectRef{t, s}
	if ps := g.profiles[ref]; ps != nil {
		return ps, nil
	}
	ps := &profileState{rec: &profileRecord{}, key: key}
	sealed, err := w.readProfile(ctx, ref)
	switch {
	case errors.Is(err, custos.ErrNotFound):
	case err != nil:
		return nil, err
	default:
		ps.base = sha256.Sum256(sealed)
		plain, err := key.Open(nil, profileRecordKey, sealed)
		if err != nil {
			return nil, fmt.Errorf("open profile: %w", err)
		}
		if err := json.Unmarshal(plain, ps.rec); err != nil {
			return nil, fmt.Errorf("decode profile: %w", err)
		}
	}
	g.profiles[ref] = ps
	return ps, nil
}

// readProfile reads a subject's sealed profile: as read ahead, else from
// the store.
func (w *writer) readProfile(ctx context.Context, ref subjectRef) ([]byte, error) {
	if p, ok := w.aheadProfile(ref); ok {
		if !p.stored {
			return nil, custos.ErrNotFound
		}
		return p.sealed, nil
	}
	return w.p.store.Profile(ctx, ref.t, ref.s)
}

// failGroup answers every job of the group so far, and every later one,
// 503 when one of its Applies failed: the writes of jobs handled before a
// flush inside the group (a merge, an erasure step, a sweep) were in the
// refused Apply, and the caches may name what was never stored, so the
// identifier cache starts over and nothing of the group is acknowledged.
func (w *writer) failGroup(g *group, err error) {
	g.failed = err
	for _, j := range g.jobs {
		if j.err == nil {
			j.err = &custos.Error{Code: custos.Unavailable, Message: "the store refused the write; retry", Err: err}
		}
	}
	clear(w.cache)
	w.forgetAhead()
	clear(g.seen)
	w.consents = map[subjectRef]consent.State{}
	clear(w.observed)
}
