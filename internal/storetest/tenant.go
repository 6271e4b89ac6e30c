package storetest

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/custos-dev/custos"
)

// fullTenant returns a tenant with every field set, times in a zone other
// than UTC so that only Equal, not ==, can compare them.
func fullTenant(id custos.TenantID, name string) *custos.Tenant {
	zone := time.FixedZone("UTC+2", 2*60*60)
	ten := &custos.Tenant{
		ID:            id,
		Name:          name,
		Region:        "eu-central",
		CreatedAt:     time.Date(2023, 3, 4, 5, 6, 7, 891011000, zone),
		KeysRotatedAt: time.Date(2024, 1, 2, 3, 4, 5, 678000, zone),
		RateLimits:    &custos.RateLimits{IngestPerSecond: 1500, IngestBurst: 3000.5, APIPerSecond: 7, APIBurst: 9},
	}
	rand.Read(ten.WriteKeyHash[:])
	rand.Read(ten.SecretKeyHash[:])
	return ten
}

// tenantDiff lists the fields in which got differs from want.
func tenantDiff(got, want *custos.Tenant) []string {
	if got == nil {
		return []string{"tenant is nil"}
	}
	var d []string
	if got.ID != want.ID {
		d = append(d, fmt.Sprintf("ID %s, want %s", got.ID, want.ID))
	}
	if got.Name != want.Name {
		d = append(d, fmt.Sprintf("Name %q, want %q", got.Name, want.Name))
	}
	if got.Region != want.Region {
		d = append(d, fmt.Sprintf("Region %q, want %q", got.Region, want.Region))
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		d = append(d, fmt.Sprintf("CreatedAt %v, want %v", got.CreatedAt, want.CreatedAt))
	}
	if got.WriteKeyHash != want.WriteKeyHash {
		d = append(d, fmt.Sprintf("WriteKeyHash %x, want %x", got.WriteKeyHash, want.WriteKeyHash))
	}
	if got.SecretKeyHash != want.SecretKeyHash {
		d = append(d, fmt.Sprintf("SecretKeyHash %x, want %x", got.SecretKeyHash, want.SecretKeyHash))
	}
	if !got.KeysRotatedAt.Equal(want.KeysRotatedAt) {
		d = append(d, fmt.Sprintf("KeysRotatedAt %v, want %v", got.KeysRotatedAt, want.KeysRotatedAt))
	}
	if (got.RateLimits == nil) != (want.RateLimits == nil) || got.RateLimits != nil && *got.RateLimits != *want.RateLimits {
		d = append(d, fmt.Sprintf("RateLimits %+v, want %+v", got.RateLimits, want.RateLimits))
	}
	return d
}

func checkTenant(t *testing.T, st custos.Store, want *custos.Tenant) {
	t.Helper()
	got, err := st.Tenant(t.Context(), want.ID)
	if err != nil {
		t.Errorf("Tenant(%s) = %v, want nil", want.ID, err)
		return
	}
	for _, d := range tenantDiff(got, want) {
		t.Errorf("Tenant(%s): %s", want.ID, d)
	}
}

func testTenantCreateGet(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	tests := []struct {
		name   string
		tenant *custos.Tenant
	}{
		{"every field set", fullTenant(custos.NewTenantID(), "Acme GmbH")},
		{"keys never rotated", &custos.Tenant{ID: custos.NewTenantID(), Name: "Fresh", Region: "eu", CreatedAt: at(0)}},
		{"zero key hashes and empty strings", &custos.Tenant{ID: custos.NewTenantID(), CreatedAt: at(1)}},
		{"unicode name", &custos.Tenant{ID: custos.NewTenantID(), Name: "Société Générale ✓ \"quoted\"", Region: "eu-west", CreatedAt: at(2)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := st.CreateTenant(t.Context(), tc.tenant); err != nil {
				t.Fatalf("CreateTenant(%s) = %v, want nil", tc.tenant.ID, err)
			}
			checkTenant(t, st, tc.tenant)
		})
	}
	missing := custos.NewTenantID()
	got, err := st.Tenant(t.Context(), missing)
	checkNotFound(t, fmt.Sprintf("Tenant(%s) of a tenant never created returned %v and", missing, got), err)
}

