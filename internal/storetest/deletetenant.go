package storetest

import (
	"fmt"
	"testing"

	"github.com/custos-dev/custos"
)

func testDeleteTenantMissing(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	kept := newTenant(t, st)
	missing := custos.NewTenantID()
	err := st.DeleteTenant(t.Context(), missing)
	if got := custos.ErrorCode(err); err == nil || got != custos.NotFound {
		t.Errorf("DeleteTenant(%s) of a tenant never created = %v (code %s), want code %s", missing, err, got, custos.NotFound)
	}
	if _, err := st.Tenant(t.Context(), kept); err != nil {
		t.Errorf("Tenant(%s) after a refused DeleteTenant = %v, want nil", kept, err)
	}
}

// testDeleteTenant deletes one of two tenants whose ids are neighbours,
// both holding every kind of record under the same subject ids and hashes,
// and checks that the deleted one is gone entirely and the other untouched.
func testDeleteTenant(t *testing.T, open func(*testing.T) custos.Store) {
	for _, pair := range neighbourPairs() {
		t.Run(pair.name, func(t *testing.T) {
			ids := [2]custos.TenantID{custos.TenantID(pair.a), custos.TenantID(pair.b)}
			for _, del := range []int{0, 1} {
				keep := 1 - del
				t.Run(fmt.Sprintf("delete %c keep %c", 'a'+del, 'a'+keep), func(t *testing.T) {
					st := open(t)
					s := custos.NewSubjectID()
					var data [2]subjectData
					var records [2]*custos.Tenant
					for i, id := range ids {
						records[i] = fullTenant(id, fmt.Sprintf("tenant %c", 'a'+i))
						if err := st.CreateTenant(t.Context(), records[i]); err != nil {
							t.Fatalf("CreateTenant(%s) = %v, want nil", id, err)
						}
						data[i] = populate(t, st, id, s, fmt.Sprintf("tenant %c", 'a'+i))
					}
					// The same link and dedup hashes in both tenants too.
					apply(t, st,
						&custos.Write{Tenant: ids[0], Links: []custos.Link{{Hash: data[1].link, Subject: s}}, Seen: []custos.Seen{data[1].seen[0]}},
						&custos.Write{Tenant: ids[1], Links: []custos.Link{{Hash: data[0].link, Subject: s}}, Seen: []custos.Seen{data[0].seen[0]}},
					)

					gone := ids[del]
					if err := st.DeleteTenant(t.Context(), gone); err != nil {
						t.Fatalf("DeleteTenant(%s) = %v, want nil", gone, err)
					}
					_, err := st.Tenant(t.Context(), gone)
					checkNotFound(t, fmt.Sprintf("Tenant(%s) after DeleteTenant", gone), err)
					checkErased(t, st, gone, s)
					for _, d := range data {
						checkNoSubject(t, st, gone, d.link)
						for _, sn := range d.seen {
							checkNotSeen(t, st, gone, sn.ID)
						}
					}
					want := map[tenantSeen]bool{}
					for _, sn := range append(data[keep].seen, data[del].seen[0]) {
						want[newTenantSeen(ids[keep], sn)] = true
					}
					checkEachSeen(t, st, want)

					checkTenant(t, st, records[keep])
					checkIntact(t, st, data[keep])
					checkSubject(t, st, ids[keep], data[del].link, s)
					list, err := st.Tenants(t.Context())
					if err != nil || len(list) != 1 || list[0] == nil || list[0].ID != ids[keep] {
						t.Errorf("Tenants() after DeleteTenant(%s) = %d tenants, %v; want only %s", gone, len(list), err, ids[keep])
					}

					err = st.DeleteTenant(t.Context(), gone)
					if got := custos.ErrorCode(err); err == nil || got != custos.NotFound {
						t.Errorf("DeleteTenant(%s) a second time = %v (code %s), want code %s", gone, err, got, custos.NotFound)
					}

					// Created again, the tenant starts empty.
					createTenant(t, st, gone)
					checkErased(t, st, gone, s)
					checkNoSubject(t, st, gone, data[del].link)
					checkNotSeen(t, st, gone, data[del].seen[0].ID)
					checkIntact(t, st, data[keep])
				})
			}
		})
	}
}
