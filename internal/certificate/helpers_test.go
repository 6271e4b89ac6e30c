package certificate_test

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // sample uses Europe/Berlin

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/certificate"
)

// testKey returns a fixed signing key, so that signatures, and so the
// golden file, are the same on every run.
func testKey(name string) (ed25519.PublicKey, ed25519.PrivateKey) {
	seed := sha256.Sum256([]byte("custos certificate test key: " + name))
	key := ed25519.NewKeyFromSeed(seed[:])
	return key.Public().(ed25519.PublicKey), key
}

// sample returns an unsigned certificate with every field set, times off
// UTC and a recipient detail that is not ASCII.
func sample(t *testing.T) certificate.Certificate {
	t.Helper()
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	shredded := time.Date(2026, 3, 2, 9, 15, 0, 123456789, berlin)
	return certificate.Certificate{
		RequestID:         "req_01J9ZK3Q5W8E7R6T5Y4U3I2O1P",
		TenantID:          "6f1c0e2a9b7d4c3e8f5a1b2c3d4e5f60",
		Region:            "eu-central",
		Subject:           "4b227777d4dd1fc61c6f884f48641d02b4d121d3fd328cb08b5531fcacdabf8a",
		IdentifiersErased: map[string]int{"user_id": 1, "email": 1, "anonymous_id": 3},
		RecordsDeleted:    map[string]int{"events": 212, "profiles": 1, "index_entries": 5, "dedupe_records": 212, "access_results": 1},
		ShreddedAt:        shredded,
		DeletedAt:         shredded.Add(2 * time.Second),
		PurgedAt:          shredded.Add(41*time.Second + 500*time.Millisecond),
		Verified:          true,
		Recipients: []certificate.Outcome{
			{Recipient: "webhook:crm.example.com", Status: "acknowledged", At: shredded.Add(3 * time.Second)},
			{Recipient: "esp:mail-provider", Status: "failed", At: shredded.Add(4 * time.Second), Detail: "HTTP 503 – retry scheduled"},
			{Recipient: "export:warehouse", Status: "pending"},
		},
		AuditChainHead: certificate.ChainHead{Seq: 4711, Hash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
		IssuedAt:       shredded.Add(time.Minute),
	}
}

// mustSign signs c with key or fails the test.
func mustSign(t *testing.T, c certificate.Certificate, key ed25519.PrivateKey) certificate.Certificate {
	t.Helper()
	s, err := certificate.Sign(c, key)
	if err != nil {
		t.Fatalf("Sign = %v", err)
	}
	return s
}

// mustMarshal returns the file form of c or fails the test.
func mustMarshal(t *testing.T, c certificate.Certificate) []byte {
	t.Helper()
	b, err := certificate.Marshal(c)
	if err != nil {
		t.Fatalf("Marshal = %v", err)
	}
	return b
}

// wantInvalid fails the test unless err is a *custos.Error with code
// Invalid whose message contains want.
func wantInvalid(t *testing.T, what string, err error, want string) {
	t.Helper()
	var e *custos.Error
	if !errors.As(err, &e) || e.Code != custos.Invalid || !strings.Contains(e.Message, want) {
		t.Errorf("%s: error = %v, want an invalid error containing %q", what, err, want)
	}
}
