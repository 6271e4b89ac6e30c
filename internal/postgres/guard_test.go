package postgres_test

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/pgtest"
	"github.com/custos-dev/custos/internal/postgres"
)

func msgHash() custos.MessageHash {
	var h custos.MessageHash
	rand.Read(h[:])
	return h
}

func idHash() custos.IdentifierHash {
	var h custos.IdentifierHash
	rand.Read(h[:])
	return h
}

// twoNodes opens two store handles on one new database, as two nodes
// would, with one tenant.
func twoNodes(t *testing.T) (a, b *postgres.Store, ten custos.TenantID) {
	t.Helper()
	url := pgtest.NewDatabase(t)
	a, b = openStore(t, url), openStore(t, url)
	ten = custos.NewTenantID()
	if err := a.CreateTenant(t.Context(), &custos.Tenant{ID: ten, Name: "t"}); err != nil {
		t.Fatal(err)
	}
	return a, b, ten
}

func apply(st custos.Store, t *testing.T, w *custos.Write) error {
	t.Helper()
	wait, err := st.Apply(t.Context(), []*custos.Write{w})
	if err != nil {
		return err
	}
	return wait()
}

func staleOf(err error) *custos.StaleError {
	var st *custos.StaleError
	if errors.As(err, &st) {
		return st
	}
	return nil
}

// TestGuardGeneration: a gate change on node A (a suppression) advances
// the generation; node B's next write, composed from the older gate, is
// refused and leaves nothing; composed again at the new generation it
// goes through.
func TestGuardGeneration(t *testing.T) {
	a, b, ten := twoNodes(t)
	s := custos.NewSubjectID()
	sup := &custos.Write{Tenant: ten, Flags: []custos.FlagsRecord{{Subject: s, Flags: custos.SubjectFlags{Suppressed: true}}},
		Guard: &custos.Guard{Generation: 0, Advance: true}}
	if err := apply(a, t, sup); err != nil {
		t.Fatalf("node A: suppression = %v, want nil", err)
	}
	if g, err := b.Generation(t.Context(), ten); err != nil || g != 1 {
		t.Errorf("node B: Generation after A's suppression = %d, %v; want 1", g, err)
	}
	m := msgHash()
	ev := func(gen uint64) *custos.Write {
		return &custos.Write{Tenant: ten, Events: []custos.StoredEvent{{Subject: s, Time: time.Unix(100, 0), ID: m, Value: []byte("v")}},
			Seen: []custos.Seen{{ID: m, Subject: s, Time: time.Unix(100, 0)}}, Guard: &custos.Guard{Generation: gen, NewSeen: []custos.MessageHash{m}}}
	}
	err := apply(b, t, ev(0))
	if st := staleOf(err); st == nil || !st.GenerationStale || st.Generation != 1 || st.Tenant != ten {
		t.Fatalf("node B: write at generation 0 after A advanced it = %v, want a StaleError naming generation 1", err)
	}
	if _, err := a.Seen(t.Context(), ten, m); !errors.Is(err, custos.ErrNotFound) {
		t.Errorf("after the refused write: Seen = %v, want ErrNotFound (nothing written)", err)
	}
	if err := apply(b, t, ev(1)); err != nil {
		t.Errorf("node B: write at generation 1 = %v, want nil", err)
	}
	// A write without a guard is not checked (the embedded store's way).
	if err := apply(b, t, &custos.Write{Tenant: ten, Profiles: []custos.StoredProfile{{Subject: s, Value: []byte("p")}}}); err != nil {
		t.Errorf("unguarded write = %v, want nil", err)
	}
}

// TestGuardSameMessageOnTwoNodes sends one message to both nodes at once,
// resolved to different subjects (the worst case): exactly one write is
// stored, every other is refused naming the message as stored meanwhile.
func TestGuardSameMessageOnTwoNodes(t *testing.T) {
	a, b, ten := twoNodes(t)
	for round := range 10 {
		m := msgHash()
		const writers = 6
		var wg sync.WaitGroup
		var mu sync.Mutex
		stored, refused := 0, 0
		for i := range writers {
			wg.Go(func() {
				st := []*postgres.Store{a, b}[i%2]
				s := custos.NewSubjectID()
				err := apply(st, t, &custos.Write{Tenant: ten,
					Events: []custos.StoredEvent{{Subject: s, Time: time.Unix(int64(round), 0), ID: m, Value: []byte("v")}},
					Seen:   []custos.Seen{{ID: m, Subject: s, Time: time.Unix(int64(round), 0)}},
					Guard:  &custos.Guard{NewSeen: []custos.MessageHash{m}}})
				mu.Lock()
				defer mu.Unlock()
				switch se := staleOf(err); {
				case err == nil:
					stored++
				case se != nil && len(se.Seen) == 1 && se.Seen[0] == m:
					refused++
				default:
					t.Errorf("round %d: concurrent write of one message = %v, want nil or a StaleError naming it", round, err)
				}
			})
		}
		wg.Wait()
		if stored != 1 || refused != writers-1 {
			t.Errorf("round %d: %d stored, %d refused; want 1 and %d", round, stored, refused, writers-1)
		}
	}
}

