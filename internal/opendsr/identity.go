package opendsr

import (
	"github.com/custos-dev/custos"
)

// ErrHashedIdentity is returned by Identity for an identity given as a
// SHA-256 hash (format sha256). Custos indexes subjects by a keyed hash of
// each identifier, not by its plain SHA-256, so such an identity cannot be
// resolved like a raw one: the caller matches it, with errors.As, and
// looks SHA256 up in a separate index of unkeyed SHA-256 hashes (of
// normalised e-mail addresses, for Type email). That index is not part of
// this package; until it exists the caller should refuse the identity.
type ErrHashedIdentity struct {
	// Type is the OpenDSR identity type, e.g. "email".
	Type string
	// SHA256 is the lowercase hex hash as the controller sent it.
	SHA256 string
}

// Error names the identity type, never the hash: a hash of an e-mail
// address is still personal data.
func (e *ErrHashedIdentity) Error() string {
	return "opendsr: " + e.Type + " identity is a sha256 hash; match it through the hash index"
}

// Identity maps a validated request identity onto the Custos identifier it
// names: controller_customer_id to a user id, a raw e-mail address to a
// normalised e-mail identifier, and the four mobile advertising and device
// ids to a device id. A sha256 identity returns *ErrHashedIdentity; an
// unknown type or format returns a custos.Error with code Invalid.
func Identity(i SubjectIdentity) (custos.Identifier, error) {
	switch i.IdentityFormat {
	case FormatRaw:
	case FormatSHA256:
		if !isSHA256Hex(i.IdentityValue) {
			return custos.Identifier{}, custos.Errorf(custos.Invalid, "%s identity is not 64 lowercase hex characters", i.IdentityType)
		}
		return custos.Identifier{}, &ErrHashedIdentity{Type: i.IdentityType, SHA256: i.IdentityValue}
	default:
		return custos.Identifier{}, custos.Errorf(custos.Invalid, "identity format %q is not supported", clip(i.IdentityFormat))
	}
	if i.IdentityValue == "" {
		return custos.Identifier{}, custos.Errorf(custos.Invalid, "%s identity has no value", clip(i.IdentityType))
	}
	var t custos.IdentifierType
	switch i.IdentityType {
	case IdentityControllerCustomerID:
		t = custos.UserID
	case IdentityEmail:
		t = custos.Email
	case IdentityAndroidAdvertisingID, IdentityIOSAdvertisingID, IdentityIOSVendorID, IdentityAndroidID:
		// Ingestion (internal/segment) records a device's advertising id
		// and its device id alike as a DeviceID.
		t = custos.DeviceID
	default:
		return custos.Identifier{}, custos.Errorf(custos.Invalid, "identity type %q is not supported", clip(i.IdentityType))
	}
	return custos.Identifier{Type: t, Value: i.IdentityValue}.Normalize(), nil
}