func testTenantCreateTwice(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	first := fullTenant(custos.NewTenantID(), "first")
	if err := st.CreateTenant(t.Context(), first); err != nil {
		t.Fatalf("CreateTenant(%s) = %v, want nil", first.ID, err)
	}
	second := fullTenant(first.ID, "second")
	err := st.CreateTenant(t.Context(), second)
	if got := custos.ErrorCode(err); err == nil || got != custos.Conflict {
		t.Errorf("CreateTenant(%s) of an existing id = %v (code %s), want code %s", first.ID, err, got, custos.Conflict)
	}
	// The refused create must not have replaced the first record.
	checkTenant(t, st, first)
}

func testTenantList(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	got, err := st.Tenants(t.Context())
	if err != nil || len(got) != 0 {
		t.Fatalf("Tenants() of an empty store = %d tenants, %v; want 0, nil", len(got), err)
	}
	// Ids whose order differs between signed and unsigned bytes, and the
	// extremes, inserted out of order.
	ids := []custos.TenantID{
		custos.TenantID(withLast(filled(0x80), 0x00)),
		custos.TenantID(filled(0xff)),
		custos.NewTenantID(),
		custos.TenantID(filled(0x00)),
		custos.TenantID(filled(0x7f)),
		custos.TenantID(withLast(filled(0x80), 0x01)),
		custos.NewTenantID(),
	}
	want := make([]*custos.Tenant, len(ids))
	for i, id := range ids {
		want[i] = fullTenant(id, fmt.Sprintf("tenant %d", i))
		if err := st.CreateTenant(t.Context(), want[i]); err != nil {
			t.Fatalf("CreateTenant(%s) = %v, want nil", id, err)
		}
	}
	slices.SortFunc(want, func(a, b *custos.Tenant) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	got, err = st.Tenants(t.Context())
	if err != nil {
		t.Fatalf("Tenants() = %v, want nil", err)
	}
	if len(got) != len(want) {
		t.Fatalf("Tenants() returned %d tenants, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] == nil || got[i].ID != want[i].ID {
			t.Errorf("Tenants()[%d] is not tenant %s: the list must be ordered by id", i, want[i].ID)
			continue
		}
		for _, d := range tenantDiff(got[i], want[i]) {
			t.Errorf("Tenants()[%d]: %s", i, d)
		}
	}
}

func testTenantUpdateMissing(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	newTenant(t, st) // a store that is not empty
	ten := fullTenant(custos.NewTenantID(), "ghost")
	err := st.UpdateTenant(t.Context(), ten)
	if got := custos.ErrorCode(err); err == nil || got != custos.NotFound {
		t.Errorf("UpdateTenant(%s) of a tenant never created = %v (code %s), want code %s", ten.ID, err, got, custos.NotFound)
	}
	_, err = st.Tenant(t.Context(), ten.ID)
	checkNotFound(t, fmt.Sprintf("Tenant(%s) after a refused update", ten.ID), err)
}

func testTenantUpdateRoundTrip(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	other := fullTenant(custos.NewTenantID(), "bystander")
	before := &custos.Tenant{ID: custos.NewTenantID(), Name: "before", Region: "eu", CreatedAt: at(0)}
	for _, ten := range []*custos.Tenant{other, before} {
		if err := st.CreateTenant(t.Context(), ten); err != nil {
			t.Fatalf("CreateTenant(%s) = %v, want nil", ten.ID, err)
		}
	}
	// Every field changes, including the key hashes and a zero time that
	// becomes set.
	after := fullTenant(before.ID, "after")
	if err := st.UpdateTenant(t.Context(), after); err != nil {
		t.Fatalf("UpdateTenant(%s) = %v, want nil", after.ID, err)
	}
	checkTenant(t, st, after)
	checkTenant(t, st, other)

	// And back: a set time becomes zero again.
	again := &custos.Tenant{ID: before.ID, Name: "again", Region: "eu-north", CreatedAt: at(5), WriteKeyHash: after.SecretKeyHash}
	if err := st.UpdateTenant(t.Context(), again); err != nil {
		t.Fatalf("UpdateTenant(%s) = %v, want nil", again.ID, err)
	}
	checkTenant(t, st, again)

	list, err := st.Tenants(t.Context())
	if err != nil {
		t.Fatalf("Tenants() = %v, want nil", err)
	}
	if len(list) != 2 {
		t.Fatalf("Tenants() after updates returned %d tenants, want 2", len(list))
	}
	for _, got := range list {
		if got == nil {
			t.Fatal("Tenants() returned a nil tenant")
		}
		want := other
		if got.ID == again.ID {
			want = again
		}
		for _, d := range tenantDiff(got, want) {
			t.Errorf("Tenants() entry %s: %s", want.ID, d)
		}
	}
}