// TestGuardSameEventOnTwoNodes: writers on both nodes store one message
// for one subject at once, so that their event rows collide before their
// deduplication records do: one is stored, the others are refused as
// having seen it, as when the records collide first.
func TestGuardSameEventOnTwoNodes(t *testing.T) {
	a, b, ten := twoNodes(t)
	s := custos.NewSubjectID()
	for round := range 10 {
		m, at := msgHash(), time.Unix(int64(round), 0)
		const writers = 6
		var wg sync.WaitGroup
		errs := make([]error, writers)
		for i := range writers {
			wg.Go(func() {
				errs[i] = apply([]*postgres.Store{a, b}[i%2], t, &custos.Write{Tenant: ten,
					Events: []custos.StoredEvent{{Subject: s, Time: at, ID: m, Value: []byte{byte(i)}}},
					Seen:   []custos.Seen{{ID: m, Subject: s, Time: at}},
					Guard:  &custos.Guard{NewSeen: []custos.MessageHash{m}}})
			})
		}
		wg.Wait()
		stored := 0
		for _, err := range errs {
			if se := staleOf(err); err != nil && (se == nil || len(se.Seen) != 1 || se.Seen[0] != m) {
				t.Errorf("round %d: concurrent write of one event = %v, want nil or a StaleError naming it", round, err)
			} else if err == nil {
				stored++
			}
		}
		if stored != 1 {
			t.Errorf("round %d: %d writers stored the event, want 1", round, stored)
		}
	}
}

