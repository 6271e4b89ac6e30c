package custos

import (
	"strings"
)

// IdentifierType is the kind of an identifier that resolves to a subject.
type IdentifierType uint8

// The identifier types, in order of precedence when resolving a message:
// a user id names a person most reliably, an anonymous id least.
const (
	UserID IdentifierType = iota + 1
	Email
	DeviceID
	AnonymousID
)

// IdentifierTypes lists every identifier type in order of precedence.
var IdentifierTypes = [...]IdentifierType{UserID, Email, DeviceID, AnonymousID}

// String returns the API name of the type, e.g. "user_id".
func (t IdentifierType) String() string {
	switch t {
	case UserID:
		return "user_id"
	case Email:
		return "email"
	case DeviceID:
		return "device_id"
	case AnonymousID:
		return "anonymous_id"
	}
	return "unknown"
}

// ParseIdentifierType returns the type with the given API name.
func ParseIdentifierType(s string) (IdentifierType, error) {
	for _, t := range IdentifierTypes {
		if t.String() == s {
			return t, nil
		}
	}
	return 0, Errorf(Invalid, "unknown identifier type %q (want user_id, anonymous_id, email or device_id)", s)
}

// Identifier is one identifier value of a subject.
type Identifier struct {
	Type  IdentifierType
	Value string
}

// Normalize returns the canonical form of the identifier: e-mail addresses
// are trimmed and lowercased; other identifiers are compared exactly.
func (id Identifier) Normalize() Identifier {
	if id.Type == Email {
		id.Value = NormalizeEmail(id.Value)
	}
	return id
}

// NormalizeEmail trims and lowercases an e-mail address.
func NormalizeEmail(s string) string {
	return strings.ToLower(strings.TrimSpace(s))
}

// IdentifierHash is a keyed hash (HMAC-SHA-256 with a tenant key) of a
// normalised identifier and its type. Stores index subjects by it, so no
// identifier is ever stored in plaintext as a key.
type IdentifierHash [32]byte

// MessageHash is a keyed hash of a message id, used to drop retried
// messages without storing the id in plaintext.
type MessageHash [16]byte

// MarshalText encodes the type by its API name.
func (t IdentifierType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText decodes an API name.
func (t *IdentifierType) UnmarshalText(b []byte) error {
	v, err := ParseIdentifierType(string(b))
	*t = v
	return err
}
