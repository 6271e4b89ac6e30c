package subjects

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/keyring"
)

// lookup finds the subject an identifier hash points at, through the cache.
func (w *writer) lookup(ctx context.Context, t custos.TenantID, h custos.IdentifierHash) (custos.SubjectID, bool, error) {
	c := w.cache[t]
	if s, ok := c[h]; ok {
		return s, true, nil
	}
	if w.ahead.unlinked[linkRef{t, h}] {
		return custos.SubjectID{}, false, nil
	}
	s, err := w.p.store.Subject(ctx, t, h)
	if errors.Is(err, custos.ErrNotFound) {
		return s, false, nil
	}
	if err != nil {
		return s, false, err
	}
	w.remember(t, h, s)
	return s, true, nil
}

func (w *writer) remember(t custos.TenantID, h custos.IdentifierHash, s custos.SubjectID) {
	c := w.cache[t]
	if c == nil {
		c = make(map[custos.IdentifierHash]custos.SubjectID)
		w.cache[t] = c
	}
	c[h] = s
	delete(w.ahead.unlinked, linkRef{t, h})
}

// resolve finds or creates the subject of a message, links identifiers it
// has not seen before and merges subjects the message shows to be one.
func (w *writer) resolve(ctx context.Context, g *group, t custos.TenantID, m *prepared) (custos.SubjectID, *keyring.SubjectKey, error) {
	ids := m.ids
	alias := m.msg.Type == custos.Alias
	if len(m.prev) > 0 {
		// An alias names its previous id without saying its kind: use the
		// kind already known, else treat it as an anonymous id.
		prev := m.prev[1]
		for _, p := range m.prev {
			if _, ok, err := w.lookup(ctx, t, p.h); err != nil {
				return custos.SubjectID{}, nil, err
			} else if ok {
				prev = p
				break
			}
		}
		ids = append(slices.Clip(ids), prev)
	}

	var primary custos.SubjectID
	var found bool
	var others []custos.SubjectID
	var unlinked []hashedID
	subjects := make([]custos.SubjectID, len(ids))
	for i, id := range ids {
		s, ok, err := w.lookup(ctx, t, id.h)
		if err != nil {
			return primary, nil, err
		}
		subjects[i] = s
		switch {
		case !ok:
			unlinked = append(unlinked, id)
			w.noteNewLink(t, id.h)
		case !found:
			primary, found = s, true
		case s != primary && !slices.Contains(others, s):
			others = append(others, s)
		}
	}

	if found {
		// A user id seen for the first time, arriving with an identifier
		// (a shared device, an e-mail) that already belongs to another
		// user, is a new person: it must not join that user.
		if _, ok := unlinkedUserID(unlinked); ok && !alias {
			ps, err := w.profileOf(ctx, g, t, primary)
			if err != nil {
				return primary, nil, err
			}
			if ps != nil && len(ps.rec.IDs[custos.UserID.String()]) > 0 {
				// Identifiers that belong to someone already stay there.
				found, others = false, nil
			}
		}
	}

	var key *keyring.SubjectKey
	if found {
		k, _, err := w.p.ring.SubjectKey(ctx, t, primary, false)
		if errors.Is(err, custos.ErrShredded) || errors.Is(err, custos.ErrNotFound) {
			// The subject was erased (or its key never became durable):
			// what arrives now starts a new subject, which takes over the
			// erased subject's identifiers and leaves others' alone.
			found, others = false, nil
			for i, id := range ids {
				if subjects[i] == primary {
					unlinked = append(unlinked, id)
				}
			}
		} else if err != nil {
			return primary, nil, err
		} else {
			key = k
		}
	}
	if !found {
		primary = custos.NewSubjectID()
		k, wait, err := w.p.ring.SubjectKey(ctx, t, primary, true)
		if err != nil {
			return primary, nil, fmt.Errorf("create subject key: %w", err)
		}
		g.waits = append(g.waits, wait)
		key = k
		ps := &profileState{rec: &profileRecord{Created: m.msg.ReceivedAt}, key: key, dirty: true}
		g.profiles[subjectRef{t, primary}] = ps
		g.created[subjectRef{t, primary}] = true
	}

	for _, other := range others {
		if err := w.maybeMerge(ctx, g, t, primary, key, other, alias); err != nil {
			return primary, nil, err
		}
	}

	if len(unlinked) > 0 {
		ps, err := w.profile(ctx, g, t, primary, key)
		if err != nil {
			return primary, nil, err
		}
		wr := g.write(t)
		for _, id := range unlinked {
			wr.Links = append(wr.Links, custos.Link{Hash: id.h, Subject: primary})
			w.remember(t, id.h, primary)
			// A derived identifier is indexed, not listed: the profile
			// holds the identifier it comes from.
			if id.id.Type != custos.EmailSHA256 && ps.rec.addID(id.id) {
				ps.dirty = true
			}
		}
	}
	return primary, key, nil
}

