package opendsr

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// The files SelfSigned keeps in its directory.
const (
	devCertFile = "opendsr-dev-cert.pem"
	devKeyFile  = "opendsr-dev-key.pem"
)

const (
	devValidity = 365 * 24 * time.Hour
	// devRenewBefore replaces a development certificate a day before it
	// expires, so a running node never signs with an expired one.
	devRenewBefore = 24 * time.Hour
)

// SelfSigned returns a PEM certificate and PKCS #8 key for signing as
// domain, for development only: the specification forbids self-signed
// certificates, and no controller should trust one. The pair is an ECDSA
// P-256 key and a certificate valid for a year whose only DNS name is
// domain. It is generated on the first call and kept in dir (created
// 0700; key file 0600); later calls return it unchanged while it is valid
// for domain and for at least another day, and replace it otherwise.
// tls.X509KeyPair turns the result into a signing key and certificate.
func SelfSigned(domain, dir string) (certPEM, keyPEM []byte, err error) {
	if domain == "" {
		return nil, nil, fmt.Errorf("opendsr development certificate: no domain")
	}
	certFile, keyFile := filepath.Join(dir, devCertFile), filepath.Join(dir, devKeyFile)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("opendsr development certificate: %w", err)
	}
	now := time.Now()
	certPEM, errC := os.ReadFile(certFile)
	keyPEM, errK := os.ReadFile(keyFile)
	if errC == nil && errK == nil && devUsable(certPEM, keyPEM, domain, now) {
		// A key restored from a backup or copied by hand may be readable
		// by others; put it back.
		if err := os.Chmod(keyFile, 0o600); err != nil {
			return nil, nil, fmt.Errorf("opendsr development certificate: %w", err)
		}
		return certPEM, keyPEM, nil
	}
	certPEM, keyPEM, err = devGenerate(domain, now)
	if err != nil {
		return nil, nil, fmt.Errorf("opendsr development certificate: %w", err)
	}
	// A crash between the two writes leaves a key and certificate that do
	// not match, which the next call replaces.
	if err := writeAtomic(keyFile, keyPEM, 0o600); err != nil {
		return nil, nil, fmt.Errorf("opendsr development certificate: %w", err)
	}
	if err := writeAtomic(certFile, certPEM, 0o644); err != nil {
		return nil, nil, fmt.Errorf("opendsr development certificate: %w", err)
	}
	return certPEM, keyPEM, nil
}

// devUsable reports whether a stored pair matches, is for domain and stays
// valid for devRenewBefore.
func devUsable(certPEM, keyPEM []byte, domain string, now time.Time) bool {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil || pair.Leaf == nil {
		return false
	}
	leaf := pair.Leaf
	if now.Before(leaf.NotBefore) || now.Add(devRenewBefore).After(leaf.NotAfter) {
		return false
	}
	return CheckDomain(leaf, domain) == nil
}

func devGenerate(domain string, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{Organization: []string{"Custos development (self-signed)"}, CommonName: domain},
		DNSNames:     []string{domain},
		// Backdated an hour for a verifier whose clock is behind.
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(devValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// writeAtomic replaces name with data through a temporary file in the
// same directory. os.CreateTemp makes the file 0600, so a key is never
// readable by others, not even for a moment.
func writeAtomic(name string, data []byte, perm os.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), name)
}

// ParseCertificatePEM reads the first certificate of a PEM text, such as a
// recipient's pinned certificate.
func ParseCertificatePEM(b []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("not a PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("the certificate does not parse: %v", err)
	}
	return cert, nil
}
