package certificate

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/custos-dev/custos"
)

// Version is the newest certificate format this package writes and
// reads. Sign writes version 1, whose bytes are unchanged, when the purge
// was done before the certificate, and version 2, which adds PurgeDueAt,
// when the purge was scheduled; Verify and Parse read both.
const Version = 2

// domains separate these signatures from every other use of the key, and
// the versions from each other.
var domains = map[int]string{1: "custos erasure certificate v1", 2: "custos erasure certificate v2"}

// Outcome is what became of telling one recipient of the subject's data
// about the erasure (Art. 19).
type Outcome struct {
	Recipient string    `json:"recipient"`
	Status    string    `json:"status"`
	At        time.Time `json:"at,omitzero"`
	Detail    string    `json:"detail,omitempty"`
}

// ChainHead is the position of the tenant's audit chain when the
// certificate was issued: its last sequence number and that entry's hash.
type ChainHead struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

// Certificate is a signed statement that one data subject's data was
// erased. The package documentation gives the exact bytes Signature
// covers.
type Certificate struct {
	Version   int    `json:"version"`
	RequestID string `json:"request_id"`
	TenantID  string `json:"tenant_id"`
	Region    string `json:"region"`
	// Subject is the subject's pseudonym (a keyed hash), never an
	// identifier.
	Subject string `json:"subject"`
	// IdentifiersErased counts the identifiers erased by type ("email",
	// "user_id"...).
	IdentifiersErased map[string]int `json:"identifiers_erased"`
	// RecordsDeleted counts the records deleted by kind ("events",
	// "profiles", "index_entries", "dedupe_records", "access_results"...).
	RecordsDeleted map[string]int `json:"records_deleted"`
	// ShreddedAt is when the subject's data key was destroyed, DeletedAt
	// when the records were deleted, PurgedAt when their bytes were purged
	// from storage files.
	ShreddedAt time.Time `json:"shredded_at"`
	DeletedAt  time.Time `json:"deleted_at"`
	PurgedAt   time.Time `json:"purged_at"`
	// PurgeDueAt (version 2) is when the purge pass that removes the
	// erased bytes from storage files starts, if it had not run when the
	// certificate was issued (PurgedAt is then zero). The data is
	// unreadable from ShreddedAt on either way.
	PurgeDueAt time.Time `json:"purge_due_at,omitzero"`
	// Verified reports whether a check after the erasure found nothing
	// of the subject left.
	Verified       bool      `json:"verified"`
	Recipients     []Outcome `json:"recipients"`
	AuditChainHead ChainHead `json:"audit_chain_head"`
	IssuedAt       time.Time `json:"issued_at"`
	// KeyID is the SHA-256 fingerprint (hex) of the signing public key;
	// see KeyID.
	KeyID string `json:"key_id"`
	// Signature is the standard base64 Ed25519 signature of the
	// certificate's canonical bytes.
	Signature string `json:"signature"`
}

// KeyID returns the fingerprint of pub that certificates carry: the
// lowercase hex SHA-256 of its PKIX DER encoding.
func KeyID(pub ed25519.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		// Unreachable: every ed25519.PublicKey marshals.
		panic(fmt.Sprintf("certificate: marshal public key: %v", err))
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// Sign returns c signed with key: with KeyID and Signature set, Version
// set, if it was 0, to 1 — or to 2 if PurgeDueAt is set —, every time in UTC, and absent maps and recipients
// made empty, so that it equals what Parse reads back from Marshal's
// output. It refuses a certificate a reader could not rely on: another
// version, a missing request id, tenant id, subject or issue time, a
// negative count, or a time outside the years 0 to 9999.
func Sign(c Certificate, key ed25519.PrivateKey) (Certificate, error) {
	if len(key) != ed25519.PrivateKeySize {
		return Certificate{}, fmt.Errorf("sign certificate: signing key has %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	if c.Version == 0 {
		c.Version = 1
		if !c.PurgeDueAt.IsZero() {
			c.Version = 2
		}
	}
	c = normalize(c)
	if err := check(c); err != nil {
		return Certificate{}, err
	}
	c.KeyID = KeyID(key.Public().(ed25519.PublicKey))
	c.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, signed(c)))
	return c, nil
}

