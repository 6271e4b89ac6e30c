package storetest

import (
	"testing"

	"github.com/custos-dev/custos"
)

// testMergedInto checks that a merge record written with a Write is read
// back for its tenant only, and that a subject never merged is NotFound.
func testMergedInto(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	ten, other := newTenant(t, st), newTenant(t, st)
	from, into := custos.NewSubjectID(), custos.NewSubjectID()
	apply(t, st, &custos.Write{Tenant: ten, DeleteSubjects: []custos.SubjectID{from}, Merges: []custos.MergeRecord{{From: from, Into: into}}})
	if got, err := st.MergedInto(t.Context(), ten, from); err != nil || got != into {
		t.Errorf("MergedInto(%s) = %s, %v; want %s", from, got, err, into)
	}
	if _, err := st.MergedInto(t.Context(), ten, into); custos.ErrorCode(err) != custos.NotFound {
		t.Errorf("MergedInto(a subject never merged) = %v, want NotFound", err)
	}
	if _, err := st.MergedInto(t.Context(), other, from); custos.ErrorCode(err) != custos.NotFound {
		t.Errorf("MergedInto with another tenant = %v, want NotFound", err)
	}
}
