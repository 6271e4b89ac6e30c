package pebble

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/custos-dev/custos"
)

// v1EventKey is an event key as version 1 of the layout wrote it.
func v1EventKey(t custos.TenantID, s custos.SubjectID, at time.Time, id custos.MessageHash) []byte {
	k := append(subjectPrefix(nil, t, s), v1SubEvent)
	k = sortableTime(k, at)
	return append(k, id[:]...)
}

func TestMigrateFromSubjectOrderedLayout(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// A store as the previous build left it: no layout marker, events
	// under their subjects, a profile beside them.
	opts := dbOptions(Options{})
	db, err := pebble.Open(dir, opts)
	opts.Cache.Unref()
	if err != nil {
		t.Fatal(err)
	}
	tenants := []custos.TenantID{custos.NewTenantID(), custos.NewTenantID()}
	subjects := []custos.SubjectID{custos.NewSubjectID(), custos.NewSubjectID(), custos.NewSubjectID()}
	times := []time.Time{
		time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2024, 6, 1, 23, 0, 0, 0, time.UTC),
		time.Date(2026, 3, 5, 10, 0, 0, 0, time.UTC),
	}
	want := map[subjectRef][]custos.StoredEvent{}
	for _, tn := range tenants {
		for _, s := range subjects {
			for _, at := range times {
				var id custos.MessageHash
				rand.Read(id[:])
				v := fmt.Appendf(nil, "sealed %s %s %s", tn, s, at)
				if err := db.Set(v1EventKey(tn, s, at, id), v, nil); err != nil {
					t.Fatal(err)
				}
				want[subjectRef{tn, s}] = append(want[subjectRef{tn, s}], custos.StoredEvent{Subject: s, Time: at, ID: id, Value: v})
			}
			if err := db.Set(profileKey(nil, tn, s), []byte("profile"), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	_, err = Open(dir, Options{})
	if !errors.Is(err, ErrOldLayout) || !strings.Contains(err.Error(), "custos migrate") {
		t.Fatalf("Open of a version 1 store = %v, want ErrOldLayout naming custos migrate", err)
	}
	var out bytes.Buffer
	if err := Migrate(dir, Options{}, &out); err != nil {
		t.Fatalf("Migrate = %v, want nil", err)
	}
	if n := len(tenants) * len(subjects) * len(times); !strings.Contains(out.String(), fmt.Sprintf("migrated %d events", n)) {
		t.Errorf("Migrate printed %q, want it to report %d events migrated", out.String(), n)
	}

	st, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open after Migrate = %v, want nil", err)
	}
	for ref, evs := range want {
		var got []custos.StoredEvent
		if err := st.Events(ctx, ref.t, ref.s, nil, func(e custos.StoredEvent) (bool, error) {
			got = append(got, e)
			return true, nil
		}); err != nil {
			t.Fatal(err)
		}
		if !slices.EqualFunc(got, evs, func(a, b custos.StoredEvent) bool {
			return a.Subject == b.Subject && a.Time.Equal(b.Time) && a.ID == b.ID && bytes.Equal(a.Value, b.Value)
		}) {
			t.Errorf("events of %s/%s after migration = %d events %v, want %d in order", ref.t, ref.s, len(got), got, len(evs))
		}
		first, last, ok, err := st.EventSpan(ctx, ref.t, ref.s)
		if err != nil || !ok || !first.Equal(times[0]) || !last.Equal(times[len(times)-1]) {
			t.Errorf("EventSpan(%s) = %v, %v, %v, %v; want %v, %v", ref.s, first, last, ok, err, times[0], times[len(times)-1])
		}
		if p, err := st.Profile(ctx, ref.t, ref.s); err != nil || string(p) != "profile" {
			t.Errorf("Profile(%s) after migration = %q, %v; want the profile", ref.s, p, err)
		}
	}
	// No key of the old layout is left.
	it, err := st.db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) == v1EventKeyLen && k[0] == prefixData && k[tenantPrefixLen] == kindSubject && k[subjectPrefixLen] == v1SubEvent {
			t.Errorf("version 1 event key %x left after migration", k)
		}
	}
	it.Close()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := Migrate(dir, Options{}, &out); err != nil || !strings.Contains(out.String(), "already") {
		t.Errorf("second Migrate = %v, printed %q; want nil and 'already'", err, out.String())
	}
}

func TestNewStoreIsMarkedCurrent(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Written in the current layout, it must reopen without migration.
	if _, err := st.Apply(context.Background(), []*custos.Write{{Tenant: custos.NewTenantID(),
		Events: []custos.StoredEvent{{Subject: custos.NewSubjectID(), Time: time.Now(), Value: []byte("x")}}}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = Open(dir, Options{})
	if err != nil {
		t.Fatalf("reopen of a current store = %v, want nil", err)
	}
	st.Close()
}

// TestDeleteTenantRemovesItsEventsInEveryDay: a tenant's events lie
// outside its key range, one span per day; deleting the tenant removes
// every one of them and leaves another tenant's alone. The storage
// contract cannot see this (the day index goes with the tenant's range),
// so the keys are looked at directly.
func TestDeleteTenantRemovesItsEventsInEveryDay(t *testing.T) {
	ctx := context.Background()
	st, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	gone, kept := &custos.Tenant{ID: custos.NewTenantID(), Name: "gone"}, &custos.Tenant{ID: custos.NewTenantID(), Name: "kept"}
	for _, tn := range []*custos.Tenant{gone, kept} {
		if err := st.CreateTenant(ctx, tn); err != nil {
			t.Fatal(err)
		}
		w := &custos.Write{Tenant: tn.ID}
		for _, at := range []time.Time{time.Date(1969, 7, 20, 0, 0, 0, 0, time.UTC), time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), time.Now()} {
			w.Events = append(w.Events, custos.StoredEvent{Subject: custos.NewSubjectID(), Time: at, Value: []byte("sealed")})
		}
		wait, err := st.Apply(ctx, []*custos.Write{w})
		if err != nil {
			t.Fatal(err)
		}
		if err := wait(); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.DeleteTenant(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	count := map[custos.TenantID]int{}
	it, err := st.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixEvent}, UpperBound: []byte{prefixEvent + 1}})
	if err != nil {
		t.Fatal(err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		count[custos.TenantID(it.Key()[1+dayLen:1+dayLen+16])]++
	}
	it.Close()
	if count[gone.ID] != 0 || count[kept.ID] != 3 {
		t.Errorf("event keys after DeleteTenant: %d of the deleted tenant, %d of the other; want 0 and 3", count[gone.ID], count[kept.ID])
	}
}
