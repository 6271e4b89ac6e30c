package subjects

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/custos-dev/custos"
)

// On a shared store (PostgreSQL) a group's writes are applied by one
// database backend in one transaction, which uses one core while the
// writer waits: at 10 M events stored that was two thirds of the writer's
// time in 100-event batches. A large group whose writes are only new
// messages of people — events, deduplication records, profiles, links,
// consent records of subjects the group created — holds nothing that
// ties one subject to another, so it is applied as splitParts writes,
// each the subjects of one part (by subject id) with the guard of what
// they rely on, in concurrent transactions, as two nodes would apply
// theirs. Each part is atomic. The group is acknowledged when every part
// is durable; when one is refused the group is composed again as a whole,
// and the messages of a part that was stored are then found stored
// (writer.landed), not duplicates; when one fails otherwise the group's
// clients are answered 503, and their retry finds those messages stored
// as duplicates, as it would after a request half-stored by a crash. A
// group with anything else (a merge, a gate change, a deletion,
// tenant-wide records) is applied in one transaction as before.
const (
	splitParts = 2
	// splitMin is the fewest events a Write needs for its group to be
	// split: a small group gains less than the second commit costs.
	splitMin = 128
)

// apply applies the group's writes: split into concurrent parts when the
// store is shared and the writes allow it, else in one Apply.
func (w *writer) apply(ctx context.Context, ws []*custos.Write) (func() error, error) {
	parts := w.split(ws)
	if parts == nil {
		return w.p.store.Apply(ctx, ws)
	}
	waits := make([]func() error, len(parts))
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i, part := range parts {
		wg.Go(func() { waits[i], errs[i] = w.p.store.Apply(ctx, part) })
	}
	wg.Wait()
	if err := joinRefusals(errs); err != nil {
		// The messages of parts that were stored are this group's own:
		// composed again, they are found stored and counted as stored,
		// not as duplicates.
		for i, part := range parts {
			if errs[i] != nil {
				continue
			}
			for _, wr := range part {
				for _, id := range wr.Guard.NewSeen {
					w.landed[seenRef{wr.Tenant, id}] = true
				}
			}
		}
		return nil, err
	}
	return func() error {
		var first error
		for _, wait := range waits {
			if err := wait(); err != nil && first == nil {
				first = err
			}
		}
		return first
	}, nil
}

// split returns the writes of each part, or nil when the group is applied
// in one Apply.
func (w *writer) split(ws []*custos.Write) [][]*custos.Write {
	if w.shared == nil {
		return nil
	}
	events := 0
	for _, wr := range ws {
		if !splittable(wr) {
			return nil
		}
		events += len(wr.Events)
	}
	if events < splitMin {
		return nil
	}
	parts := make([][]*custos.Write, splitParts)
	for _, wr := range ws {
		halves, ok := splitWrite(wr)
		if !ok {
			return nil
		}
		for i, h := range halves {
			if !h.Empty() {
				parts[i] = append(parts[i], h)
			}
		}
	}
	if slices.ContainsFunc(parts, func(p []*custos.Write) bool { return len(p) == 0 }) {
		return nil
	}
	return parts
}

// splittable reports whether a Write holds only records of single
// subjects, and a guard that needs no lock across them.
func splittable(wr *custos.Write) bool {
	g := wr.Guard
	return g != nil && !g.Advance && g.Observed == nil && len(g.Events) == 0 &&
		len(wr.Unlinks) == 0 && len(wr.DeleteSubjects) == 0 && len(wr.DeleteEvents) == 0 &&
		wr.ExpireBefore.IsZero() && len(wr.Unsee) == 0 && len(wr.Flags) == 0 &&
		len(wr.Tombstones) == 0 && len(wr.Sends) == 0 && len(wr.Merges) == 0 &&
		wr.Observed == nil && wr.Retention == nil
}

// part is the part of a subject's records.
func part(s custos.SubjectID) int { return int(s[0]) % splitParts }

// splitWrite divides a splittable Write by subject; ok is false when its
// guard names a message or identifier the Write does not store.
func splitWrite(wr *custos.Write) (_ [splitParts]*custos.Write, ok bool) {
	var out [splitParts]*custos.Write
	for i := range out {
		out[i] = &custos.Write{Tenant: wr.Tenant, Guard: &custos.Guard{Generation: wr.Guard.Generation}}
	}
	seenPart := make(map[custos.MessageHash]int, len(wr.Seen))
	for _, sn := range wr.Seen {
		p := out[part(sn.Subject)]
		p.Seen = append(p.Seen, sn)
		seenPart[sn.ID] = part(sn.Subject)
	}
	linkPart := make(map[custos.IdentifierHash]int, len(wr.Links))
	for _, l := range wr.Links {
		p := out[part(l.Subject)]
		p.Links = append(p.Links, l)
		linkPart[l.Hash] = part(l.Subject)
	}
	for _, e := range wr.Events {
		p := out[part(e.Subject)]
		p.Events = append(p.Events, e)
	}
	for _, pr := range wr.Profiles {
		p := out[part(pr.Subject)]
		p.Profiles = append(p.Profiles, pr)
	}
	for _, c := range wr.Consents {
		p := out[part(c.Subject)]
		p.Consents = append(p.Consents, c)
	}
	for _, id := range wr.Guard.NewSeen {
		i, found := seenPart[id]
		if !found {
			return out, false
		}
		out[i].Guard.NewSeen = append(out[i].Guard.NewSeen, id)
	}
	for _, h := range wr.Guard.NewLinks {
		i, found := linkPart[h]
		if !found {
			return out, false
		}
		out[i].Guard.NewLinks = append(out[i].Guard.NewLinks, h)
	}
	for s, sum := range wr.Guard.Profiles {
		g := out[part(s)].Guard
		if g.Profiles == nil {
			g.Profiles = map[custos.SubjectID][32]byte{}
		}
		g.Profiles[s] = sum
	}
	return out, true
}

// joinRefusals returns the error of parts' Applies: nil when all
// succeeded; when every failure is a refusal, one StaleError naming
// everything stale of the first refused tenant (the writer refreshes that
// tenant, and a second would be refused again at the next try), so the
// group is composed again on refreshed caches; else the first other
// error.
func joinRefusals(errs []error) error {
	var joined *custos.StaleError
	for _, err := range errs {
		if err == nil {
			continue
		}
		var st *custos.StaleError
		if !errors.As(err, &st) {
			return err
		}
		if joined == nil {
			c := *st
			joined = &c
			continue
		}
		if st.Tenant != joined.Tenant {
			continue
		}
		joined.Seen = append(slices.Clip(joined.Seen), st.Seen...)
		joined.Links = joined.Links || st.Links
		joined.Profiles = joined.Profiles || st.Profiles
		joined.Observed = joined.Observed || st.Observed
		if st.GenerationStale {
			joined.GenerationStale = true
			joined.Generation = max(joined.Generation, st.Generation)
		}
	}
	if joined == nil {
		return nil
	}
	return joined
}
