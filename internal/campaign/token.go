package campaign

import (
	"encoding/base64"

	"github.com/custos-dev/custos"
)

// An unsubscribe token is a capability: whoever holds it may withdraw one
// subject's consent to one purpose on one channel, and nothing else. It
// is the tenant id followed by the subject, channel and purpose sealed
// (AES-256-GCM) under a key derived from the tenant key, so it cannot be
// forged or altered, reveals nothing but the tenant's random id, and dies
// with the tenant. Tokens carry no expiry: an unsubscribe link must keep
// working for as long as the mail may be read.

var tokenRecord = []byte("campaign/unsubscribe")

// Unsubscribe is what a token names.
type Unsubscribe struct {
	Tenant  custos.TenantID
	Subject custos.SubjectID
	Purpose string
	Channel string
}

// Sealer seals records that belong to a tenant (keyring.Ring).
type Sealer interface {
	SealTenant(t custos.TenantID, recordKey, plaintext []byte) ([]byte, error)
	OpenTenant(t custos.TenantID, recordKey, sealed []byte) ([]byte, error)
}

// NewToken returns the unsubscribe token for u.
func NewToken(s Sealer, u Unsubscribe) (string, error) {
	if len(u.Channel) > 255 {
		return "", custos.Errorf(custos.Invalid, "channel name too long")
	}
	plain := make([]byte, 0, 16+1+len(u.Channel)+len(u.Purpose))
	plain = append(plain, u.Subject[:]...)
	plain = append(plain, byte(len(u.Channel)))
	plain = append(plain, u.Channel...)
	plain = append(plain, u.Purpose...)
	sealed, err := s.SealTenant(u.Tenant, tokenRecord, plain)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(append(u.Tenant[:], sealed...)), nil
}

// errBadToken is the one answer to every token that does not open: it
// says nothing of why.
var errBadToken = custos.Errorf(custos.NotFound, "this unsubscribe link is not valid")

// ParseToken opens a token made by NewToken.
func ParseToken(s Sealer, token string) (Unsubscribe, error) {
	var u Unsubscribe
	if len(token) > 1024 {
		return u, errBadToken
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) <= 16 {
		return u, errBadToken
	}
	copy(u.Tenant[:], raw[:16])
	plain, err := s.OpenTenant(u.Tenant, tokenRecord, raw[16:])
	if err != nil || len(plain) < 17 || len(plain) < 17+int(plain[16]) {
		return u, errBadToken
	}
	copy(u.Subject[:], plain[:16])
	n := int(plain[16])
	u.Channel = string(plain[17 : 17+n])
	u.Purpose = string(plain[17+n:])
	return u, nil
}
