package opendsr

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"
)

// testCert returns a certificate for key with the given DNS names, signed
// by key itself: the tests check signatures, not trust.
func testCert(t *testing.T, key crypto.Signer, dnsNames ...string) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "test"},
		DNSNames:     dnsNames,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestSignVerify(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"controller_id":"c1","subject_request_id":"a7551968-d5d6-44b2-9831-815ac9017798","request_status":"pending"}`)
	for _, tc := range []struct {
		name string
		key  crypto.Signer
	}{
		{"RSA 2048", rsaKey},
		{"ECDSA P-256", ecKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cert := testCert(t, tc.key, "custos.example")
			sig, err := Sign(tc.key, body)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if err := Verify(cert, body, sig); err != nil {
				t.Fatalf("Verify(Sign(body)) = %v, want nil", err)
			}
			for i := range body {
				b := append([]byte(nil), body...)
				b[i] ^= 0x01
				if err := Verify(cert, b, sig); !errors.Is(err, ErrSignature) {
					t.Fatalf("Verify with body byte %d flipped = %v, want ErrSignature", i, err)
				}
			}
			for i := range len(sig) {
				s := []byte(sig)
				s[i] ^= 0x01
				if err := Verify(cert, body, string(s)); !errors.Is(err, ErrSignature) {
					t.Fatalf("Verify with signature byte %d flipped (%q) = %v, want ErrSignature", i, s[i], err)
				}
			}
			for _, bad := range []string{"", "not base64!", sig[:len(sig)-4], sig + "AAAA"} {
				if err := Verify(cert, body, bad); !errors.Is(err, ErrSignature) {
					t.Errorf("Verify(%q) = %v, want ErrSignature", bad, err)
				}
			}
		})
	}
	t.Run("other key", func(t *testing.T) {
		sig, err := Sign(ecKey, body)
		if err != nil {
			t.Fatal(err)
		}
		other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if err := Verify(testCert(t, other, "custos.example"), body, sig); !errors.Is(err, ErrSignature) {
			t.Errorf("Verify with another certificate = %v, want ErrSignature", err)
		}
	})
}

func TestSignRejectsEd25519(t *testing.T) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Sign(key, []byte("{}")); err == nil {
		t.Error("Sign with an Ed25519 key = nil error, want one: the specification allows RSA and ECDSA")
	}
}

func TestCheckDomain(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cert := testCert(t, key, "dsr.custos.example", "other.example")
	for _, tc := range []struct {
		domain string
		ok     bool
	}{
		{"dsr.custos.example", true},
		{"DSR.Custos.Example", true},
		{"other.example.", true},
		{"custos.example", false},
		{"evil.dsr.custos.example", false},
		{"test", false}, // the common name does not count
		{"", false},
	} {
		t.Run(tc.domain, func(t *testing.T) {
			err := CheckDomain(cert, tc.domain)
			if (err == nil) != tc.ok {
				t.Errorf("CheckDomain(%v, %q) = %v, want ok %v", cert.DNSNames, tc.domain, err, tc.ok)
			}
		})
	}
	wild := testCert(t, key, "*.custos.example")
	if err := CheckDomain(wild, "dsr.custos.example"); err == nil {
		t.Error("CheckDomain(*.custos.example, dsr.custos.example) = nil, want an error: wildcards do not match")
	}
}
