package tlsconfig

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

const (
	selfSignedValidity = 365 * 24 * time.Hour
	// renewBefore replaces a development certificate a day before it
	// expires, so a running server never presents an expired one.
	renewBefore = 24 * time.Hour
	// backdate covers a client clock slightly behind ours.
	backdate = time.Hour
)

// prepareSelfSigned makes sure <DataDir>/tls holds a usable development
// pair, generating one if it is missing, unreadable, about to expire or
// not valid for every host, and returns the two file names.
func prepareSelfSigned(o Options) (certFile, keyFile string, err error) {
	dir := filepath.Join(o.DataDir, "tls")
	certFile, keyFile = filepath.Join(dir, "dev-cert.pem"), filepath.Join(dir, "dev-key.pem")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("create TLS directory: %w", err)
	}
	// MkdirAll leaves an existing directory as it is; this one holds a key.
	if err := os.Chmod(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("restrict TLS directory: %w", err)
	}
	now := o.Now()
	if cert, err := loadPair(certFile, keyFile); err == nil && usable(cert.Leaf, o.Hosts, now) {
		if err := os.Chmod(keyFile, 0o600); err != nil {
			return "", "", fmt.Errorf("restrict TLS key: %w", err)
		}
		return certFile, keyFile, nil
	}
	if err := generateSelfSigned(certFile, keyFile, o.Hosts, now); err != nil {
		return "", "", err
	}
	o.Log.Info("generated a self-signed TLS certificate", "cert", certFile, "hosts", o.Hosts)
	return certFile, keyFile, nil
}

// usable reports whether a development certificate can go on being served:
// valid now and for another renewBefore, and for every host asked for.
func usable(leaf *x509.Certificate, hosts []string, now time.Time) bool {
	if now.Before(leaf.NotBefore) || now.Add(renewBefore).After(leaf.NotAfter) {
		return false
	}
	for _, h := range hosts {
		if leaf.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

// generateSelfSigned writes a new ECDSA P-256 certificate for hosts, valid
// for a year from now, and its key. Each file is replaced atomically.
func generateSelfSigned(certFile, keyFile string, hosts []string, now time.Time) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate TLS key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return fmt.Errorf("generate TLS certificate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"Custos development (self-signed)"}, CommonName: hosts[0]},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(selfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("create self-signed TLS certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode TLS key: %w", err)
	}
	if err := writeFileAtomic(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return writeFileAtomic(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// writeFileAtomic replaces name with data through a temporary file in the
// same directory, so no reader sees a partial file. The temporary file is
// created with mode 0600, so a key is never readable by others, not even
// for a moment.
func writeFileAtomic(name string, data []byte, perm os.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
			err = fmt.Errorf("write %s: %w", name, err)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), name)
}
