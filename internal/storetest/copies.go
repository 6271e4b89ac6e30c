package storetest

import (
	"testing"

	"github.com/custos-dev/custos"
)

// scribble overwrites every byte of b, as a careless caller might.
func scribble(b []byte) {
	for i := range b {
		b[i] = 'X'
	}
}

// testReturnedCopies checks that what a read returns belongs to the
// caller: changing it changes nothing the store returns later.
func testReturnedCopies(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	ten := newTenant(t, st)
	s := custos.NewSubjectID()
	es := []custos.StoredEvent{
		event(s, at(0), messageHash(), "first value"),
		event(s, at(1), messageHash(), "second value"),
	}
	apply(t, st, &custos.Write{
		Tenant:   ten,
		Events:   es,
		Profiles: []custos.StoredProfile{{Subject: s, Value: []byte("profile value")}},
	})

	t.Run("event values", func(t *testing.T) {
		var kept []custos.StoredEvent
		err := st.Events(t.Context(), ten, s, nil, func(e custos.StoredEvent) (bool, error) {
			kept = append(kept, e)
			scribble(e.Value) // inside the callback
			return true, nil
		})
		if err != nil {
			t.Fatalf("Events(tenant %s, subject %s) = %v, want nil", ten, s, err)
		}
		checkEvents(t, st, ten, s, es)
		// And after the callback has returned.
		for _, e := range kept {
			scribble(e.Value)
		}
		checkEvents(t, st, ten, s, es)
	})
	t.Run("profile", func(t *testing.T) {
		p, err := st.Profile(t.Context(), ten, s)
		if err != nil {
			t.Fatalf("Profile(tenant %s, subject %s) = %v, want nil", ten, s, err)
		}
		scribble(p)
		checkProfile(t, st, ten, s, "profile value")
	})
	t.Run("tenant", func(t *testing.T) {
		want, err := st.Tenant(t.Context(), ten)
		if err != nil {
			t.Fatalf("Tenant(%s) = %v, want nil", ten, err)
		}
		saved := *want
		got, err := st.Tenant(t.Context(), ten)
		if err != nil {
			t.Fatalf("Tenant(%s) = %v, want nil", ten, err)
		}
		got.Name, got.Region, got.WriteKeyHash[0] = "changed", "changed", ^got.WriteKeyHash[0]
		checkTenant(t, st, &saved)
		list, err := st.Tenants(t.Context())
		if err != nil || len(list) != 1 {
			t.Fatalf("Tenants() = %d tenants, %v; want 1, nil", len(list), err)
		}
		list[0].Name, list[0].SecretKeyHash[0] = "changed", ^list[0].SecretKeyHash[0]
		checkTenant(t, st, &saved)
	})
}

// testInputNotRetained checks that a store keeps no reference to the
// caller's values once a write is applied and waited for, and none to a
// tenant once it is created or updated.
func testInputNotRetained(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	ten := newTenant(t, st)
	s := custos.NewSubjectID()
	e := event(s, at(0), messageHash(), "event value")
	w := &custos.Write{
		Tenant:   ten,
		Events:   []custos.StoredEvent{e},
		Profiles: []custos.StoredProfile{{Subject: s, Value: []byte("profile value")}},
	}
	apply(t, st, w)
	scribble(w.Events[0].Value)
	scribble(w.Profiles[0].Value)
	w.Events[0].Subject = custos.NewSubjectID()
	checkEvents(t, st, ten, s, []custos.StoredEvent{event(s, e.Time, e.ID, "event value")})
	checkProfile(t, st, ten, s, "profile value")

	ti := fullTenant(custos.NewTenantID(), "original")
	if err := st.CreateTenant(t.Context(), ti); err != nil {
		t.Fatalf("CreateTenant(%s) = %v, want nil", ti.ID, err)
	}
	saved := *ti
	ti.Name, ti.WriteKeyHash[0] = "changed", ^ti.WriteKeyHash[0]
	checkTenant(t, st, &saved)
}
