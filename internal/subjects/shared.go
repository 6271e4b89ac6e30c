package subjects

import (
	"context"
	"errors"
	"fmt"

	"github.com/custos-dev/custos"
)

// Several nodes on one store (custos.GateStore): the writer's caches —
// the gate's flags and tombstones, the identifier index, consent states,
// the duplicate filter — may be older than what another node wrote. Every
// Write then carries a custos.Guard of what the caches believed, the
// store refuses it when that no longer holds, and the writer refreshes
// what was stale and composes the refused messages again on fresh state
// (writer.commit); only when that fails too are they answered 503.
// Control jobs (suppression, erasure steps, the campaign gate's reads)
// first bring the tenant's gate up to date, so they act on the database's
// current state.
type shared struct {
	gate custos.GateStore
	// gen is the gate generation each tenant's caches reflect.
	gen map[custos.TenantID]uint64
	// pending are the guards of the group being built, by tenant.
	pending map[custos.TenantID]*custos.Guard
}

// newShared returns the shared-store state, or nil when the store is
// written by this process alone.
func newShared(store custos.DataStore) *shared {
	gs, ok := store.(custos.GateStore)
	if !ok {
		return nil
	}
	return &shared{gate: gs, gen: map[custos.TenantID]uint64{}, pending: map[custos.TenantID]*custos.Guard{}}
}

// loadGenerations reads every tenant's generation; called before the
// caches are loaded, so that they are at least as new as it says.
func (w *writer) loadGenerations(ctx context.Context) error {
	if w.shared == nil {
		return nil
	}
	gens, err := w.shared.gate.Generations(ctx)
	if err != nil {
		return fmt.Errorf("load gate generations: %w", err)
	}
	w.shared.gen = gens
	return nil
}

// pendingGuard returns the guard of the group's write of a tenant. Its
// generation is the one the caches had when the group first relied on
// them for the tenant: a refresh later in the group (a control job's)
// does not vouch for what was judged before it.
func (w *writer) pendingGuard(t custos.TenantID) *custos.Guard {
	g := w.shared.pending[t]
	if g == nil {
		g = &custos.Guard{Generation: w.shared.gen[t]}
		w.shared.pending[t] = g
	}
	return g
}

// noteNewSeen records that a message is stored believed new.
func (w *writer) noteNewSeen(t custos.TenantID, id custos.MessageHash) {
	if w.shared != nil {
		g := w.pendingGuard(t)
		g.NewSeen = append(g.NewSeen, id)
	}
}

// noteNewLink records that an identifier is linked believed unlinked.
func (w *writer) noteNewLink(t custos.TenantID, h custos.IdentifierHash) {
	if w.shared != nil {
		g := w.pendingGuard(t)
		g.NewLinks = append(g.NewLinks, h)
	}
}

// noteProfile records the stored profile a Write replaces or deletes, as
// it was read (the first note of a subject in a Write counts).
func (w *writer) noteProfile(t custos.TenantID, s custos.SubjectID, base [32]byte) {
	if w.shared == nil {
		return
	}
	g := w.pendingGuard(t)
	if g.Profiles == nil {
		g.Profiles = map[custos.SubjectID][32]byte{}
	}
	if _, ok := g.Profiles[s]; !ok {
		g.Profiles[s] = base
	}
}

// noteEvents records how many events of a subject a merge copied before
// deleting them.
func (w *writer) noteEvents(t custos.TenantID, s custos.SubjectID, n int) {
	if w.shared == nil {
		return
	}
	g := w.pendingGuard(t)
	if g.Events == nil {
		g.Events = map[custos.SubjectID]int{}
	}
	g.Events[s] = n
}

// changesGate reports whether a Write changes what the gate admits.
// Consent records of subjects the Write creates (fresh ids: no other
// node can hold them in its caches, which read a subject's ledger from
// the store when they first need it) change nothing another node
// believes, so that the first messages of new people, which carry their
// consent, do not make every other node refresh.
func changesGate(wr *custos.Write, created map[subjectRef]bool) bool {
	if len(wr.Flags) > 0 || len(wr.Tombstones) > 0 || len(wr.Merges) > 0 ||
		len(wr.Unlinks) > 0 || len(wr.DeleteSubjects) > 0 {
		return true
	}
	for _, c := range wr.Consents {
		if !created[subjectRef{wr.Tenant, c.Subject}] {
			return true
		}
	}
	return false
}

