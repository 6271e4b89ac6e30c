package tlsconfig

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// defaultInterval is how often a Reloader looks at the certificate files.
// Renewals happen days before expiry, so seconds of delay cost nothing while
// a stat of two files every ten seconds costs nothing either.
const defaultInterval = 10 * time.Second

// Options says where the server certificate comes from. Either CertFile and
// KeyFile are set, or SelfSigned and DataDir are.
type Options struct {
	// CertFile is a PEM file holding the certificate, followed by any
	// intermediates.
	CertFile string
	// KeyFile is a PEM file holding the private key of CertFile.
	KeyFile string

	// SelfSigned asks for a generated development certificate instead of
	// CertFile and KeyFile.
	SelfSigned bool
	// DataDir is the directory under which the self-signed pair is kept, in
	// <DataDir>/tls. Required with SelfSigned.
	DataDir string
	// Hosts are the DNS names and IP addresses the self-signed certificate
	// is valid for. Empty means localhost, 127.0.0.1 and ::1.
	Hosts []string

	// Log receives certificate loads, reloads and rejected replacements.
	// Nil discards them.
	Log *slog.Logger
	// Now is the clock used for certificate validity. Nil means time.Now.
	Now func() time.Time

	// interval is how often the files are checked for changes; zero means
	// defaultInterval. Unexported: only tests need another value.
	interval time.Duration
}

// defaultHosts are the names a development certificate covers when
// Options.Hosts is empty: everything a browser on the same machine uses.
func defaultHosts() []string { return []string{"localhost", "127.0.0.1", "::1"} }

// withDefaults validates o and returns a copy with every default filled in.
func (o Options) withDefaults() (Options, error) {
	switch {
	case o.SelfSigned && (o.CertFile != "" || o.KeyFile != ""):
		return o, errors.New("a self-signed TLS certificate and TLS certificate files are mutually exclusive")
	case o.SelfSigned && o.DataDir == "":
		return o, errors.New("a self-signed TLS certificate needs a data directory to be kept in")
	case o.SelfSigned:
	case o.CertFile != "" && o.KeyFile == "":
		return o, fmt.Errorf("TLS certificate file %s given without a key file", o.CertFile)
	case o.CertFile == "" && o.KeyFile != "":
		return o, fmt.Errorf("TLS key file %s given without a certificate file", o.KeyFile)
	case o.CertFile == "":
		return o, errors.New("no TLS certificate: give a certificate and a key file, or ask for a self-signed one")
	}
	if len(o.Hosts) == 0 {
		o.Hosts = defaultHosts()
	}
	for _, h := range o.Hosts {
		if h == "" {
			return o, errors.New("empty host name for the self-signed TLS certificate")
		}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.interval <= 0 {
		o.interval = defaultInterval
	}
	return o, nil
}