// TestGuardNewEventAlreadyStored: a guarded Write that holds a message
// new, whose event row exists all the same (here written without its
// deduplication record), replaces it as any put does, rather than failing
// on the row it inserts as new.
func TestGuardNewEventAlreadyStored(t *testing.T) {
	a, _, ten := twoNodes(t)
	s, m, at := custos.NewSubjectID(), msgHash(), time.Unix(100, 0)
	if err := apply(a, t, &custos.Write{Tenant: ten, Events: []custos.StoredEvent{{Subject: s, Time: at, ID: m, Value: []byte("old")}}}); err != nil {
		t.Fatal(err)
	}
	other := custos.StoredEvent{Subject: s, Time: at.Add(time.Second), ID: msgHash(), Value: []byte("other")}
	err := apply(a, t, &custos.Write{Tenant: ten,
		Events: []custos.StoredEvent{{Subject: s, Time: at, ID: m, Value: []byte("new")}, other},
		Seen:   []custos.Seen{{ID: m, Subject: s, Time: at}, {ID: other.ID, Subject: s, Time: other.Time}},
		Guard:  &custos.Guard{NewSeen: []custos.MessageHash{m, other.ID}}})
	if err != nil {
		t.Fatalf("guarded write over a stored event = %v, want nil", err)
	}
	var got []string
	if err := a.Events(t.Context(), ten, s, nil, func(e custos.StoredEvent) (bool, error) {
		got = append(got, string(e.Value))
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != "new" || got[1] != "other" {
		t.Errorf("events after the write = %q, want [new other]", got)
	}
	if sn, err := a.Seen(t.Context(), ten, m); err != nil || sn.Subject != s {
		t.Errorf("Seen(m) = %+v, %v; want the record of subject %s", sn, err, s)
	}
}

// TestGuardConcurrentFirstSighting links one new identifier from both
// nodes at once to subjects each created: one link wins, the other write
// is refused, so no person is split in two and no link is lost.
func TestGuardConcurrentFirstSighting(t *testing.T) {
	a, b, ten := twoNodes(t)
	for round := range 10 {
		h := idHash()
		var wg sync.WaitGroup
		subs := [2]custos.SubjectID{custos.NewSubjectID(), custos.NewSubjectID()}
		errs := [2]error{}
		for i, st := range []*postgres.Store{a, b} {
			wg.Go(func() {
				errs[i] = apply(st, t, &custos.Write{Tenant: ten,
					Links:    []custos.Link{{Hash: h, Subject: subs[i]}},
					Profiles: []custos.StoredProfile{{Subject: subs[i], Value: []byte("p")}},
					Guard:    &custos.Guard{NewLinks: []custos.IdentifierHash{h}}})
			})
		}
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch se := staleOf(err); {
			case err == nil:
				if winner >= 0 {
					t.Fatalf("round %d: both first sightings stored", round)
				}
				winner = i
			case se == nil || !se.Links:
				t.Errorf("round %d: node %d = %v, want nil or a StaleError about links", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: both first sightings refused (%v, %v)", round, errs[0], errs[1])
		}
		if got, err := b.Subject(t.Context(), ten, h); err != nil || got != subs[winner] {
			t.Errorf("round %d: identifier points at %s, %v; want the winner %s", round, got, err, subs[winner])
		}
		if _, err := a.Profile(t.Context(), ten, subs[1-winner]); !errors.Is(err, custos.ErrNotFound) {
			t.Errorf("round %d: the refused write left its profile: %v", round, err)
		}
	}
}

// TestGuardAdvanceSerialises races gate changes on node A against
// guarded writes on node B that always use the generation B last read:
// every write B gets through was checked against the generation current
// at its commit, so the generation B read and the count of A's changes
// agree at the end.
func TestGuardAdvanceSerialises(t *testing.T) {
	a, b, ten := twoNodes(t)
	const changes = 40
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range changes {
			w := &custos.Write{Tenant: ten, Flags: []custos.FlagsRecord{{Subject: custos.NewSubjectID(), Flags: custos.SubjectFlags{Restricted: true}}},
				Guard: &custos.Guard{Generation: uint64(i), Advance: true}}
			if err := apply(a, t, w); err != nil {
				t.Errorf("node A change %d = %v", i, err)
				return
			}
		}
	})
	var gen uint64
	accepted := 0
	for accepted < 50 {
		s := custos.NewSubjectID()
		err := apply(b, t, &custos.Write{Tenant: ten, Profiles: []custos.StoredProfile{{Subject: s, Value: []byte("p")}}, Guard: &custos.Guard{Generation: gen}})
		if se := staleOf(err); se != nil {
			if !se.GenerationStale || se.Generation <= gen {
				t.Fatalf("stale error %v does not move the generation forward from %d", se, gen)
			}
			gen = se.Generation
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		accepted++
	}
	wg.Wait()
	if g, _ := b.Generation(t.Context(), ten); g != changes {
		t.Errorf("generation after %d changes = %d", changes, g)
	}
}

// TestGuardProfilesAndEvents: a profile replaced, or a merged subject's
// events deleted, on what the author read is refused when another node
// changed that profile or stored an event of that subject meanwhile; the
// store is left as the other node wrote it.
func TestGuardProfilesAndEvents(t *testing.T) {
	a, b, ten := twoNodes(t)
	s := custos.NewSubjectID()
	if err := apply(a, t, &custos.Write{Tenant: ten, Profiles: []custos.StoredProfile{{Subject: s, Value: []byte("v1")}}}); err != nil {
		t.Fatal(err)
	}
	v1 := sha256.Sum256([]byte("v1"))
	// Node A changes the profile; node B's write based on v1 is refused.
	if err := apply(a, t, &custos.Write{Tenant: ten, Profiles: []custos.StoredProfile{{Subject: s, Value: []byte("v2-by-a")}},
		Guard: &custos.Guard{Profiles: map[custos.SubjectID][32]byte{s: v1}}}); err != nil {
		t.Fatalf("node A: profile write on what it read = %v, want nil", err)
	}
	err := apply(b, t, &custos.Write{Tenant: ten, Profiles: []custos.StoredProfile{{Subject: s, Value: []byte("v2-by-b")}},
		Guard: &custos.Guard{Profiles: map[custos.SubjectID][32]byte{s: v1}}})
	if st := staleOf(err); st == nil || !st.Profiles {
		t.Fatalf("node B: profile write on a stale read = %v, want a StaleError with Profiles", err)
	}
	if got, _ := b.Profile(t.Context(), ten, s); string(got) != "v2-by-a" {
		t.Errorf("profile after the refused write = %q, want node A's", got)
	}
	// A profile that does not exist yet is read as zero.
	fresh := custos.NewSubjectID()
	if err := apply(b, t, &custos.Write{Tenant: ten, Profiles: []custos.StoredProfile{{Subject: fresh, Value: []byte("new")}},
		Guard: &custos.Guard{Profiles: map[custos.SubjectID][32]byte{fresh: {}}}}); err != nil {
		t.Errorf("a new profile written as absent = %v, want nil", err)
	}

	// A merge of s that copied 1 event is refused once A stored a second.
	ev := func(n int64) custos.StoredEvent {
		return custos.StoredEvent{Subject: s, Time: time.Unix(n, 0), ID: msgHash(), Value: []byte("e")}
	}
	if err := apply(a, t, &custos.Write{Tenant: ten, Events: []custos.StoredEvent{ev(1)}}); err != nil {
		t.Fatal(err)
	}
	if err := apply(a, t, &custos.Write{Tenant: ten, Events: []custos.StoredEvent{ev(2)}}); err != nil {
		t.Fatal(err)
	}
	merge := &custos.Write{Tenant: ten, DeleteSubjects: []custos.SubjectID{s}, Merges: []custos.MergeRecord{{From: s, Into: fresh}},
		Guard: &custos.Guard{Advance: true, Events: map[custos.SubjectID]int{s: 1}}}
	if st := staleOf(apply(b, t, merge)); st == nil || !st.Profiles {
		t.Fatalf("node B: merge that copied 1 of 2 events = %v, want a StaleError", st)
	}
	if _, _, any, err := b.EventSpan(t.Context(), ten, s); err != nil || !any {
		t.Errorf("events of s after the refused merge: any %t, %v; want kept", any, err)
	}
	merge.Guard.Events[s] = 2
	if err := apply(b, t, merge); err != nil {
		t.Errorf("the merge composed again = %v, want nil", err)
	}
}
