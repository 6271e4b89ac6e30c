package storetest

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/custos-dev/custos"
)

// recipient returns a recipient with every field set and a random secret.
func recipient(ten custos.TenantID, id, name string, createdAt time.Time) *custos.Recipient {
	secret := make([]byte, 32)
	rand.Read(secret)
	return &custos.Recipient{
		ID:        id,
		Tenant:    ten,
		Name:      name,
		URL:       "https://" + strings.ReplaceAll(strings.ToLower(name), " ", "-") + ".example.test/custos?a=1&b=<2>",
		Region:    "eu-central",
		Secret:    secret,
		CreatedAt: createdAt,
		Kind:      custos.RecipientOpenDSR,
		Domain:    "dsr." + strings.ReplaceAll(strings.ToLower(name), " ", "-") + ".example.test",
		// Not a real certificate: a store keeps the bytes as given.
		CertificatePEM: []byte("-----BEGIN CERTIFICATE-----\n" + name + "\n-----END CERTIFICATE-----\n"),
	}
}

// recipientDiff lists the fields in which got differs from want.
func recipientDiff(got, want *custos.Recipient) []string {
	if got == nil {
		return []string{"recipient is nil"}
	}
	var d []string
	if got.Tenant != want.Tenant {
		d = append(d, fmt.Sprintf("Tenant %s, want %s", got.Tenant, want.Tenant))
	}
	for _, f := range []struct{ name, got, want string }{
		{"ID", got.ID, want.ID},
		{"Name", got.Name, want.Name},
		{"URL", got.URL, want.URL},
		{"Region", got.Region, want.Region},
		{"Kind", got.Kind, want.Kind},
		{"Domain", got.Domain, want.Domain},
		{"CertificatePEM", string(got.CertificatePEM), string(want.CertificatePEM)},
	} {
		if f.got != f.want {
			d = append(d, fmt.Sprintf("%s %q, want %q", f.name, f.got, f.want))
		}
	}
	if !bytes.Equal(got.Secret, want.Secret) {
		d = append(d, fmt.Sprintf("Secret %x, want %x", got.Secret, want.Secret))
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		d = append(d, fmt.Sprintf("CreatedAt %v, want %v", got.CreatedAt, want.CreatedAt))
	}
	return d
}

func recipientIDs(st []*custos.Recipient) string {
	ids := make([]string, len(st))
	for i, r := range st {
		ids[i] = "<nil>"
		if r != nil {
			ids[i] = r.ID
		}
	}
	return "[" + strings.Join(ids, " ") + "]"
}

func putRecipient(t *testing.T, st custos.RecipientStore, r *custos.Recipient) {
	t.Helper()
	if err := st.PutRecipient(t.Context(), r); err != nil {
		t.Fatalf("PutRecipient(tenant %s, %s) = %v, want nil", r.Tenant, r.ID, err)
	}
}

// checkRecipients checks that Recipients(ten) returns exactly want, in
// order.
func checkRecipients(t *testing.T, st custos.RecipientStore, ten custos.TenantID, want []*custos.Recipient) {
	t.Helper()
	what := fmt.Sprintf("Recipients(tenant %s)", ten)
	got, err := st.Recipients(t.Context(), ten)
	if err != nil {
		t.Errorf("%s = %v, want nil", what, err)
		return
	}
	if g, w := recipientIDs(got), recipientIDs(want); g != w {
		t.Errorf("%s:\ngot  %s\nwant %s", what, g, w)
		return
	}
	for i := range got {
		for _, d := range recipientDiff(got[i], want[i]) {
			t.Errorf("%s: recipient %s: %s", what, want[i].ID, d)
		}
	}
}

// checkDeleteRecipientMissing checks that deleting a recipient that is
// not there answers NotFound.
func checkDeleteRecipientMissing(t *testing.T, st custos.RecipientStore, ten custos.TenantID, id string) {
	t.Helper()
	err := st.DeleteRecipient(t.Context(), ten, id)
	if got := custos.ErrorCode(err); err == nil || got != custos.NotFound {
		t.Errorf("DeleteRecipient(tenant %s, %s) of an absent recipient = %v (code %s), want code %s", ten, id, err, got, custos.NotFound)
	}
}

