package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/custos-dev/custos"
)

func testApplyRoundTrip(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	ten := newTenant(t, st)
	a, b := custos.NewSubjectID(), custos.NewSubjectID()
	ea := []custos.StoredEvent{
		event(a, at(10), messageHash(), "a second"),
		event(a, at(0), messageHash(), "a first"),
	}
	eb := []custos.StoredEvent{event(b, time.Date(1955, 11, 5, 6, 0, 0, 0, time.UTC), messageHash(), "b only")}
	ha1, ha2, hb := identifierHash(), identifierHash(), identifierHash()
	seen := []custos.Seen{
		{ID: ea[0].ID, Subject: a, Time: ea[0].Time},
		{ID: ea[1].ID, Subject: a, Time: ea[1].Time},
		{ID: eb[0].ID, Subject: b, Time: eb[0].Time},
	}
	apply(t, st, &custos.Write{
		Tenant: ten,
		Events: append(append([]custos.StoredEvent(nil), ea...), eb...),
		Profiles: []custos.StoredProfile{
			{Subject: a, Value: []byte("profile a")},
			{Subject: b, Value: []byte{0x00, 0xff, 0x80, 0x01}}, // sealed values are arbitrary bytes
		},
		Links: []custos.Link{{Hash: ha1, Subject: a}, {Hash: ha2, Subject: a}, {Hash: hb, Subject: b}},
		Seen:  seen,
	})
	checkEvents(t, st, ten, a, sorted(ea))
	checkEvents(t, st, ten, b, eb)
	checkSpan(t, st, ten, a, ea)
	checkSpan(t, st, ten, b, eb)
	checkProfile(t, st, ten, a, "profile a")
	checkProfile(t, st, ten, b, "\x00\xff\x80\x01")
	checkSubject(t, st, ten, ha1, a)
	checkSubject(t, st, ten, ha2, a)
	checkSubject(t, st, ten, hb, b)
	for _, sn := range seen {
		checkSeen(t, st, ten, sn)
	}
}

func testApplyEmpty(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	ten := newTenant(t, st)
	tests := []struct {
		name string
		ws   []*custos.Write
	}{
		{"nil slice", nil},
		{"no writes", []*custos.Write{}},
		{"one empty write", []*custos.Write{{Tenant: ten}}},
		{"empty non-nil fields", []*custos.Write{{
			Tenant: ten, Events: []custos.StoredEvent{}, Profiles: []custos.StoredProfile{},
			Links: []custos.Link{}, Unlinks: []custos.IdentifierHash{}, Seen: []custos.Seen{},
			DeleteSubjects: []custos.SubjectID{}, DeleteEvents: []custos.StoredEvent{}, Unsee: []custos.MessageHash{},
		}}},
		{"several empty writes", []*custos.Write{{Tenant: ten}, {Tenant: ten}, {Tenant: newTenant(t, st)}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wait, err := st.Apply(t.Context(), tc.ws)
			if err != nil {
				t.Fatalf("Apply(%s) = %v, want nil", tc.name, err)
			}
			if wait == nil {
				t.Fatalf("Apply(%s) returned a nil wait", tc.name)
			}
			if err := wait(); err != nil {
				t.Errorf("Apply(%s): wait() = %v, want nil", tc.name, err)
			}
		})
	}
	// The store still works after empty applies.
	s := custos.NewSubjectID()
	e := event(s, at(0), messageHash(), "after empty")
	apply(t, st, &custos.Write{Tenant: ten, Events: []custos.StoredEvent{e}})
	checkEvents(t, st, ten, s, []custos.StoredEvent{e})
}

