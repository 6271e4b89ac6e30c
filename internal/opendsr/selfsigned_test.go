package opendsr

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"
)

func TestSelfSigned(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	certPEM, keyPEM, err := SelfSigned("dsr.custos.test", dir)
	if err != nil {
		t.Fatalf("SelfSigned: %v", err)
	}
	fi, err := os.Stat(filepath.Join(dir, devKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("key file mode = %v, want 0600", got)
	}

	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("X509KeyPair: %v", err)
	}
	if err := CheckDomain(pair.Leaf, "dsr.custos.test"); err != nil {
		t.Errorf("CheckDomain(dev certificate) = %v", err)
	}
	body := []byte(`{"request_status":"completed"}`)
	sig, err := Sign(pair.PrivateKey.(crypto.Signer), body)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(pair.Leaf, body, sig); err != nil {
		t.Errorf("Verify(dev certificate) = %v", err)
	}

	// A second call reuses the pair, and restores the key's mode.
	if err := os.Chmod(filepath.Join(dir, devKeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	cert2, key2, err := SelfSigned("dsr.custos.test", dir)
	if err != nil {
		t.Fatalf("second SelfSigned: %v", err)
	}
	if !bytes.Equal(cert2, certPEM) || !bytes.Equal(key2, keyPEM) {
		t.Error("second SelfSigned generated a new pair, want the stored one")
	}
	if fi, err := os.Stat(filepath.Join(dir, devKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file after reuse: %v, %v; want mode 0600", fi.Mode().Perm(), err)
	}

	// Another domain gets a new pair.
	cert3, _, err := SelfSigned("other.custos.test", dir)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(cert3, certPEM) {
		t.Error("SelfSigned for another domain reused the first certificate")
	}
}

func TestSelfSignedReplacesBrokenPair(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, devCertFile), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := SelfSigned("dsr.custos.test", dir)
	if err != nil {
		t.Fatalf("SelfSigned over a broken pair: %v", err)
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Errorf("replacement pair: %v", err)
	}
}