func deleteRecipient(t *testing.T, st custos.RecipientStore, ten custos.TenantID, id string) {
	t.Helper()
	if err := st.DeleteRecipient(t.Context(), ten, id); err != nil {
		t.Fatalf("DeleteRecipient(tenant %s, %s) = %v, want nil", ten, id, err)
	}
}

func testRecipients(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	ten := newTenant(t, st)
	checkRecipients(t, st, ten, nil)

	// Ids sort against creation order, one id is a prefix of another, and
	// the puts follow neither order.
	zone := time.FixedZone("UTC-5", -5*60*60)
	r10 := recipient(ten, "rcp_10", "CRM", at(0).In(zone))
	r2 := recipient(ten, "rcp_2", "Mailer", at(1))
	r1 := recipient(ten, "rcp_1", "Warehouse", at(1).Add(time.Microsecond))
	for _, r := range []*custos.Recipient{r2, r1, r10} {
		putRecipient(t, st, r)
	}
	checkRecipients(t, st, ten, []*custos.Recipient{r10, r2, r1})

	// Replacing keeps one record, with every field new.
	r2new := recipient(ten, "rcp_2", "Mailer EU", at(2))
	r2new.Region = "eu-west"
	putRecipient(t, st, r2new)
	checkRecipients(t, st, ten, []*custos.Recipient{r10, r1, r2new})

	deleteRecipient(t, st, ten, "rcp_1")
	checkRecipients(t, st, ten, []*custos.Recipient{r10, r2new})
	checkDeleteRecipientMissing(t, st, ten, "rcp_1")
	checkDeleteRecipientMissing(t, st, ten, "rcp_never")
	checkDeleteRecipientMissing(t, st, ten, "rcp_")
	checkRecipients(t, st, ten, []*custos.Recipient{r10, r2new})
}

func testRecipientSecret(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	ten := newTenant(t, st)
	random := make([]byte, 64)
	rand.Read(random)
	tests := []struct {
		name   string
		secret []byte
	}{
		{"random bytes", random},
		{"zero and high bytes", []byte{0x00, 0xff, 0x00, 0x80, 0x7f}},
		{"not UTF-8", []byte{0xc3, 0x28, 0xa0, 0xa1}},
		{"text with quotes and a newline", []byte("\"s3cr3t\"\n")},
		{"one byte", []byte{0x00}},
	}
	var all []*custos.Recipient
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := recipient(ten, fmt.Sprintf("rcp_%d", i), tc.name, at(i))
			r.Secret = bytes.Clone(tc.secret)
			putRecipient(t, st, r)
			all = append(all, r)
			checkRecipients(t, st, ten, all)
		})
	}
}

// testRecipientIsolation keeps recipients under tenant ids that a store
// keying by id prefix could confuse, with one recipient id in both.
func testRecipientIsolation(t *testing.T, open func(*testing.T) custos.Store) {
	for _, pair := range neighbourPairs() {
		t.Run(pair.name, func(t *testing.T) {
			st := open(t)
			a, b := custos.TenantID(pair.a), custos.TenantID(pair.b)
			createTenant(t, st, a)
			createTenant(t, st, b)
			sharedA := recipient(a, "rcp_1", "CRM of a", at(0))
			onlyA := recipient(a, "rcp_only_a", "Mailer of a", at(1))
			sharedB := recipient(b, "rcp_1", "CRM of b", at(2))
			for _, r := range []*custos.Recipient{sharedA, sharedB, onlyA} {
				putRecipient(t, st, r)
			}
			checkRecipients(t, st, a, []*custos.Recipient{sharedA, onlyA})
			checkRecipients(t, st, b, []*custos.Recipient{sharedB})
			checkRecipients(t, st, custos.NewTenantID(), nil)

			checkDeleteRecipientMissing(t, st, b, onlyA.ID)
			deleteRecipient(t, st, b, sharedB.ID)
			checkRecipients(t, st, b, nil)
			checkRecipients(t, st, a, []*custos.Recipient{sharedA, onlyA})
		})
	}
}
