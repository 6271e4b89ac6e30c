package certificate_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/custos-dev/custos/internal/audit"
	"github.com/custos-dev/custos/internal/certificate"
)

func TestSignVerifyRoundTrip(t *testing.T) {
	pub, key := testKey("node")
	in := sample(t)
	c := mustSign(t, in, key)

	if c.Version != 1 {
		t.Errorf("Sign set Version %d, want 1", c.Version)
	}
	if got, want := c.KeyID, certificate.KeyID(pub); got != want || len(got) != 64 {
		t.Errorf("KeyID = %q, want %q (64 hex digits)", got, want)
	}
	if !c.IssuedAt.Equal(in.IssuedAt) || c.IssuedAt.Location() != time.UTC || c.Recipients[0].At.Location() != time.UTC {
		t.Errorf("Sign left times %v, %v; want the same instants in UTC", c.IssuedAt, c.Recipients[0].At)
	}
	if err := certificate.Verify(c, pub); err != nil {
		t.Fatalf("Verify(signed certificate) = %v, want nil", err)
	}

	b := mustMarshal(t, c)
	back, err := certificate.Parse(b)
	if err != nil {
		t.Fatalf("Parse(Marshal output) = %v\n%s", err, b)
	}
	if !reflect.DeepEqual(back, c) {
		t.Errorf("Parse(Marshal(c)) = %+v, want c = %+v", back, c)
	}
	if err := certificate.Verify(back, pub); err != nil {
		t.Errorf("Verify after a file round trip = %v, want nil", err)
	}
	got, err := certificate.VerifyFile(b, audit.PublicKeyPEM(pub))
	if err != nil || !reflect.DeepEqual(got, c) {
		t.Errorf("VerifyFile = %+v, %v; want the certificate, nil", got, err)
	}
}

func TestSignLeavesCallerAlone(t *testing.T) {
	_, key := testKey("node")
	in := sample(t)
	wantAt := in.Recipients[0].At
	c := mustSign(t, in, key)
	c.RecordsDeleted["events"] = 0
	c.Recipients[0].Status = "changed"
	if in.RecordsDeleted["events"] != 212 || in.Recipients[0].Status != "acknowledged" || in.Recipients[0].At != wantAt {
		t.Errorf("the caller's maps or recipients changed with the signed certificate: %+v", in)
	}
}

func TestSignEmpty(t *testing.T) {
	pub, key := testKey("node")
	c := certificate.Certificate{RequestID: "r", TenantID: "t", Subject: "s", IssuedAt: time.Unix(1e9, 0)}
	c = mustSign(t, c, key)
	if c.IdentifiersErased == nil || c.RecordsDeleted == nil || c.Recipients == nil {
		t.Errorf("Sign left nil maps or recipients: %+v; want them empty, as Parse reads them", c)
	}
	b := mustMarshal(t, c)
	back, err := certificate.Parse(b)
	if err != nil || !reflect.DeepEqual(back, c) {
		t.Fatalf("Parse(%s) = %+v, %v; want %+v", b, back, err, c)
	}
	if err := certificate.Verify(back, pub); err != nil {
		t.Errorf("Verify = %v, want nil", err)
	}
}

func TestSignRefuses(t *testing.T) {
	_, key := testKey("node")
	tests := []struct {
		name   string
		change func(*certificate.Certificate)
		want   string
	}{
		{"version 3", func(c *certificate.Certificate) { c.Version = 3 }, "unsupported certificate version 3"},
		{"purge due in version 1", func(c *certificate.Certificate) { c.Version, c.PurgeDueAt = 1, c.IssuedAt }, "purge_due_at needs version 2"},
		{"no request id", func(c *certificate.Certificate) { c.RequestID = "" }, "request_id is required"},
		{"no tenant id", func(c *certificate.Certificate) { c.TenantID = "" }, "tenant_id is required"},
		{"no subject", func(c *certificate.Certificate) { c.Subject = "" }, "subject is required"},
		{"no issue time", func(c *certificate.Certificate) { c.IssuedAt = time.Time{} }, "issued_at is required"},
		{"negative count", func(c *certificate.Certificate) { c.RecordsDeleted["events"] = -1 }, `records_deleted["events"] is -1`},
		{"year 10000", func(c *certificate.Certificate) { c.PurgedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "purged_at is in the year 10000"},
		{"recipient time before year 0", func(c *certificate.Certificate) { c.Recipients[1].At = time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC) }, "recipients[1].at is in the year -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := sample(t)
			tt.change(&c)
			_, err := certificate.Sign(c, key)
			wantInvalid(t, "Sign", err, tt.want)
		})
	}
	if _, err := certificate.Sign(sample(t), key[:32]); err == nil {
		t.Errorf("Sign with a 32-byte key = nil error, want one")
	}
}

