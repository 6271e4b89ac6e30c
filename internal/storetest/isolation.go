package storetest

import (
	"testing"
	"time"

	"github.com/custos-dev/custos"
)

// testTenantIsolation stores the same subject id, identifier hash, message
// hash and event key under two tenants, whose ids are neighbours, and
// checks that every read and every delete sees only its own tenant.
func testTenantIsolation(t *testing.T, open func(*testing.T) custos.Store) {
	for _, pair := range neighbourPairs() {
		t.Run(pair.name, func(t *testing.T) {
			st := open(t)
			ta, tb := custos.TenantID(pair.a), custos.TenantID(pair.b)
			createTenant(t, st, ta)
			createTenant(t, st, tb)

			s := custos.NewSubjectID() // the same subject id in both tenants
			sb := custos.NewSubjectID()
			h, m, id := identifierHash(), messageHash(), messageHash()
			ea := event(s, at(0), id, "tenant a")
			eb1 := event(s, at(0), id, "tenant b, same key as tenant a's event")
			eb2 := event(s, at(60), messageHash(), "tenant b, later")
			seenA := custos.Seen{ID: m, Subject: s, Time: at(0)}
			seenB := custos.Seen{ID: m, Subject: sb, Time: at(60)}
			apply(t, st,
				&custos.Write{
					Tenant: ta, Events: []custos.StoredEvent{ea},
					Profiles: []custos.StoredProfile{{Subject: s, Value: []byte("profile a")}},
					Links:    []custos.Link{{Hash: h, Subject: s}}, Seen: []custos.Seen{seenA},
				},
				&custos.Write{
					Tenant: tb, Events: []custos.StoredEvent{eb2, eb1},
					Profiles: []custos.StoredProfile{{Subject: s, Value: []byte("profile b")}},
					Links:    []custos.Link{{Hash: h, Subject: sb}}, Seen: []custos.Seen{seenB},
				},
			)
			checkA := func(t *testing.T) {
				t.Helper()
				checkEvents(t, st, ta, s, []custos.StoredEvent{ea})
				checkSpan(t, st, ta, s, []custos.StoredEvent{ea})
				checkProfile(t, st, ta, s, "profile a")
				checkSubject(t, st, ta, h, s)
				checkSeen(t, st, ta, seenA)
			}
			checkB := func(t *testing.T, events []custos.StoredEvent) {
				t.Helper()
				checkEvents(t, st, tb, s, events)
				checkSpan(t, st, tb, s, events)
				checkProfile(t, st, tb, s, "profile b")
				checkSubject(t, st, tb, h, sb)
				checkSeen(t, st, tb, seenB)
			}
			checkA(t)
			checkB(t, []custos.StoredEvent{eb1, eb2})

			// A tenant that holds nothing sees nothing of either.
			tc := custos.NewTenantID()
			createTenant(t, st, tc)
			checkEvents(t, st, tc, s, nil)
			checkSpan(t, st, tc, s, nil)
			checkNoProfile(t, st, tc, s)
			checkNoSubject(t, st, tc, h)
			checkNotSeen(t, st, tc, m)

			// Tenant b deletes the event whose key tenant a shares.
			apply(t, st, &custos.Write{Tenant: tb, DeleteEvents: []custos.StoredEvent{eb1}})
			checkA(t)
			checkB(t, []custos.StoredEvent{eb2})

			// Tenant a deletes, unlinks and unsees everything it has, then purges.
			apply(t, st, &custos.Write{
				Tenant: ta, DeleteSubjects: []custos.SubjectID{s},
				Unlinks: []custos.IdentifierHash{h}, Unsee: []custos.MessageHash{m},
			})
			if err := st.Purge(t.Context(), ta, s); err != nil {
				t.Fatalf("Purge(tenant %s, subject %s) = %v, want nil", ta, s, err)
			}
			checkErased(t, st, ta, s)
			checkNoSubject(t, st, ta, h)
			checkNotSeen(t, st, ta, m)
			checkB(t, []custos.StoredEvent{eb2})

			// And tenant b's later writes do not reappear under tenant a.
			eb3 := event(s, time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC), messageHash(), "tenant b, after a's erasure")
			apply(t, st, &custos.Write{Tenant: tb, Events: []custos.StoredEvent{eb3}})
			checkErased(t, st, ta, s)
			checkB(t, []custos.StoredEvent{eb3, eb2})
		})
	}
}
