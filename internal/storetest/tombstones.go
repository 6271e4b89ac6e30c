package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/custos-dev/custos"
)

// tombstoneKey names one tombstone in a walk: its tenant and hash.
type tombstoneKey struct {
	tenant custos.TenantID
	hash   custos.IdentifierHash
}

// eachTombstone walks every tombstone of st.
func eachTombstone(t *testing.T, st custos.Store) map[tombstoneKey]custos.Tombstone {
	t.Helper()
	got := map[tombstoneKey]custos.Tombstone{}
	err := st.EachTombstone(t.Context(), func(ten custos.TenantID, r custos.TombstoneRecord) error {
		k := tombstoneKey{ten, r.Hash}
		if _, dup := got[k]; dup {
			return fmt.Errorf("tombstone %s/%x given twice", ten, r.Hash[:4])
		}
		got[k] = r.Tombstone
		return nil
	})
	if err != nil {
		t.Fatalf("EachTombstone = %v, want nil", err)
	}
	return got
}

// checkTombstones checks that st holds exactly want.
func checkTombstones(t *testing.T, st custos.Store, want map[tombstoneKey]custos.Tombstone) {
	t.Helper()
	got := eachTombstone(t, st)
	format := func(m map[tombstoneKey]custos.Tombstone) string {
		var s []string
		for k, v := range m {
			s = append(s, fmt.Sprintf("%s/%x:%s,%v", k.tenant, k.hash[:4], v.ErasedAt.Format("15:04:05.000000"), v.Suppress))
		}
		slices.Sort(s)
		return "[" + strings.Join(s, " ") + "]"
	}
	same := len(got) == len(want)
	for k, w := range want {
		g, ok := got[k]
		same = same && ok && g.ErasedAt.Equal(w.ErasedAt) && g.Suppress == w.Suppress
	}
	if !same {
		t.Errorf("EachTombstone gave %s, want %s", format(got), format(want))
	}
}

// testTombstones: tombstones written with Write.Tombstones come back from
// EachTombstone with their tenant, hash, time and suppress flag; a later
// tombstone for the same hash replaces the earlier one (within one write
// too); tenants with neighbouring ids and the same hashes stay apart; a
// deleted tenant's tombstones go with it; fn's error stops the walk and is
// returned.
func testTombstones(t *testing.T, open func(*testing.T) custos.Store) {
	t.Run("empty store", func(t *testing.T) {
		st := open(t)
		newTenant(t, st)
		checkTombstones(t, st, nil)
	})
	for _, pair := range neighbourPairs() {
		t.Run(pair.name, func(t *testing.T) {
			st := open(t)
			a, b := custos.TenantID(pair.a), custos.TenantID(pair.b)
			createTenant(t, st, a)
			createTenant(t, st, b)
			h1, h2 := identifierHash(), identifierHash()
			t1 := custos.Tombstone{ErasedAt: at(10).Add(123456 * 1000)}
			t2 := custos.Tombstone{ErasedAt: at(20), Suppress: true}
			apply(t, st,
				&custos.Write{Tenant: a, Tombstones: []custos.TombstoneRecord{{Hash: h1, Tombstone: t1}, {Hash: h2, Tombstone: t2}}},
				&custos.Write{Tenant: b, Tombstones: []custos.TombstoneRecord{{Hash: h1, Tombstone: t2}}},
			)
			want := map[tombstoneKey]custos.Tombstone{{a, h1}: t1, {a, h2}: t2, {b, h1}: t2}
			checkTombstones(t, st, want)

			// A later erasure of the same identifier replaces the
			// tombstone; in one write, the last one wins.
			t3 := custos.Tombstone{ErasedAt: at(30), Suppress: true}
			t4 := custos.Tombstone{ErasedAt: at(40)}
			apply(t, st, &custos.Write{Tenant: a, Tombstones: []custos.TombstoneRecord{{Hash: h1, Tombstone: t3}, {Hash: h1, Tombstone: t4}}})
			want[tombstoneKey{a, h1}] = t4
			checkTombstones(t, st, want)

			if err := st.DeleteTenant(t.Context(), a); err != nil {
				t.Fatalf("DeleteTenant(%s) = %v, want nil", a, err)
			}
			checkTombstones(t, st, map[tombstoneKey]custos.Tombstone{{b, h1}: t2})
		})
	}
	t.Run("error stops the walk", func(t *testing.T) {
		st := open(t)
		ten := newTenant(t, st)
		var recs []custos.TombstoneRecord
		for i := range 5 {
			recs = append(recs, custos.TombstoneRecord{Hash: identifierHash(), Tombstone: custos.Tombstone{ErasedAt: at(i)}})
		}
		apply(t, st, &custos.Write{Tenant: ten, Tombstones: recs})
		stop := errors.New("stop")
		calls := 0
		err := st.EachTombstone(t.Context(), func(custos.TenantID, custos.TombstoneRecord) error {
			calls++
			if calls == 2 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || calls != 2 {
			t.Errorf("EachTombstone with fn failing on the 2nd call = %v after %d calls, want the error after 2", err, calls)
		}
	})
}
