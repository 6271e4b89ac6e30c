package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// stamp is what a poll compares to notice a changed pair without reading
// it: modification time and size of both files. A file that cannot be
// stat'ed counts as zero, so its disappearance and its return are changes
// too. os.Stat follows symlinks, which catches the symlink swap of a
// Kubernetes secret volume.
type stamp struct {
	certMod, certSize int64
	keyMod, keySize   int64
}

func statPair(certFile, keyFile string) stamp {
	var s stamp
	if fi, err := os.Stat(certFile); err == nil {
		s.certMod, s.certSize = fi.ModTime().UnixNano(), fi.Size()
	}
	if fi, err := os.Stat(keyFile); err == nil {
		s.keyMod, s.keySize = fi.ModTime().UnixNano(), fi.Size()
	}
	return s
}

// loadPair reads and checks a certificate and key pair. Its errors name the
// file at fault, or both when they do not belong together.
func loadPair(certFile, keyFile string) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("read TLS certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("read TLS key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate %s with key %s: %w", certFile, keyFile, err)
	}
	if cert.Leaf == nil { // GODEBUG=x509keypairleaf=0
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("TLS certificate %s: %w", certFile, err)
		}
	}
	return &cert, nil
}

// logLoaded reports which certificate is now served: public facts only.
func logLoaded(log *slog.Logger, msg, certFile string, cert *tls.Certificate, now time.Time) {
	leaf := cert.Leaf
	log.Info(msg,
		"file", certFile,
		"subject", leaf.Subject.String(),
		"issuer", leaf.Issuer.String(),
		"serial", leaf.SerialNumber.Text(16),
		"dns_names", leaf.DNSNames,
		"ip_addresses", leaf.IPAddresses,
		"not_after", leaf.NotAfter.UTC().Format(time.RFC3339),
	)
	switch {
	case now.After(leaf.NotAfter):
		log.Warn("TLS certificate has expired: clients will refuse it", "file", certFile, "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		log.Warn("TLS certificate is not valid yet: clients will refuse it", "file", certFile, "not_before", leaf.NotBefore.UTC().Format(time.RFC3339))
	}
}