// guard attaches to each Write the guard of what the caches believed.
func (w *writer) guard(g *group, ws []*custos.Write) {
	if w.shared == nil {
		return
	}
	for _, wr := range ws {
		gd := w.pendingGuard(wr.Tenant)
		gd.Advance = changesGate(wr, g.created)
		wr.Guard = gd
	}
	w.shared.pending = map[custos.TenantID]*custos.Guard{}
}

// applied moves the generation of the tenants whose gate the writes changed.
func (w *writer) applied(ws []*custos.Write) {
	if w.shared == nil {
		return
	}
	for _, wr := range ws {
		if wr.Guard != nil && wr.Guard.Advance {
			w.shared.gen[wr.Tenant] = wr.Guard.Generation + 1
		}
	}
}

// refused refreshes what a refused Write shows was stale. It is called
// with the error of a flush; other errors are left alone.
func (w *writer) refused(ctx context.Context, err error) {
	w.shared.pending = map[custos.TenantID]*custos.Guard{}
	var st *custos.StaleError
	if !errors.As(err, &st) {
		return
	}
	for _, id := range st.Seen {
		w.recent.add(id) // "maybe seen": the retry asks the store
	}
	if st.Links || st.Profiles {
		delete(w.cache, st.Tenant)
	}
	if st.GenerationStale {
		if err := w.refreshGate(ctx, st.Tenant); err != nil {
			// The generation stays old: the next write is refused again.
			return
		}
	}
}

// ensureFresh brings a tenant's gate up to date with the store before a
// control job acts on it.
func (w *writer) ensureFresh(ctx context.Context, t custos.TenantID) error {
	if w.shared == nil {
		return nil
	}
	gen, err := w.shared.gate.Generation(ctx, t)
	if err != nil {
		return fmt.Errorf("read gate generation: %w", err)
	}
	if gen == w.shared.gen[t] {
		return nil
	}
	return w.refreshGate(ctx, t)
}

// refreshGate reloads a tenant's gate from the store: the generation
// first, then the flags, tombstones and caches it covers, so the caches
// are at least as new as the generation recorded.
func (w *writer) refreshGate(ctx context.Context, t custos.TenantID) error {
	gen, err := w.shared.gate.Generation(ctx, t)
	if err != nil {
		return fmt.Errorf("read gate generation: %w", err)
	}
	flags := map[subjectRef]custos.SubjectFlags{}
	if err := w.p.store.EachFlags(ctx, func(ft custos.TenantID, r custos.FlagsRecord) error {
		if ft == t {
			flags[subjectRef{t, r.Subject}] = r.Flags
		}
		return nil
	}); err != nil {
		return fmt.Errorf("reload subject flags: %w", err)
	}
	tombs := map[tombRef]custos.Tombstone{}
	if err := w.p.store.EachTombstone(ctx, func(tt custos.TenantID, r custos.TombstoneRecord) error {
		if tt == t {
			tombs[tombRef{t, r.Hash}] = r.Tombstone
		}
		return nil
	}); err != nil {
		return fmt.Errorf("reload tombstones: %w", err)
	}
	for ref := range w.flags {
		if ref.t == t {
			delete(w.flags, ref)
		}
	}
	for ref := range w.tombs {
		if ref.t == t {
			delete(w.tombs, ref)
		}
	}
	for ref, f := range flags {
		w.flags[ref] = f
	}
	for ref, ts := range tombs {
		w.tombs[ref] = ts
	}
	delete(w.cache, t)
	delete(w.observed, t)
	for ref := range w.consents {
		if ref.t == t {
			delete(w.consents, ref)
		}
	}
	w.shared.gen[t] = gen
	return nil
}

// Refresh brings a tenant's gate caches up to date with a store other
// nodes share, when one of them changed the tenant's gate
// (custos.ChangeGate): the next message is then judged on fresh caches
// instead of being refused once for stale ones. On a store this process
// alone writes it does nothing.
func (p *Pipeline) Refresh(ctx context.Context, t custos.TenantID) error {
	if _, ok := p.store.(custos.GateStore); !ok {
		return nil
	}
	return p.control(ctx, t, func(*writer, *group) error { return nil })
}
