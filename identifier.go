package custos

import (
	"crypto/sha256"
	"encoding/hex"
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
	// EmailSHA256 is the lowercase hex SHA-256 of a normalised e-mail
	// address. It is never sent; every e-mail identifier is also indexed
	// under it, so a controller can name a person by a hashed address
	// (OpenDSR's sha256 format) without Custos storing the address as a key.
	EmailSHA256
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
	case EmailSHA256:
		return "email_sha256"
	}
	return "unknown"
}

// ParseIdentifierType returns the type with the given API name.
func ParseIdentifierType(s string) (IdentifierType, error) {
	for _, t := range append(IdentifierTypes[:], EmailSHA256) {
		if t.String() == s {
			return t, nil
		}
	}
	return 0, Errorf(Invalid, "unknown identifier type %q (want user_id, anonymous_id, email, device_id or email_sha256)", s)
}

// Identifier is one identifier value of a subject.
type Identifier struct {
	Type  IdentifierType
	Value string
}

// Normalize returns the canonical form of the identifier: e-mail addresses
// are trimmed and lowercased; other identifiers are compared exactly.
func (id Identifier) Normalize() Identifier {
	switch id.Type {
	case Email:
		id.Value = NormalizeEmail(id.Value)
	case EmailSHA256:
		id.Value = strings.ToLower(strings.TrimSpace(id.Value))
	}
	return id
}

// Derived returns the identifiers indexed alongside id: for an e-mail
// address, its SHA-256; none for the others.
func (id Identifier) Derived() (Identifier, bool) {
	if id.Type != Email {
		return Identifier{}, false
	}
	sum := sha256.Sum256([]byte(NormalizeEmail(id.Value)))
	return Identifier{Type: EmailSHA256, Value: hex.EncodeToString(sum[:])}, true
}

// WithDerived returns ids followed by the identifiers derived from them:
// every identifier under which ingestion indexes a subject that has ids.
func WithDerived(ids []Identifier) []Identifier {
	out := ids[:len(ids):len(ids)]
	for _, id := range ids {
		if d, ok := id.Derived(); ok {
			out = append(out, d)
		}
	}
	return out
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