// testApplyVisibility checks that reads made before wait returns see either
// the old or the new state and fail in no other way, and that reads after
// it see the new state.
func testApplyVisibility(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	ten := newTenant(t, st)
	s := custos.NewSubjectID()
	h := identifierHash()
	e := event(s, at(0), messageHash(), "visible")
	wait, err := st.Apply(t.Context(), []*custos.Write{{
		Tenant:   ten,
		Events:   []custos.StoredEvent{e},
		Profiles: []custos.StoredProfile{{Subject: s, Value: []byte("profile")}},
		Links:    []custos.Link{{Hash: h, Subject: s}},
		Seen:     []custos.Seen{{ID: e.ID, Subject: s, Time: e.Time}},
	}})
	if err != nil {
		t.Fatalf("Apply = %v, want nil", err)
	}
	// Before wait: either state is allowed, an error other than not found is not.
	if p, err := st.Profile(t.Context(), ten, s); err != nil && !errors.Is(err, custos.ErrNotFound) {
		t.Errorf("Profile before wait = %v, want nil or custos.ErrNotFound", err)
	} else if err == nil && string(p) != "profile" {
		t.Errorf("Profile before wait = %q, want %q or not found", p, "profile")
	}
	if _, err := st.Subject(t.Context(), ten, h); err != nil && !errors.Is(err, custos.ErrNotFound) {
		t.Errorf("Subject before wait = %v, want nil or custos.ErrNotFound", err)
	}
	if _, err := st.Seen(t.Context(), ten, e.ID); err != nil && !errors.Is(err, custos.ErrNotFound) {
		t.Errorf("Seen before wait = %v, want nil or custos.ErrNotFound", err)
	}
	if got := listEvents(t, st, ten, s, nil); len(got) > 1 || len(got) == 1 && !sameEvent(got[0], e) {
		t.Errorf("Events before wait = %s, want none or %s", formatEvents(got), formatEvents([]custos.StoredEvent{e}))
	}
	if err := wait(); err != nil {
		t.Fatalf("wait() = %v, want nil", err)
	}
	checkEvents(t, st, ten, s, []custos.StoredEvent{e})
	checkProfile(t, st, ten, s, "profile")
	checkSubject(t, st, ten, h, s)
	checkSeen(t, st, ten, custos.Seen{ID: e.ID, Subject: s, Time: e.Time})
}

// testApplyOrderAcrossCalls checks that a Write applied after an earlier
// Apply returned, but before its wait, is ordered after it.
func testApplyOrderAcrossCalls(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	ten := newTenant(t, st)
	s := custos.NewSubjectID()
	h := identifierHash()
	e := event(s, at(0), messageHash(), "put then deleted")
	steps := []*custos.Write{
		{Tenant: ten, Events: []custos.StoredEvent{e}, Profiles: []custos.StoredProfile{{Subject: s, Value: []byte("v1")}},
			Links: []custos.Link{{Hash: h, Subject: s}}, Seen: []custos.Seen{{ID: e.ID, Subject: s, Time: e.Time}}},
		{Tenant: ten, Profiles: []custos.StoredProfile{{Subject: s, Value: []byte("v2")}}},
		{Tenant: ten, DeleteEvents: []custos.StoredEvent{e}, Unlinks: []custos.IdentifierHash{h}, Unsee: []custos.MessageHash{e.ID}},
		{Tenant: ten, Profiles: []custos.StoredProfile{{Subject: s, Value: []byte("v3")}}},
	}
	var waits []func() error
	for i, w := range steps {
		wait, err := st.Apply(t.Context(), []*custos.Write{w})
		if err != nil {
			t.Fatalf("Apply(step %d) = %v, want nil", i, err)
		}
		waits = append(waits, wait)
	}
	// Waited on in reverse, which must not matter.
	for i := len(waits) - 1; i >= 0; i-- {
		if err := waits[i](); err != nil {
			t.Errorf("Apply(step %d): wait() = %v, want nil", i, err)
		}
	}
	checkProfile(t, st, ten, s, "v3")
	checkEvents(t, st, ten, s, nil)
	checkNoSubject(t, st, ten, h)
	checkNotSeen(t, st, ten, e.ID)
}

func testApplySeveralTenants(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	tenants := []custos.TenantID{newTenant(t, st), newTenant(t, st), newTenant(t, st)}
	// The same subject, hash and event key in every tenant, with values
	// that name the tenant.
	s := custos.NewSubjectID()
	h := identifierHash()
	id := messageHash()
	var ws []*custos.Write
	for i, ten := range tenants {
		other := custos.NewSubjectID()
		ws = append(ws, &custos.Write{
			Tenant:   ten,
			Events:   []custos.StoredEvent{event(s, at(i), id, fmt.Sprintf("tenant %d", i))},
			Profiles: []custos.StoredProfile{{Subject: s, Value: fmt.Appendf(nil, "profile %d", i)}},
			Links:    []custos.Link{{Hash: h, Subject: other}},
			Seen:     []custos.Seen{{ID: id, Subject: other, Time: at(i)}},
		})
	}
	apply(t, st, ws...)
	for i, w := range ws {
		checkEvents(t, st, tenants[i], s, w.Events)
		checkProfile(t, st, tenants[i], s, fmt.Sprintf("profile %d", i))
		checkSubject(t, st, tenants[i], h, w.Links[0].Subject)
		checkSeen(t, st, tenants[i], w.Seen[0])
	}
}

