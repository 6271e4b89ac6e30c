package opendsr

import (
	"errors"
	"testing"

	"github.com/custos-dev/custos"
)

func TestIdentity(t *testing.T) {
	for _, tc := range []struct {
		typ, value string
		want       custos.Identifier
	}{
		{IdentityControllerCustomerID, "User-42", custos.Identifier{Type: custos.UserID, Value: "User-42"}},
		{IdentityEmail, " JohnDoe@Example.COM ", custos.Identifier{Type: custos.Email, Value: "johndoe@example.com"}},
		{IdentityAndroidAdvertisingID, "AAID-1", custos.Identifier{Type: custos.DeviceID, Value: "AAID-1"}},
		{IdentityIOSAdvertisingID, "IDFA-1", custos.Identifier{Type: custos.DeviceID, Value: "IDFA-1"}},
		{IdentityIOSVendorID, "IDFV-1", custos.Identifier{Type: custos.DeviceID, Value: "IDFV-1"}},
		{IdentityAndroidID, "aid-1", custos.Identifier{Type: custos.DeviceID, Value: "aid-1"}},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			got, err := Identity(SubjectIdentity{IdentityType: tc.typ, IdentityValue: tc.value, IdentityFormat: FormatRaw})
			if err != nil || got != tc.want {
				t.Errorf("Identity(%s %q) = %+v, %v; want %+v", tc.typ, tc.value, got, err, tc.want)
			}
		})
	}
}

// TestIdentityHashed checks that a sha256 e-mail names the e-mail hash
// index, and that other hashed identities, which Custos does not index,
// are refused as such.
func TestIdentityHashed(t *testing.T) {
	got, err := Identity(SubjectIdentity{IdentityType: IdentityEmail, IdentityValue: sha64, IdentityFormat: FormatSHA256})
	if want := (custos.Identifier{Type: custos.EmailSHA256, Value: sha64}); err != nil || got != want {
		t.Errorf("Identity(sha256 email) = %+v, %v; want %+v", got, err, want)
	}
	_, err = Identity(SubjectIdentity{IdentityType: IdentityControllerCustomerID, IdentityValue: sha64, IdentityFormat: FormatSHA256})
	var h *ErrHashedIdentity
	if !errors.As(err, &h) {
		t.Fatalf("Identity(sha256 controller_customer_id) error = %v, want *ErrHashedIdentity", err)
	}
	if h.Type != IdentityControllerCustomerID || h.SHA256 != sha64 {
		t.Errorf("ErrHashedIdentity = %+v, want type controller_customer_id and the hash", h)
	}
}

func TestIdentityRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		id   SubjectIdentity
	}{
		{"unknown type", SubjectIdentity{"roku_advertising_id", "x", FormatRaw}},
		{"unknown format", SubjectIdentity{IdentityEmail, "a@b.c", "md5"}},
		{"empty value", SubjectIdentity{IdentityControllerCustomerID, "", FormatRaw}},
		{"bad hash", SubjectIdentity{IdentityEmail, "abc", FormatSHA256}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Identity(tc.id)
			if got := custos.ErrorCode(err); got != custos.Invalid {
				t.Errorf("Identity(%+v) = %v, code %s; want code %s", tc.id, err, got, custos.Invalid)
			}
		})
	}
}