func TestVerifyDetectsChanges(t *testing.T) {
	pub, key := testKey("node")
	const bad = "bad signature: the certificate was changed after it was signed"
	tests := []struct {
		name   string
		change func(*certificate.Certificate)
		want   string
	}{
		{"request id", func(c *certificate.Certificate) { c.RequestID += "x" }, bad},
		{"tenant id", func(c *certificate.Certificate) { c.TenantID = "0" + c.TenantID[1:] }, bad},
		{"region", func(c *certificate.Certificate) { c.Region = "us-east" }, bad},
		{"subject", func(c *certificate.Certificate) { c.Subject = "" }, bad},
		{"identifier count", func(c *certificate.Certificate) { c.IdentifiersErased["email"] = 2 }, bad},
		{"identifier type added", func(c *certificate.Certificate) { c.IdentifiersErased["device_id"] = 0 }, bad},
		{"identifier type removed", func(c *certificate.Certificate) { delete(c.IdentifiersErased, "email") }, bad},
		{"records deleted", func(c *certificate.Certificate) { c.RecordsDeleted["events"]-- }, bad},
		{"count moved between kinds", func(c *certificate.Certificate) {
			c.RecordsDeleted["profiles"], c.RecordsDeleted["access_results"] = 0, 2
		}, bad},
		{"shredded at", func(c *certificate.Certificate) { c.ShreddedAt = c.ShreddedAt.Add(time.Nanosecond) }, bad},
		{"deleted at", func(c *certificate.Certificate) { c.DeletedAt = c.DeletedAt.Add(-time.Second) }, bad},
		{"purged at", func(c *certificate.Certificate) { c.PurgedAt = time.Time{} }, bad},
		{"shredded and deleted swapped", func(c *certificate.Certificate) { c.ShreddedAt, c.DeletedAt = c.DeletedAt, c.ShreddedAt }, bad},
		{"verified", func(c *certificate.Certificate) { c.Verified = false }, bad},
		{"recipient status", func(c *certificate.Certificate) { c.Recipients[1].Status = "acknowledged" }, bad},
		{"recipient time", func(c *certificate.Certificate) { c.Recipients[2].At = c.IssuedAt }, bad},
		{"recipient detail", func(c *certificate.Certificate) { c.Recipients[1].Detail = "" }, bad},
		{"recipient removed", func(c *certificate.Certificate) { c.Recipients = c.Recipients[:2] }, bad},
		{"recipients reordered", func(c *certificate.Certificate) {
			c.Recipients = []certificate.Outcome{c.Recipients[1], c.Recipients[0], c.Recipients[2]}
		}, bad},
		{"field boundary moved", func(c *certificate.Certificate) {
			c.Recipients[0].Recipient, c.Recipients[0].Status = c.Recipients[0].Recipient+c.Recipients[0].Status[:1], c.Recipients[0].Status[1:]
		}, bad},
		{"audit seq", func(c *certificate.Certificate) { c.AuditChainHead.Seq++ }, bad},
		{"audit hash", func(c *certificate.Certificate) { c.AuditChainHead.Hash = audit.Genesis }, bad},
		{"issued at", func(c *certificate.Certificate) { c.IssuedAt = c.IssuedAt.AddDate(1, 0, 0) }, bad},
		{"key id", func(c *certificate.Certificate) { c.KeyID = certificate.KeyID(ed25519.PublicKey(make([]byte, 32))) }, "wrong key"},
		{"version", func(c *certificate.Certificate) { c.Version = 3 }, "unsupported certificate version 3 (this build reads versions 1 to 2)"},
		{"version 1 to 2", func(c *certificate.Certificate) { c.Version = 2 }, bad},
		{"version 0", func(c *certificate.Certificate) { c.Version = 0 }, "unsupported certificate version 0"},
		{"signature bit", func(c *certificate.Certificate) {
			sig, _ := base64.StdEncoding.DecodeString(c.Signature)
			sig[10] ^= 4
			c.Signature = base64.StdEncoding.EncodeToString(sig)
		}, bad},
		{"signature empty", func(c *certificate.Certificate) { c.Signature = "" }, "bad signature: not the base64 of a 64-byte Ed25519 signature"},
		{"signature with a line break", func(c *certificate.Certificate) { c.Signature = c.Signature[:40] + "\n" + c.Signature[40:] }, "bad signature: not the base64"},
		{"signature padding bits", func(c *certificate.Certificate) {
			// The last data character of 64 bytes carries 2 bits and 4
			// bits of padding: a lenient decoder ignores those.
			b := []byte(c.Signature)
			const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
			i := len(b) - 3
			b[i] = alphabet[strings.IndexByte(alphabet, b[i])|1]
			c.Signature = string(b)
		}, "bad signature: not the base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustSign(t, sample(t), key)
			tt.change(&c)
			wantInvalid(t, "Verify", certificate.Verify(c, pub), tt.want)
		})
	}
}