// maybeMerge folds subject other into primary unless both name different
// users: a shared device or e-mail must not fuse two accounts. An alias is
// an explicit instruction and merges regardless.
func (w *writer) maybeMerge(ctx context.Context, g *group, t custos.TenantID, primary custos.SubjectID, pkey *keyring.SubjectKey, other custos.SubjectID, alias bool) error {
	okey, _, err := w.p.ring.SubjectKey(ctx, t, other, false)
	if errors.Is(err, custos.ErrShredded) || errors.Is(err, custos.ErrNotFound) {
		return nil // nothing readable left to merge
	}
	if err != nil {
		return err
	}
	pp, err := w.profile(ctx, g, t, primary, pkey)
	if err != nil {
		return err
	}
	op, err := w.profile(ctx, g, t, other, okey)
	if err != nil {
		return err
	}
	if !alias {
		pu, ou := pp.rec.IDs[custos.UserID.String()], op.rec.IDs[custos.UserID.String()]
		if len(pu) > 0 && len(ou) > 0 && !slices.ContainsFunc(pu, func(u string) bool { return slices.Contains(ou, u) }) {
			return nil
		}
	}
	// Everything of this group so far goes to the store first, so that the
	// other subject's events can be read back from it.
	if err := w.flush(ctx, g); err != nil {
		return err
	}
	wr := g.write(t)
	moved := 0
	err = w.p.store.Events(ctx, t, other, nil, func(e custos.StoredEvent) (bool, error) {
		moved++
		rk := eventRecordKey(e.Time, e.ID)
		plain, err := okey.Open(nil, rk, e.Value)
		if err != nil {
			return false, fmt.Errorf("open event to merge: %w", err)
		}
		sealed, err := pkey.Seal(nil, rk, plain)
		if err != nil {
			return false, fmt.Errorf("seal merged event: %w", err)
		}
		wr.Events = append(wr.Events, custos.StoredEvent{Subject: primary, Time: e.Time, ID: e.ID, Value: sealed})
		wr.Seen = append(wr.Seen, custos.Seen{ID: e.ID, Subject: primary, Time: w.p.opts.Now()})
		return true, nil
	})
	if err != nil {
		return err
	}
	if err := w.mergeConsents(ctx, wr, t, primary, pkey, okey); err != nil {
		return err
	}
	if err := w.mergeSends(ctx, wr, t, primary, pkey, okey); err != nil {
		return err
	}
	for _, id := range custos.WithDerived(op.rec.identifiers()) {
		h, err := w.p.ring.HashIdentifier(t, id)
		if err != nil {
			return err
		}
		wr.Links = append(wr.Links, custos.Link{Hash: h, Subject: primary})
		w.remember(t, h, primary)
	}
	pp.rec.merge(op.rec)
	pp.dirty = true
	// Standing restrictions of either side hold for the merged subject.
	if of, ok := w.flags[subjectRef{t, other}]; ok {
		w.setFlags(g, t, primary, w.flags[subjectRef{t, primary}].Union(of))
		w.setFlags(g, t, other, custos.SubjectFlags{})
	}
	delete(g.profiles, subjectRef{t, other})
	// Its events were read above: the merge is refused if another writer
	// stored one since (its profile changes with every event).
	w.noteProfile(t, other, op.base)
	w.noteEvents(t, other, moved)
	wr.DeleteSubjects = append(wr.DeleteSubjects, other)
	wr.Merges = append(wr.Merges, custos.MergeRecord{From: other, Into: primary})
	// The other key is destroyed only once its data lives durably under
	// the primary's key; a crash before leaves an unused key, never a loss.
	g.afterDurable = append(g.afterDurable, func() error { return w.p.ring.Shred(context.Background(), t, other) })
	return nil
}

// unlinkedUserID returns the user id among identifiers not yet linked.
func unlinkedUserID(ids []hashedID) (hashedID, bool) {
	for _, id := range ids {
		if id.id.Type == custos.UserID {
			return id, true
		}
	}
	return hashedID{}, false
}

// profileOf returns a subject's profile state, or nil if its key is gone.
func (w *writer) profileOf(ctx context.Context, g *group, t custos.TenantID, s custos.SubjectID) (*profileState, error) {
	k, _, err := w.p.ring.SubjectKey(ctx, t, s, false)
	if errors.Is(err, custos.ErrShredded) || errors.Is(err, custos.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return w.profile(ctx, g, t, s, k)
}
