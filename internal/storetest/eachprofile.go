package storetest

import (
	"errors"
	"slices"
	"testing"

	"github.com/custos-dev/custos"
)

// testEachProfile checks that a tenant's profiles are walked in subject
// order, that subjects with events but no profile are skipped, that a walk
// resumes after a given subject, stops when told, and stays in its tenant.
func testEachProfile(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	ten, other := newTenant(t, st), newTenant(t, st)
	var want []custos.SubjectID
	w := &custos.Write{Tenant: ten}
	for i := range 5 {
		s := custos.NewSubjectID()
		w.Events = append(w.Events, event(s, at(i), messageHash(), "event"))
		if i != 2 { // subject 2 has events only
			w.Profiles = append(w.Profiles, custos.StoredProfile{Subject: s, Value: []byte("profile " + s.String())})
			want = append(want, s)
		}
	}
	apply(t, st, w, &custos.Write{Tenant: other, Profiles: []custos.StoredProfile{{Subject: custos.NewSubjectID(), Value: []byte("other")}}})
	slices.SortFunc(want, func(a, b custos.SubjectID) int { return slices.Compare(a[:], b[:]) })

	walk := func(after custos.SubjectID, limit int) []custos.SubjectID {
		t.Helper()
		var got []custos.SubjectID
		err := st.EachProfile(t.Context(), ten, after, func(p custos.StoredProfile) (bool, error) {
			if string(p.Value) != "profile "+p.Subject.String() {
				t.Errorf("profile of %s = %q", p.Subject, p.Value)
			}
			got = append(got, p.Subject)
			return len(got) < limit, nil
		})
		if err != nil {
			t.Fatalf("EachProfile(after %s) = %v", after, err)
		}
		return got
	}
	if got := walk(custos.SubjectID{}, 100); !slices.Equal(got, want) {
		t.Errorf("EachProfile from the start = %v, want %v", got, want)
	}
	if got := walk(want[1], 100); !slices.Equal(got, want[2:]) {
		t.Errorf("EachProfile after %s = %v, want %v", want[1], got, want[2:])
	}
	if got := walk(custos.SubjectID{}, 2); !slices.Equal(got, want[:2]) {
		t.Errorf("EachProfile stopped after 2 = %v, want %v", got, want[:2])
	}
	boom := errors.New("boom")
	if err := st.EachProfile(t.Context(), ten, custos.SubjectID{}, func(custos.StoredProfile) (bool, error) { return true, boom }); !errors.Is(err, boom) {
		t.Errorf("EachProfile with a failing fn = %v, want %v", err, boom)
	}
}