// testApplyWritesInOrder checks that the writes of one Apply call take
// effect in slice order.
func testApplyWritesInOrder(t *testing.T, open func(*testing.T) custos.Store) {
	tests := []struct {
		name        string
		writes      func(ten custos.TenantID, s custos.SubjectID, e custos.StoredEvent) []*custos.Write
		wantEvents  bool
		wantProfile string // empty: none
	}{
		{
			name: "put then delete subject",
			writes: func(ten custos.TenantID, s custos.SubjectID, e custos.StoredEvent) []*custos.Write {
				return []*custos.Write{
					{Tenant: ten, Events: []custos.StoredEvent{e}, Profiles: []custos.StoredProfile{{Subject: s, Value: []byte("p")}}},
					{Tenant: ten, DeleteSubjects: []custos.SubjectID{s}},
				}
			},
		},
		{
			name: "delete subject then put",
			writes: func(ten custos.TenantID, s custos.SubjectID, e custos.StoredEvent) []*custos.Write {
				return []*custos.Write{
					{Tenant: ten, DeleteSubjects: []custos.SubjectID{s}},
					{Tenant: ten, Events: []custos.StoredEvent{e}, Profiles: []custos.StoredProfile{{Subject: s, Value: []byte("p")}}},
				}
			},
			wantEvents: true, wantProfile: "p",
		},
		{
			name: "put then delete event",
			writes: func(ten custos.TenantID, s custos.SubjectID, e custos.StoredEvent) []*custos.Write {
				return []*custos.Write{
					{Tenant: ten, Events: []custos.StoredEvent{e}},
					{Tenant: ten, DeleteEvents: []custos.StoredEvent{e}},
				}
			},
		},
		{
			name: "two profiles, last wins",
			writes: func(ten custos.TenantID, s custos.SubjectID, e custos.StoredEvent) []*custos.Write {
				return []*custos.Write{
					{Tenant: ten, Profiles: []custos.StoredProfile{{Subject: s, Value: []byte("first")}}},
					{Tenant: ten, Profiles: []custos.StoredProfile{{Subject: s, Value: []byte("second")}}},
				}
			},
			wantProfile: "second",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := open(t)
			ten := newTenant(t, st)
			s := custos.NewSubjectID()
			e := event(s, at(0), messageHash(), "event")
			apply(t, st, tc.writes(ten, s, e)...)
			var want []custos.StoredEvent
			if tc.wantEvents {
				want = []custos.StoredEvent{e}
			}
			checkEvents(t, st, ten, s, want)
			if tc.wantProfile == "" {
				checkNoProfile(t, st, ten, s)
			} else {
				checkProfile(t, st, ten, s, tc.wantProfile)
			}
		})
	}
}

// testApplyReplaces checks that a put of an existing key replaces it: an
// event with the same subject, time and ID, a profile, a link, a dedup
// record.
func testApplyReplaces(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	ten := newTenant(t, st)
	s, s2 := custos.NewSubjectID(), custos.NewSubjectID()
	h := identifierHash()
	e1 := event(s, at(0), messageHash(), "old")
	e2 := event(s, at(1), messageHash(), "kept")
	apply(t, st, &custos.Write{
		Tenant:   ten,
		Events:   []custos.StoredEvent{e1, e2},
		Profiles: []custos.StoredProfile{{Subject: s, Value: []byte("old profile")}},
		Links:    []custos.Link{{Hash: h, Subject: s}},
		Seen:     []custos.Seen{{ID: e1.ID, Subject: s, Time: e1.Time}},
	})
	e1new := event(s, e1.Time, e1.ID, "new, and longer than the old value")
	newSeen := custos.Seen{ID: e1.ID, Subject: s2, Time: at(99)}
	apply(t, st, &custos.Write{
		Tenant:   ten,
		Events:   []custos.StoredEvent{e1new},
		Profiles: []custos.StoredProfile{{Subject: s, Value: []byte("new")}},
		Links:    []custos.Link{{Hash: h, Subject: s2}},
		Seen:     []custos.Seen{newSeen},
	})
	checkEvents(t, st, ten, s, []custos.StoredEvent{e1new, e2})
	checkProfile(t, st, ten, s, "new")
	checkSubject(t, st, ten, h, s2)
	checkSeen(t, st, ten, newSeen)
}
