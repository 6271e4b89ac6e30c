package storetest

import (
	"fmt"
	"testing"

	"github.com/custos-dev/custos"
)

func testDeleteSubjects(t *testing.T, open func(*testing.T) custos.Store) {
	for _, pair := range neighbourPairs() {
		t.Run(pair.name, func(t *testing.T) {
			ids := [2]custos.SubjectID{custos.SubjectID(pair.a), custos.SubjectID(pair.b)}
			for _, del := range []int{0, 1} {
				keep := 1 - del
				t.Run(fmt.Sprintf("delete %c keep %c", 'a'+del, 'a'+keep), func(t *testing.T) {
					st := open(t)
					ten := newTenant(t, st)
					d := [2]subjectData{
						populate(t, st, ten, ids[0], "first"),
						populate(t, st, ten, ids[1], "second"),
					}
					apply(t, st, &custos.Write{Tenant: ten, DeleteSubjects: []custos.SubjectID{ids[del]}})
					checkErased(t, st, ten, ids[del])
					checkIntact(t, st, d[keep])
				})
			}
		})
	}
	t.Run("several at once, one never written", func(t *testing.T) {
		st := open(t)
		ten := newTenant(t, st)
		x, y, z := custos.NewSubjectID(), custos.NewSubjectID(), custos.NewSubjectID()
		populate(t, st, ten, x, "x")
		dy := populate(t, st, ten, y, "y")
		populate(t, st, ten, z, "z")
		apply(t, st, &custos.Write{Tenant: ten, DeleteSubjects: []custos.SubjectID{x, custos.NewSubjectID(), z}})
		checkErased(t, st, ten, x)
		checkErased(t, st, ten, z)
		checkIntact(t, st, dy)
	})
}

// testDeleteBeforePut checks that a Write's deletes apply before its puts,
// so a delete and a put of the same thing in one Write keep the put.
func testDeleteBeforePut(t *testing.T, open func(*testing.T) custos.Store) {
	t.Run("subject deleted and re-added", func(t *testing.T) {
		st := open(t)
		ten := newTenant(t, st)
		s := custos.NewSubjectID()
		old := populate(t, st, ten, s, "old")
		// One new event has the key of an old one, one is new.
		reused := event(s, old.events[1].Time, old.events[1].ID, "new value, old key")
		fresh := event(s, at(50), messageHash(), "new event")
		apply(t, st, &custos.Write{
			Tenant:         ten,
			DeleteSubjects: []custos.SubjectID{s},
			Events:         []custos.StoredEvent{fresh, reused},
			Profiles:       []custos.StoredProfile{{Subject: s, Value: []byte("new profile")}},
		})
		checkEvents(t, st, ten, s, sorted([]custos.StoredEvent{reused, fresh}))
		checkSpan(t, st, ten, s, []custos.StoredEvent{reused, fresh})
		checkProfile(t, st, ten, s, "new profile")
	})
	t.Run("event deleted and re-put", func(t *testing.T) {
		st := open(t)
		ten := newTenant(t, st)
		s := custos.NewSubjectID()
		e := event(s, at(0), messageHash(), "old")
		apply(t, st, &custos.Write{Tenant: ten, Events: []custos.StoredEvent{e}})
		again := event(s, e.Time, e.ID, "new")
		apply(t, st, &custos.Write{Tenant: ten, DeleteEvents: []custos.StoredEvent{e}, Events: []custos.StoredEvent{again}})
		checkEvents(t, st, ten, s, []custos.StoredEvent{again})
	})
	t.Run("unlinked and relinked", func(t *testing.T) {
		st := open(t)
		ten := newTenant(t, st)
		h := identifierHash()
		s, s2 := custos.NewSubjectID(), custos.NewSubjectID()
		apply(t, st, &custos.Write{Tenant: ten, Links: []custos.Link{{Hash: h, Subject: s}}})
		apply(t, st, &custos.Write{Tenant: ten, Unlinks: []custos.IdentifierHash{h}, Links: []custos.Link{{Hash: h, Subject: s2}}})
		checkSubject(t, st, ten, h, s2)
	})
	t.Run("unseen and seen again", func(t *testing.T) {
		st := open(t)
		ten := newTenant(t, st)
		m := messageHash()
		s, s2 := custos.NewSubjectID(), custos.NewSubjectID()
		apply(t, st, &custos.Write{Tenant: ten, Seen: []custos.Seen{{ID: m, Subject: s, Time: at(0)}}})
		again := custos.Seen{ID: m, Subject: s2, Time: at(7)}
		apply(t, st, &custos.Write{Tenant: ten, Unsee: []custos.MessageHash{m}, Seen: []custos.Seen{again}})
		checkSeen(t, st, ten, again)
	})
}

