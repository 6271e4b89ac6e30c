package storetest

import (
	"testing"

	"github.com/custos-dev/custos"
)

// testNotFound checks that every read of something absent answers
// custos.ErrNotFound, not a zero value and not another error.
func testNotFound(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	ten := newTenant(t, st)
	s := custos.NewSubjectID()
	e := event(s, at(0), messageHash(), "event")
	h := identifierHash()
	// The tenant holds data, so that "absent" is not "empty store".
	apply(t, st, &custos.Write{
		Tenant: ten, Events: []custos.StoredEvent{e},
		Links: []custos.Link{{Hash: h, Subject: s}},
		Seen:  []custos.Seen{{ID: e.ID, Subject: s, Time: e.Time}},
	})
	unknownTenant := custos.NewTenantID()
	tests := []struct {
		name string
		read func() error
	}{
		{"Tenant of an id never created", func() error { _, err := st.Tenant(t.Context(), unknownTenant); return err }},
		{"Subject of an unknown identifier hash", func() error { _, err := st.Subject(t.Context(), ten, identifierHash()); return err }},
		{"Subject of a known hash under an unknown tenant", func() error { _, err := st.Subject(t.Context(), unknownTenant, h); return err }},
		{"Seen of an unknown message hash", func() error { _, err := st.Seen(t.Context(), ten, messageHash()); return err }},
		{"Seen of a known hash under an unknown tenant", func() error { _, err := st.Seen(t.Context(), unknownTenant, e.ID); return err }},
		{"Profile of a subject never written", func() error { _, err := st.Profile(t.Context(), ten, custos.NewSubjectID()); return err }},
		{"Profile of a subject with events only", func() error { _, err := st.Profile(t.Context(), ten, s); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkNotFound(t, tc.name, tc.read())
		})
	}
}
