package opendsr

import (
	"github.com/custos-dev/custos"
)

// ErrHashedIdentity is returned by Identity for an identity given as a
// SHA-256 hash (format sha256) of a type Custos does not index hashed:
// only e-mail addresses are (as custos.EmailSHA256), so a hashed user id or
// device id cannot be found and the caller refuses it.
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
// ids to a device id. A sha256 e-mail maps to custos.EmailSHA256 (the hex
// SHA-256 of the trimmed, lowercased address); any other sha256 identity
// returns *ErrHashedIdentity; an unknown type or format returns a
// custos.Error with code Invalid.
func Identity(i SubjectIdentity) (custos.Identifier, error) {
	switch i.IdentityFormat {
	case FormatRaw:
	case FormatSHA256:
		if !isSHA256Hex(i.IdentityValue) {
			return custos.Identifier{}, custos.Errorf(custos.Invalid, "%s identity is not 64 lowercase hex characters", i.IdentityType)
		}
		if i.IdentityType == IdentityEmail {
			// Ingestion indexes every e-mail address under its SHA-256 too.
			return custos.Identifier{Type: custos.EmailSHA256, Value: i.IdentityValue}, nil
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
