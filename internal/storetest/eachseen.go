package storetest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/custos-dev/custos"
)

// tenantSeen is one record as EachSeen reports it; Time is kept as an
// instant so that records compare with ==.
type tenantSeen struct {
	tenant  custos.TenantID
	id      custos.MessageHash
	subject custos.SubjectID
	nanos   int64
}

func newTenantSeen(ten custos.TenantID, sn custos.Seen) tenantSeen {
	return tenantSeen{ten, sn.ID, sn.Subject, sn.Time.UnixNano()}
}

func (r tenantSeen) String() string {
	return fmt.Sprintf("{tenant %s id %x subject %s time %d}", r.tenant, r.id[:], r.subject, r.nanos)
}

// checkEachSeen checks that EachSeen reports every record in want exactly
// once and nothing else, in any order.
func checkEachSeen(t *testing.T, st custos.Store, want map[tenantSeen]bool) {
	t.Helper()
	got := map[tenantSeen]int{}
	err := st.EachSeen(t.Context(), func(ten custos.TenantID, sn custos.Seen) error {
		got[newTenantSeen(ten, sn)]++
		return nil
	})
	if err != nil {
		t.Fatalf("EachSeen = %v, want nil", err)
	}
	for r, n := range got {
		switch {
		case !want[r]:
			t.Errorf("EachSeen reported %s %d times, want 0", r, n)
		case n != 1:
			t.Errorf("EachSeen reported %s %d times, want 1", r, n)
		}
	}
	for r := range want {
		if got[r] == 0 {
			t.Errorf("EachSeen did not report %s", r)
		}
	}
}

func testEachSeen(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	checkEachSeen(t, st, nil)

	// Tenants at the edges of the id space and one between, each with
	// every other kind of record too, which EachSeen must not report.
	tenants := []custos.TenantID{
		custos.TenantID(filled(0x00)), custos.NewTenantID(), custos.TenantID(filled(0xff)),
		custos.TenantID(withLast(filled(0xff), 0xfe)),
	}
	want := map[tenantSeen]bool{}
	shared := messageHash() // the same hash in every tenant
	var sharedOf, unseen []tenantSeen
	for i, ten := range tenants {
		createTenant(t, st, ten)
		s := custos.NewSubjectID()
		seen := []custos.Seen{
			{ID: shared, Subject: s, Time: at(i)},
			{ID: custos.MessageHash(filled(0x00)), Subject: s, Time: at(-i)},
			{ID: custos.MessageHash(filled(0xff)), Subject: s, Time: at(100 + i)},
			{ID: messageHash(), Subject: custos.NewSubjectID(), Time: at(1000)},
		}
		apply(t, st, &custos.Write{
			Tenant:   ten,
			Events:   []custos.StoredEvent{event(s, at(0), messageHash(), "event")},
			Profiles: []custos.StoredProfile{{Subject: s, Value: []byte("profile")}},
			Links:    []custos.Link{{Hash: identifierHash(), Subject: s}},
			Seen:     seen,
		})
		for _, sn := range seen {
			want[newTenantSeen(ten, sn)] = true
		}
		sharedOf = append(sharedOf, newTenantSeen(ten, seen[0]))
		unseen = append(unseen, newTenantSeen(ten, seen[3]))
	}
	checkEachSeen(t, st, want)

	// Unseen records are no longer reported; replaced ones are reported as
	// they are now.
	replaced := custos.Seen{ID: shared, Subject: custos.NewSubjectID(), Time: at(5000)}
	delete(want, sharedOf[1])
	want[newTenantSeen(tenants[1], replaced)] = true
	apply(t, st, &custos.Write{Tenant: tenants[1], Seen: []custos.Seen{replaced}})
	for _, r := range unseen {
		apply(t, st, &custos.Write{Tenant: r.tenant, Unsee: []custos.MessageHash{r.id}})
		delete(want, r)
	}
	checkEachSeen(t, st, want)

	t.Run("error stops", func(t *testing.T) {
		errStop := errors.New("storetest: stop here")
		for _, n := range []int{1, 2, len(want)} {
			calls := 0
			err := st.EachSeen(t.Context(), func(custos.TenantID, custos.Seen) error {
				calls++
				if calls == n {
					return errStop
				}
				return nil
			})
			if !errors.Is(err, errStop) || calls != n {
				t.Errorf("EachSeen with fn failing at call %d called fn %d times and returned %v; want %d and %v", n, calls, err, n, errStop)
			}
		}
	})
}
