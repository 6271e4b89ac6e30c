package custos

import (
	"crypto/rand"
	"encoding/hex"
)

// TenantID names a tenant. It is random, so it reveals nothing.
type TenantID [16]byte

// SubjectID names a data subject inside a tenant. It is a random
// pseudonym: it carries no personal data by itself.
type SubjectID [16]byte

// NewTenantID returns a fresh random TenantID.
func NewTenantID() TenantID { var id TenantID; rand.Read(id[:]); return id }

// NewSubjectID returns a fresh random SubjectID.
func NewSubjectID() SubjectID { var id SubjectID; rand.Read(id[:]); return id }

func (id TenantID) String() string  { return hex.EncodeToString(id[:]) }
func (id SubjectID) String() string { return hex.EncodeToString(id[:]) }

// MarshalText encodes the ID as lowercase hex.
func (id TenantID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// MarshalText encodes the ID as lowercase hex.
func (id SubjectID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText decodes a hex TenantID.
func (id *TenantID) UnmarshalText(b []byte) error { return parseID(id[:], b, "tenant id") }

// UnmarshalText decodes a hex SubjectID.
func (id *SubjectID) UnmarshalText(b []byte) error { return parseID(id[:], b, "subject id") }

// ParseTenantID decodes the hex form of a TenantID.
func ParseTenantID(s string) (TenantID, error) {
	var id TenantID
	return id, id.UnmarshalText([]byte(s))
}

// ParseSubjectID decodes the hex form of a SubjectID.
func ParseSubjectID(s string) (SubjectID, error) {
	var id SubjectID
	return id, id.UnmarshalText([]byte(s))
}

func parseID(dst, b []byte, what string) error {
	if len(b) != 2*len(dst) {
		return Errorf(Invalid, "%s must be %d hex characters", what, 2*len(dst))
	}
	if _, err := hex.Decode(dst, b); err != nil {
		return Errorf(Invalid, "%s must be hex", what)
	}
	return nil
}