// Verify checks that c is a version 1 or 2 certificate signed by pub and
// unchanged since. The error, a *custos.Error with code Invalid, says
// which: an unsupported version, a certificate signed by another key (its
// KeyID is not pub's), a malformed signature, or a signature that does not
// match the certificate's content.
func Verify(c Certificate, pub ed25519.PublicKey) error {
	if _, ok := domains[c.Version]; !ok {
		return unsupported(c.Version)
	}
	if len(pub) != ed25519.PublicKeySize {
		return custos.Errorf(custos.Invalid, "public key has %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	if want := KeyID(pub); c.KeyID != want {
		return custos.Errorf(custos.Invalid, "wrong key: the certificate names key id %q, the key given has key id %s", c.KeyID, want)
	}
	// Only the one encoding Sign writes is accepted: the standard decoder
	// would also take line breaks and nonzero padding bits.
	sig, err := base64.StdEncoding.Strict().DecodeString(c.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize || base64.StdEncoding.EncodeToString(sig) != c.Signature {
		return custos.Errorf(custos.Invalid, "bad signature: not the base64 of a %d-byte Ed25519 signature", ed25519.SignatureSize)
	}
	if !ed25519.Verify(pub, signed(c), sig) {
		return custos.Errorf(custos.Invalid, "bad signature: the certificate was changed after it was signed")
	}
	return nil
}

func unsupported(v int) error {
	return custos.Errorf(custos.Invalid, "unsupported certificate version %d (this build reads versions 1 to %d)", v, Version)
}

// normalize puts c in the form Parse reads back, on copies of its maps and
// slice so the caller's are left alone.
func normalize(c Certificate) Certificate {
	c.IdentifiersErased = cloneCounts(c.IdentifiersErased)
	c.RecordsDeleted = cloneCounts(c.RecordsDeleted)
	c.Recipients = slices.Clone(c.Recipients)
	if c.Recipients == nil {
		c.Recipients = []Outcome{}
	}
	for i := range c.Recipients {
		c.Recipients[i].At = c.Recipients[i].At.UTC()
	}
	c.ShreddedAt = c.ShreddedAt.UTC()
	c.DeletedAt = c.DeletedAt.UTC()
	c.PurgedAt = c.PurgedAt.UTC()
	c.PurgeDueAt = c.PurgeDueAt.UTC()
	c.IssuedAt = c.IssuedAt.UTC()
	return c
}

func cloneCounts(m map[string]int) map[string]int {
	if m == nil {
		return map[string]int{}
	}
	return maps.Clone(m)
}

// check refuses what Sign must not sign.
func check(c Certificate) error {
	if _, ok := domains[c.Version]; !ok {
		return unsupported(c.Version)
	}
	if c.Version == 1 && !c.PurgeDueAt.IsZero() {
		return custos.Errorf(custos.Invalid, "certificate: purge_due_at needs version 2")
	}
	for _, f := range []struct{ name, v string }{{"request_id", c.RequestID}, {"tenant_id", c.TenantID}, {"subject", c.Subject}} {
		if f.v == "" {
			return custos.Errorf(custos.Invalid, "certificate: %s is required", f.name)
		}
	}
	if c.IssuedAt.IsZero() {
		return custos.Errorf(custos.Invalid, "certificate: issued_at is required")
	}
	for _, f := range []struct {
		name string
		m    map[string]int
	}{{"identifiers_erased", c.IdentifiersErased}, {"records_deleted", c.RecordsDeleted}} {
		for _, k := range slices.Sorted(maps.Keys(f.m)) {
			if n := f.m[k]; n < 0 {
				return custos.Errorf(custos.Invalid, "certificate: %s[%q] is %d; a count cannot be negative", f.name, k, n)
			}
		}
	}
	type namedTime struct {
		name string
		t    time.Time
	}
	times := []namedTime{{"shredded_at", c.ShreddedAt}, {"deleted_at", c.DeletedAt}, {"purged_at", c.PurgedAt}, {"purge_due_at", c.PurgeDueAt}, {"issued_at", c.IssuedAt}}
	for i, o := range c.Recipients {
		times = append(times, namedTime{fmt.Sprintf("recipients[%d].at", i), o.At})
	}
	for _, f := range times {
		// JSON, and so the file, holds only four-digit years.
		if y := f.t.Year(); y < 0 || y > 9999 {
			return custos.Errorf(custos.Invalid, "certificate: %s is in the year %d, outside 0 to 9999", f.name, y)
		}
	}
	return nil
}

// signed returns the bytes the signature covers, as the package
// documentation describes them.
func signed(c Certificate) []byte {
	b := make([]byte, 0, 1024)
	b = appendString(b, domains[c.Version])
	b = appendInt(b, int64(c.Version))
	b = appendString(b, c.RequestID)
	b = appendString(b, c.TenantID)
	b = appendString(b, c.Region)
	b = appendString(b, c.Subject)
	b = appendCounts(b, c.IdentifiersErased)
	b = appendCounts(b, c.RecordsDeleted)
	b = appendTime(b, c.ShreddedAt)
	b = appendTime(b, c.DeletedAt)
	b = appendTime(b, c.PurgedAt)
	if c.Version >= 2 {
		b = appendTime(b, c.PurgeDueAt)
	}
	if c.Verified {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = appendInt(b, int64(len(c.Recipients)))
	for _, o := range c.Recipients {
		b = appendString(b, o.Recipient)
		b = appendString(b, o.Status)
		b = appendTime(b, o.At)
		b = appendString(b, o.Detail)
	}
	b = appendInt(b, int64(c.AuditChainHead.Seq))
	b = appendString(b, c.AuditChainHead.Hash)
	b = appendTime(b, c.IssuedAt)
	return appendString(b, c.KeyID)
}

func appendInt(b []byte, n int64) []byte {
	return binary.BigEndian.AppendUint64(b, uint64(n))
}

func appendString(b []byte, s string) []byte {
	b = appendInt(b, int64(len(s)))
	return append(b, s...)
}

func appendTime(b []byte, t time.Time) []byte {
	return appendString(b, t.UTC().Format(time.RFC3339Nano))
}

func appendCounts(b []byte, m map[string]int) []byte {
	b = appendInt(b, int64(len(m)))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		b = appendString(b, k)
		b = appendInt(b, int64(m[k]))
	}
	return b
}
