package subjects

import (
	"context"
	"slices"

	"github.com/custos-dev/custos"
)

// ahead is what the writer read ahead for the jobs it is about to handle,
// in one read per tenant instead of one per message: on a database each
// read is a round trip, and the writer waits for it with every other
// message behind. Links found go to the identifier cache; what is kept
// here holds only until the store may have changed under it, so it is
// forgotten at every flush and control job and after each batch of jobs.
type ahead struct {
	// unlinked are identifier hashes read as linked to no subject.
	unlinked map[linkRef]bool
	// profiles are what was read of the profiles of subjects whose
	// messages change or read theirs.
	profiles map[subjectRef]storedProfile
}

// storedProfile is a sealed profile, or none (stored is false).
type storedProfile struct {
	sealed []byte
	stored bool
}

type linkRef struct {
	t custos.TenantID
	h custos.IdentifierHash
}

// forgetAhead drops what was read ahead.
func (w *writer) forgetAhead() {
	clear(w.ahead.unlinked)
	clear(w.ahead.profiles)
}

// handleAll handles jobs in order, having read ahead what their messages
// will look up when the store is shared: a database across the network.
// An embedded store's reads cost no round trip, and reading ahead would
// only add the lookups that choose what to read.
func (w *writer) handleAll(g *group, jobs []*job) {
	if w.shared != nil {
		w.readAhead(context.Background(), g, jobs)
	}
	for _, j := range jobs {
		w.handle(g, j)
	}
	w.forgetAhead()
}

// readAhead reads, for the message jobs up to the first control job (which
// may change what was read), the links of every identifier not cached,
// then the profiles of the subjects whose messages will read theirs: an
// identify with traits, a group call, a message with an identifier new to
// its subject. A read that fails leaves the rest to be read one by one,
// where the error is reported. Nothing is read ahead when it is called:
// handleAll forgets it after each batch.
func (w *writer) readAhead(ctx context.Context, g *group, jobs []*job) {
	if i := slices.IndexFunc(jobs, func(j *job) bool { return j.control != nil }); i >= 0 {
		jobs = jobs[:i]
	}
	hashes := map[custos.TenantID][]custos.IdentifierHash{}
	wanted := map[linkRef]bool{}
	for _, j := range jobs {
		for i := range j.msgs {
			m := &j.msgs[i]
			for _, ids := range [][]hashedID{m.ids, m.prev} {
				for _, id := range ids {
					ref := linkRef{j.tenant, id.h}
					if _, ok := w.cache[j.tenant][id.h]; ok || wanted[ref] {
						continue
					}
					wanted[ref] = true
					hashes[j.tenant] = append(hashes[j.tenant], id.h)
				}
			}
		}
	}
	for t, hs := range hashes {
		found, err := w.p.store.Subjects(ctx, t, hs)
		if err != nil {
			return
		}
		for _, h := range hs {
			if s, ok := found[h]; ok {
				w.remember(t, h, s)
			} else {
				w.ahead.unlinked[linkRef{t, h}] = true
			}
		}
	}

	subjects := map[custos.TenantID][]custos.SubjectID{}
	asked := map[subjectRef]bool{}
	for _, j := range jobs {
		for i := range j.msgs {
			m := &j.msgs[i]
			reads := m.msg.Type == custos.Identify && len(m.msg.Traits) > 0 || m.msg.Type == custos.Group && m.msg.GroupID != ""
			var primary custos.SubjectID
			found := false
			for _, id := range m.ids {
				s, ok := w.cache[j.tenant][id.h]
				if !ok {
					reads = true // linking it adds it to the profile
					continue
				}
				if !found {
					primary, found = s, true
				}
			}
			ref := subjectRef{j.tenant, primary}
			if !reads || !found || g.profiles[ref] != nil || asked[ref] {
				continue
			}
			asked[ref] = true
			subjects[j.tenant] = append(subjects[j.tenant], primary)
		}
	}
	for t, ss := range subjects {
		found, err := w.p.store.Profiles(ctx, t, ss)
		if err != nil {
			return
		}
		for _, s := range ss {
			v, stored := found[s]
			w.ahead.profiles[subjectRef{t, s}] = storedProfile{v, stored}
		}
	}
}

// aheadProfile returns what was read ahead of a subject's profile, once;
// ok is false when nothing was.
func (w *writer) aheadProfile(ref subjectRef) (p storedProfile, ok bool) {
	p, ok = w.ahead.profiles[ref]
	delete(w.ahead.profiles, ref)
	return p, ok
}
