package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/custos-dev/custos"
)

// RunShared runs the cases that two handles on one store reveal: what one
// handle applies, the other reads at once, and races between handles
// have exactly one winner. open returns two handles on a new, empty
// store, as two nodes would hold them (a store one process alone can
// open returns the same handle twice), and arranges for them to be closed.
func RunShared(t *testing.T, open func(t *testing.T) (a, b custos.Store)) {
	tests := []struct {
		name string
		fn   func(t *testing.T, a, b custos.Store)
	}{
		{"VisibleAcrossHandles", testVisibleAcrossHandles},
		{"HotSubjectFromTwoHandles", testHotSubjectFromTwoHandles},
		{"CreateTenantRace", testCreateTenantRace},
		{"AuditAppendRace", testAuditAppendRace},
		{"SendCapRace", testSendCapRace},
		{"SessionsAcrossHandles", testSessionsAcrossHandles},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := open(t)
			tc.fn(t, a, b)
		})
	}
}

// testVisibleAcrossHandles: once Apply's wait returns on one handle,
// every record it wrote reads back through the other.
func testVisibleAcrossHandles(t *testing.T, a, b custos.Store) {
	ten := newTenant(t, a)
	s := custos.NewSubjectID()
	h := identifierHash()
	e := event(s, at(1), messageHash(), "across")
	sn := custos.Seen{ID: e.ID, Subject: s, Time: at(2)}
	apply(t, a, &custos.Write{Tenant: ten, Events: []custos.StoredEvent{e}, Links: []custos.Link{{Hash: h, Subject: s}},
		Seen: []custos.Seen{sn}, Profiles: []custos.StoredProfile{{Subject: s, Value: []byte("p")}},
		Flags: []custos.FlagsRecord{{Subject: s, Flags: custos.SubjectFlags{Suppressed: true}}}})
	checkSubject(t, b, ten, h, s)
	checkSeen(t, b, ten, sn)
	checkProfile(t, b, ten, s, "p")
	if got := listEvents(t, b, ten, s, nil); len(got) != 1 || !sameEvent(got[0], e) {
		t.Errorf("second handle: Events = %s, want %s", formatEvents(got), formatEvents([]custos.StoredEvent{e}))
	}
	found := false
	if err := b.EachFlags(t.Context(), func(ft custos.TenantID, r custos.FlagsRecord) error {
		found = found || (ft == ten && r.Subject == s && r.Flags.Suppressed)
		return nil
	}); err != nil || !found {
		t.Errorf("second handle: EachFlags = %v, found the suppression %t; want it found", err, found)
	}
}

// testHotSubjectFromTwoHandles has writers on both handles add events to
// one subject at once: every event is stored, none is lost to a race.
func testHotSubjectFromTwoHandles(t *testing.T, a, b custos.Store) {
	ten := newTenant(t, a)
	hot := custos.NewSubjectID()
	const writers, rounds = 6, 10
	var wg sync.WaitGroup
	for w := range writers {
		st := []custos.Store{a, b}[w%2]
		wg.Go(func() {
			for r := range rounds {
				wait, err := st.Apply(t.Context(), []*custos.Write{{Tenant: ten,
					Events:   []custos.StoredEvent{event(hot, at(r), messageHash(), fmt.Sprintf("w%d r%d", w, r))},
					Profiles: []custos.StoredProfile{{Subject: hot, Value: fmt.Appendf(nil, "w%d r%d", w, r)}}}})
				if err == nil {
					err = wait()
				}
				if err != nil {
					t.Errorf("writer %d round %d: Apply = %v, want nil", w, r, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for name, st := range map[string]custos.Store{"first": a, "second": b} {
		if got := listEvents(t, st, ten, hot, nil); len(got) != writers*rounds {
			t.Errorf("%s handle: %d events of the subject written by %d writers on two handles, want %d", name, len(got), writers, writers*rounds)
		}
	}
}

// testCreateTenantRace creates one tenant id from both handles at once,
// several times: exactly one creation succeeds, the others are Conflict.
func testCreateTenantRace(t *testing.T, a, b custos.Store) {
	for round := range 5 {
		id := custos.NewTenantID()
		var mu sync.Mutex
		ok, conflicts := 0, 0
		var wg sync.WaitGroup
		for i := range 4 {
			st := []custos.Store{a, b}[i%2]
			wg.Go(func() {
				err := st.CreateTenant(t.Context(), &custos.Tenant{ID: id, Name: fmt.Sprint("racer ", i), CreatedAt: at(i)})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case custos.ErrorCode(err) == custos.Conflict:
					conflicts++
				default:
					t.Errorf("round %d: CreateTenant = %v, want nil or Conflict", round, err)
				}
			})
		}
		wg.Wait()
		if ok != 1 || conflicts != 3 {
			t.Errorf("round %d: %d creations succeeded and %d were Conflict, want 1 and 3", round, ok, conflicts)
		}
	}
}

// testAuditAppendRace appends the same sequence number from both handles
// at once: exactly one entry is stored, the other append is Conflict.
func testAuditAppendRace(t *testing.T, a, b custos.Store) {
	ten := custos.NewTenantID()
	for seq := uint64(1); seq <= 10; seq++ {
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, st := range []custos.Store{a, b} {
			wg.Go(func() {
				errs[i] = st.AppendAudit(t.Context(), ten, &custos.AuditEntry{Seq: seq, Time: time.Unix(int64(seq), 0).UTC(), Actor: fmt.Sprint("handle ", i), Action: "race"})
			})
		}
		wg.Wait()
		okN := 0
		for i, err := range errs {
			switch {
			case err == nil:
				okN++
			case custos.ErrorCode(err) != custos.Conflict:
				t.Errorf("seq %d: AppendAudit from handle %d = %v, want nil or Conflict", seq, i, err)
			}
		}
		if okN != 1 {
			t.Errorf("seq %d: %d appends of one sequence number succeeded, want 1 (%v)", seq, okN, errs)
		}
		es, err := b.AuditEntries(t.Context(), ten, seq-1, 10)
		if err != nil || len(es) != 1 || es[0].Seq != seq {
			t.Errorf("seq %d: AuditEntries after the race = %d entries, %v; want exactly entry %d", seq, len(es), err, seq)
		}
	}
	if _, ok, err := a.LastAudit(t.Context(), ten); err != nil || !ok {
		t.Errorf("LastAudit = %t, %v; want an entry", ok, err)
	}
}