func testDeleteEvents(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	ten := newTenant(t, st)
	s, other := custos.NewSubjectID(), custos.NewSubjectID()
	id2, id3 := messageHash(), messageHash()
	e1 := event(s, at(0), messageHash(), "e1")
	e2 := event(s, at(1), id2, "e2")
	e3 := event(s, at(1), id3, "e3 same time as e2")
	e4 := event(s, at(2), messageHash(), "e4")
	// Another subject's event with e2's time and id.
	o2 := event(other, e2.Time, e2.ID, "other subject, e2's time and id")
	seen2 := custos.Seen{ID: e2.ID, Subject: s, Time: e2.Time}
	apply(t, st, &custos.Write{
		Tenant:   ten,
		Events:   []custos.StoredEvent{e4, e3, e2, e1, o2},
		Profiles: []custos.StoredProfile{{Subject: s, Value: []byte("profile")}},
		Seen:     []custos.Seen{seen2},
	})
	target := e2
	target.Value = nil // a delete names the event by subject, time and id only
	apply(t, st, &custos.Write{Tenant: ten, DeleteEvents: []custos.StoredEvent{
		target,
		{Subject: s, Time: e4.Time.Add(1000), ID: e4.ID},           // e4's id at another time: not e4
		{Subject: s, Time: e1.Time, ID: messageHash()},             // e1's time, another id: not e1
		{Subject: custos.NewSubjectID(), Time: e3.Time, ID: e3.ID}, // e3's key under another subject
	}})
	checkEvents(t, st, ten, s, []custos.StoredEvent{e1, e3, e4})
	checkSpan(t, st, ten, s, []custos.StoredEvent{e1, e3, e4})
	checkEvents(t, st, ten, other, []custos.StoredEvent{o2})
	checkProfile(t, st, ten, s, "profile")
	checkSeen(t, st, ten, seen2)

	// Deleting what is left, first and last included, empties the subject.
	apply(t, st, &custos.Write{Tenant: ten, DeleteEvents: []custos.StoredEvent{e1, e3, e4}})
	checkEvents(t, st, ten, s, nil)
	checkSpan(t, st, ten, s, nil)
	checkProfile(t, st, ten, s, "profile")
}

func testUnlinks(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	ten := newTenant(t, st)
	s, s2 := custos.NewSubjectID(), custos.NewSubjectID()
	h1, h2, h3 := identifierHash(), identifierHash(), identifierHash()
	h1b := h1
	h1b[len(h1b)-1] ^= 0x01 // differs from h1 only in the last byte
	e := event(s, at(0), messageHash(), "event")
	apply(t, st, &custos.Write{
		Tenant:   ten,
		Events:   []custos.StoredEvent{e},
		Profiles: []custos.StoredProfile{{Subject: s, Value: []byte("profile")}},
		Links:    []custos.Link{{Hash: h1, Subject: s}, {Hash: h2, Subject: s}, {Hash: h3, Subject: s2}, {Hash: h1b, Subject: s2}},
	})
	apply(t, st, &custos.Write{Tenant: ten, Unlinks: []custos.IdentifierHash{h1, identifierHash()}})
	checkNoSubject(t, st, ten, h1)
	checkSubject(t, st, ten, h2, s)
	checkSubject(t, st, ten, h3, s2)
	checkSubject(t, st, ten, h1b, s2)
	checkEvents(t, st, ten, s, []custos.StoredEvent{e})
	checkProfile(t, st, ten, s, "profile")
}

func testUnsee(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	ten := newTenant(t, st)
	s := custos.NewSubjectID()
	m1, m2 := messageHash(), messageHash()
	m1b := m1
	m1b[len(m1b)-1] ^= 0x01 // differs from m1 only in the last byte
	e1 := event(s, at(0), m1, "e1")
	seen := []custos.Seen{{ID: m1, Subject: s, Time: at(0)}, {ID: m2, Subject: s, Time: at(1)}, {ID: m1b, Subject: s, Time: at(2)}}
	apply(t, st, &custos.Write{Tenant: ten, Events: []custos.StoredEvent{e1}, Seen: seen})
	apply(t, st, &custos.Write{Tenant: ten, Unsee: []custos.MessageHash{m1, messageHash()}})
	checkNotSeen(t, st, ten, m1)
	checkSeen(t, st, ten, seen[1])
	checkSeen(t, st, ten, seen[2])
	// The event that had the hash is a different record and stays.
	checkEvents(t, st, ten, s, []custos.StoredEvent{e1})
}

func testPurge(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	ten := newTenant(t, st)
	a := custos.SubjectID(withLast([16]byte(custos.NewSubjectID()), 0x10))
	b := custos.SubjectID(withLast([16]byte(a), 0x11))
	c := custos.NewSubjectID()
	populate(t, st, ten, a, "a")
	db := populate(t, st, ten, b, "b")
	dc := populate(t, st, ten, c, "c")
	apply(t, st, &custos.Write{Tenant: ten, DeleteSubjects: []custos.SubjectID{a}})
	for i := range 2 { // a second purge finds nothing to do and must not fail
		if err := st.Purge(t.Context(), ten, a); err != nil {
			t.Fatalf("Purge(tenant %s, subject %s) #%d = %v, want nil", ten, a, i+1, err)
		}
	}
	checkErased(t, st, ten, a)
	checkIntact(t, st, db)
	checkIntact(t, st, dc)
	never := custos.NewSubjectID()
	if err := st.Purge(t.Context(), ten, never); err != nil {
		t.Errorf("Purge(tenant %s, subject %s) of a subject never written = %v, want nil", ten, never, err)
	}
	// The store keeps working for the purged subject's neighbour.
	e := event(b, at(500), messageHash(), "after purge")
	apply(t, st, &custos.Write{Tenant: ten, Events: []custos.StoredEvent{e}})
	checkEvents(t, st, ten, b, sorted(append(db.events, e)))
}
