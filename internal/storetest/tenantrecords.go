package storetest

import (
	"bytes"
	"errors"
	"testing"

	"github.com/custos-dev/custos"
)

// testTenantRecords checks the two one-per-tenant records a Write carries
// (Observed, Retention): absent until written, replaced by a later write,
// left alone by a write that does not carry them, kept apart per tenant,
// applied atomically with the rest of the write, and removed with the
// tenant.
func testTenantRecords(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	a, b := newTenant(t, st), newTenant(t, st)
	type record struct {
		name string
		get  func(custos.TenantID) ([]byte, error)
		set  func(*custos.Write, []byte)
	}
	records := []record{
		{"Observed", func(ten custos.TenantID) ([]byte, error) { return st.Observed(t.Context(), ten) },
			func(w *custos.Write, v []byte) { w.Observed = v }},
		{"RetentionProgress", func(ten custos.TenantID) ([]byte, error) { return st.RetentionProgress(t.Context(), ten) },
			func(w *custos.Write, v []byte) { w.Retention = v }},
	}
	check := func(r record, ten custos.TenantID, want []byte) {
		t.Helper()
		got, err := r.get(ten)
		if want == nil {
			if !errors.Is(err, custos.ErrNotFound) {
				t.Errorf("%s(%s) = %q, %v; want ErrNotFound", r.name, ten, got, err)
			}
			return
		}
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s(%s) = %q, %v; want %q", r.name, ten, got, err, want)
		}
	}
	for _, r := range records {
		check(r, a, nil)
		w := &custos.Write{Tenant: a}
		if !w.Empty() {
			t.Fatalf("a Write without changes is not Empty")
		}
		r.set(w, []byte("first "+r.name))
		if w.Empty() {
			t.Errorf("a Write carrying only %s is Empty; it would be dropped", r.name)
		}
		s := custos.NewSubjectID()
		w.Profiles = []custos.StoredProfile{{Subject: s, Value: []byte("p")}}
		apply(t, st, w)
		check(r, a, []byte("first "+r.name))
		check(r, b, nil)
		if _, err := st.Profile(t.Context(), a, s); err != nil {
			t.Errorf("Profile written with %s = %v, want it stored", r.name, err)
		}
		// A write without the record leaves it.
		apply(t, st, &custos.Write{Tenant: a, Profiles: []custos.StoredProfile{{Subject: s, Value: []byte("p2")}}})
		check(r, a, []byte("first "+r.name))
		wb := &custos.Write{Tenant: b}
		r.set(wb, []byte("b "+r.name))
		wa := &custos.Write{Tenant: a}
		r.set(wa, []byte("second "+r.name))
		apply(t, st, wa, wb)
		check(r, a, []byte("second "+r.name))
		check(r, b, []byte("b "+r.name))
	}
	if err := st.DeleteTenant(t.Context(), a); err != nil {
		t.Fatalf("DeleteTenant = %v", err)
	}
	for _, r := range records {
		check(r, a, nil)
		check(r, b, []byte("b "+r.name))
	}
}
