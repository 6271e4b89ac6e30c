package audit_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/custos-dev/custos/internal/audit"
)

func TestLoadSigningKeyGeneratesOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	key, err := audit.LoadSigningKey(dir)
	if err != nil {
		t.Fatalf("LoadSigningKey(new dir) = %v", err)
	}
	path := filepath.Join(dir, audit.SigningKeyFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("key file mode = %o, want 600", got)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("-----BEGIN PRIVATE KEY-----")) {
		t.Errorf("key file = %q..., want a PEM PRIVATE KEY block", b[:min(len(b), 30)])
	}
	again, err := audit.LoadSigningKey(dir)
	if err != nil || !key.Equal(again) {
		t.Fatalf("second LoadSigningKey = %v; want the same key as the first", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 {
		t.Errorf("dir holds %d files, want only the key (no temporary files left)", len(ents))
	}
}

func TestLoadSigningKeyConcurrentFirstStart(t *testing.T) {
	dir := t.TempDir()
	const n = 8
	keys := make([]ed25519.PrivateKey, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			k, err := audit.LoadSigningKey(dir)
			if err != nil {
				t.Errorf("LoadSigningKey = %v", err)
			}
			keys[i] = k
		})
	}
	wg.Wait()
	for i := range keys {
		if !keys[i].Equal(keys[0]) {
			t.Fatalf("concurrent first starts got different keys (%d vs 0)", i)
		}
	}
}

func TestLoadSigningKeyFormats(t *testing.T) {
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	mismatched := append(append([]byte(nil), key[:32]...), make([]byte, 32)...)
	tests := []struct {
		name    string
		content string
		wantErr string // "" for success
	}{
		{"PEM", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), ""},
		{"base64", base64.StdEncoding.EncodeToString(key) + "\n", ""},
		{"PEM of a public key", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})), "want a PEM PRIVATE KEY block"},
		{"PEM garbage", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "signing key"},
		{"base64 of a seed only", base64.StdEncoding.EncodeToString(key.Seed()), "32 bytes, want 64"},
		{"halves that do not match", base64.StdEncoding.EncodeToString(mismatched), "does not belong"},
		{"neither", "hello", "neither PEM nor base64"},
		{"empty", "", "0 bytes, want 64"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, audit.SigningKeyFile), []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := audit.LoadSigningKey(dir)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("LoadSigningKey = %v, want nil", err)
			case tc.wantErr == "" && !got.Equal(key):
				t.Fatal("LoadSigningKey returned another key")
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("LoadSigningKey = %v, want an error containing %q", err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), base64.StdEncoding.EncodeToString(key.Seed())[:16]) {
				t.Errorf("error %q leaks key material", err)
			}
		})
	}
}

func TestPublicKeyPEM(t *testing.T) {
	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	b := audit.PublicKeyPEM(pub)
	got, err := audit.ParsePublicKeyPEM(b)
	if err != nil || !got.Equal(pub) {
		t.Fatalf("ParsePublicKeyPEM(PublicKeyPEM(pub)) = %x, %v; want %x", got, err, pub)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"empty":       nil,
		"private key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		"garbage DER": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2, 3}}),
	} {
		if _, err := audit.ParsePublicKeyPEM(b); err == nil {
			t.Errorf("ParsePublicKeyPEM(%s) = nil error, want an error", name)
		}
	}
}