func TestVerifyTimeZoneIrrelevant(t *testing.T) {
	pub, key := testKey("node")
	c := mustSign(t, sample(t), key)
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	c.IssuedAt = c.IssuedAt.In(tokyo)
	if err := certificate.Verify(c, pub); err != nil {
		t.Errorf("Verify with issued_at moved to another zone, same instant = %v, want nil", err)
	}
}

func TestWrongKey(t *testing.T) {
	_, key := testKey("node")
	otherPub, _ := testKey("another node")
	c := mustSign(t, sample(t), key)
	err := certificate.Verify(c, otherPub)
	wantInvalid(t, "Verify with another key", err, "wrong key: the certificate names key id \""+c.KeyID+"\", the key given has key id "+certificate.KeyID(otherPub))

	_, err = certificate.VerifyFile(mustMarshal(t, c), audit.PublicKeyPEM(otherPub))
	wantInvalid(t, "VerifyFile with another key", err, "wrong key")

	// A forger who sets the other key's id still needs its signature.
	c.KeyID = certificate.KeyID(otherPub)
	wantInvalid(t, "Verify with key id set to the other key", certificate.Verify(c, otherPub), "bad signature")

	wantInvalid(t, "Verify with a short key", certificate.Verify(c, otherPub[:31]), "public key has 31 bytes, want 32")
}

func TestVerifyFileBadKey(t *testing.T) {
	pub, key := testKey("node")
	b := mustMarshal(t, mustSign(t, sample(t), key))
	tests := []struct {
		name string
		pem  []byte
		want string
	}{
		{"empty", nil, "want a PEM PUBLIC KEY block"},
		{"private key", []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), "want a PEM PUBLIC KEY block"},
		{"garbage in the block", []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"), "no valid public key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := certificate.VerifyFile(b, tt.pem)
			wantInvalid(t, "VerifyFile", err, tt.want)
			if err == nil || !strings.Contains(err.Error(), "public key") || c.RequestID != "" {
				t.Errorf("VerifyFile = %+v, %v; want no certificate and an error about the public key", c, err)
			}
		})
	}
	if _, err := certificate.VerifyFile(b, audit.PublicKeyPEM(pub)); err != nil {
		t.Errorf("VerifyFile with the right key = %v, want nil", err)
	}
}

// TestVersion2PurgeDue: a certificate issued before its purge pass says
// when the pass is due, as version 2, and that time is signed.
func TestVersion2PurgeDue(t *testing.T) {
	pub, key := testKey("node")
	in := sample(t)
	in.PurgedAt = time.Time{}
	in.PurgeDueAt = in.IssuedAt.Add(10 * time.Minute)
	c := mustSign(t, in, key)
	if c.Version != 2 {
		t.Fatalf("Sign of a certificate with purge_due_at set Version %d, want 2", c.Version)
	}
	if err := certificate.Verify(c, pub); err != nil {
		t.Fatalf("Verify(version 2) = %v, want nil", err)
	}
	b := mustMarshal(t, c)
	if !strings.Contains(string(b), `"purge_due_at": "2026-03-02T08:26:00.123456789Z"`) {
		t.Errorf("file of a version 2 certificate lacks purge_due_at:\n%s", b)
	}
	back, err := certificate.Parse(b)
	if err != nil {
		t.Fatalf("Parse(version 2 file) = %v", err)
	}
	if !reflect.DeepEqual(back, c) {
		t.Errorf("Parse(Marshal(c)) = %+v, want %+v", back, c)
	}
	moved := c
	moved.PurgeDueAt = moved.PurgeDueAt.Add(time.Hour)
	wantInvalid(t, "Verify with purge_due_at moved", certificate.Verify(moved, pub), "changed after it was signed")
	// Version 1 stays as it was: no purge_due_at in its bytes or its file.
	v1 := mustSign(t, sample(t), key)
	if v1.Version != 1 || strings.Contains(string(mustMarshal(t, v1)), "purge_due_at") {
		t.Errorf("certificate purged before issue: version %d, file mentions purge_due_at: %v; want version 1 without it", v1.Version, strings.Contains(string(mustMarshal(t, v1)), "purge_due_at"))
	}
}
