package storetest

import (
	"maps"
	"testing"

	"github.com/custos-dev/custos"
)

// testReadMany checks that Subjects and Profiles read what Subject and
// Profile read, for many at once: each linked hash and each stored
// profile once, nothing for what is absent, unlinked, deleted or
// another tenant's.
func testReadMany(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	ten, other := newTenant(t, st), newTenant(t, st)
	s1, s2, s3 := custos.NewSubjectID(), custos.NewSubjectID(), custos.NewSubjectID()
	h1, h2, h3, hGone, hOther := identifierHash(), identifierHash(), identifierHash(), identifierHash(), identifierHash()
	apply(t, st, &custos.Write{
		Tenant: ten,
		Links: []custos.Link{
			{Hash: h1, Subject: s1}, {Hash: h2, Subject: s1}, {Hash: h3, Subject: s2}, {Hash: hGone, Subject: s3},
		},
		Profiles: []custos.StoredProfile{{Subject: s1, Value: []byte("one")}, {Subject: s2, Value: []byte("two")}, {Subject: s3, Value: []byte("three")}},
	}, &custos.Write{
		Tenant:   other,
		Links:    []custos.Link{{Hash: hOther, Subject: s1}},
		Profiles: []custos.StoredProfile{{Subject: s3, Value: []byte("other's")}},
	})
	apply(t, st, &custos.Write{Tenant: ten, Unlinks: []custos.IdentifierHash{hGone}, DeleteSubjects: []custos.SubjectID{s3}})

	unknown := identifierHash()
	got, err := st.Subjects(t.Context(), ten, []custos.IdentifierHash{h3, h1, unknown, hGone, hOther, h2, h1})
	want := map[custos.IdentifierHash]custos.SubjectID{h1: s1, h2: s1, h3: s2}
	if err != nil || !maps.Equal(got, want) {
		t.Errorf("Subjects(tenant, [h3 h1 unknown unlinked other-tenant's h2 h1]) = %v, %v; want %v, nil", got, err, want)
	}
	if got, err := st.Subjects(t.Context(), ten, nil); err != nil || len(got) != 0 {
		t.Errorf("Subjects(tenant, none) = %v, %v; want an empty map, nil", got, err)
	}
	if got, err := st.Subjects(t.Context(), custos.NewTenantID(), []custos.IdentifierHash{h1}); err != nil || len(got) != 0 {
		t.Errorf("Subjects(unknown tenant, [h1]) = %v, %v; want an empty map, nil", got, err)
	}

	profiles, err := st.Profiles(t.Context(), ten, []custos.SubjectID{s2, s3, custos.NewSubjectID(), s1, s2})
	if err != nil || len(profiles) != 2 || string(profiles[s1]) != "one" || string(profiles[s2]) != "two" {
		t.Errorf("Profiles(tenant, [s2 deleted unknown s1 s2]) = %q, %v; want s1 %q and s2 %q only", profiles, err, "one", "two")
	}
	if got, err := st.Profiles(t.Context(), other, []custos.SubjectID{s1, s3}); err != nil || len(got) != 1 || string(got[s3]) != "other's" {
		t.Errorf("Profiles(other tenant, [s1 s3]) = %q, %v; want s3 %q only", got, err, "other's")
	}
	if got, err := st.Profiles(t.Context(), ten, nil); err != nil || len(got) != 0 {
		t.Errorf("Profiles(tenant, none) = %v, %v; want an empty map, nil", got, err)
	}
	// Each value is the caller's own.
	profiles[s1][0] = 'X'
	checkProfile(t, st, ten, s1, "one")
}
