package consent

import (
	"cmp"
	"slices"

	"github.com/custos-dev/custos"
)

// State is a subject's current consent, derived from its ledger: for each
// purpose and channel ("" for every channel), the latest record. The zero
// State has no record: nothing is consented to. See the package
// documentation for the precedence between a channel and "every channel".
type State struct {
	// keys is a compact copy of what decides, parallel to latest, so that
	// Lookup scans a few cache lines whatever the records carry.
	keys   []entry
	latest []custos.ConsentRecord
}

// entry is the part of a record Lookup needs.
type entry struct {
	purpose, channel string
	at               int64 // UnixNano
	seq              uint64
	granted          bool
}

func entryOf(r *custos.ConsentRecord) entry {
	return entry{purpose: r.Purpose, channel: r.Channel, at: r.Time.UnixNano(), seq: r.Seq, granted: r.Granted}
}

// after reports whether a comes after b in the ledger.
func (a *entry) after(b *entry) bool {
	if a.at != b.at {
		return a.at > b.at
	}
	return a.seq > b.seq
}

// NewState derives the state from a ledger's records, in any order.
func NewState(history []custos.ConsentRecord) State {
	var s State
	for _, r := range history {
		s.Add(r)
	}
	return s
}

// Add takes a record into the state: it replaces the record for its
// purpose and channel if it is later. The state's records are not shared
// with earlier copies of s.
func (s *State) Add(r custos.ConsentRecord) {
	k := entryOf(&r)
	for i := range s.keys {
		e := &s.keys[i]
		if e.purpose == k.purpose && e.channel == k.channel {
			if k.after(e) {
				s.keys, s.latest = slices.Clone(s.keys), slices.Clone(s.latest)
				s.keys[i], s.latest[i] = k, r
			}
			return
		}
	}
	s.keys = append(slices.Clip(s.keys), k)
	s.latest = append(slices.Clip(s.latest), r)
}

// find returns the index of the latest record deciding (purpose, channel):
// the later of the exact channel's and every channel's; -1 if none.
func (s State) find(purpose, channel string) int {
	exact, all := -1, -1
	for i := range s.keys {
		e := &s.keys[i]
		if e.purpose != purpose {
			continue
		}
		switch e.channel {
		case channel:
			exact = i
		case "":
			all = i
		}
	}
	switch {
	case exact < 0:
		return all
	case all < 0:
		return exact
	case s.keys[all].after(&s.keys[exact]):
		return all
	}
	return exact
}

// Lookup reports whether the subject currently grants purpose on channel,
// and whether any record speaks to it at all (recorded false: no
// consent, never asked or never answered).
func (s State) Lookup(purpose, channel string) (granted, recorded bool) {
	i := s.find(purpose, channel)
	if i < 0 {
		return false, false
	}
	return s.keys[i].granted, true
}

// Decision returns the record that decides (purpose, channel).
func (s State) Decision(purpose, channel string) (custos.ConsentRecord, bool) {
	i := s.find(purpose, channel)
	if i < 0 {
		return custos.ConsentRecord{}, false
	}
	return s.latest[i], true
}

// Latest returns the latest record for exactly (purpose, channel), with
// no precedence applied: what was last said about that pair itself.
func (s State) Latest(purpose, channel string) (custos.ConsentRecord, bool) {
	for _, e := range s.latest {
		if e.Purpose == purpose && e.Channel == channel {
			return e, true
		}
	}
	return custos.ConsentRecord{}, false
}

// Records returns the latest record of each purpose and channel, sorted
// by purpose then channel.
func (s State) Records() []custos.ConsentRecord {
	out := slices.Clone(s.latest)
	slices.SortFunc(out, func(a, b custos.ConsentRecord) int {
		return cmp.Or(cmp.Compare(a.Purpose, b.Purpose), cmp.Compare(a.Channel, b.Channel))
	})
	return out
}

// Empty reports whether no record was ever taken in.
func (s State) Empty() bool { return len(s.latest) == 0 }
