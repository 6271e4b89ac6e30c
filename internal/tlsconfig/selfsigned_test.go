package tlsconfig

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// readDevCert parses the development certificate under dataDir.
func readDevCert(t *testing.T, dataDir string) (*x509.Certificate, []byte) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dataDir, "tls", "dev-cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("dev-cert.pem holds no PEM block")
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return leaf, data
}

func wantMode(t *testing.T, name string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("mode of %s = %v, want %v", name, got, want)
	}
}

func TestSelfSigned(t *testing.T) {
	dataDir := t.TempDir()
	var logs logBuffer
	r := mustLoad(t, Options{SelfSigned: true, DataDir: dataDir, Log: logs.logger()})
	addr := serve(t, r.Config())

	tlsDir := filepath.Join(dataDir, "tls")
	wantMode(t, tlsDir, 0o700)
	wantMode(t, filepath.Join(tlsDir, "dev-key.pem"), 0o600)
	entries, err := os.ReadDir(tlsDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Errorf("%s holds %d entries, want dev-cert.pem and dev-key.pem only", tlsDir, len(entries))
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "development only") {
		t.Errorf("no development-only warning logged:\n%s", logs.String())
	}

	leaf, first := readDevCert(t, dataDir)
	if k, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("key = %T, want ECDSA P-256", leaf.PublicKey)
	}
	if d := leaf.NotAfter.Sub(time.Now()); d < 364*24*time.Hour || d > 366*24*time.Hour {
		t.Errorf("certificate expires in %v, want about a year", d)
	}
	for _, h := range []string{"localhost", "127.0.0.1", "::1"} {
		if err := leaf.VerifyHostname(h); err != nil {
			t.Errorf("certificate not valid for %s: %v", h, err)
		}
	}
	// A client that trusts the development certificate verifies it fully
	// when dialling 127.0.0.1.
	st, err := handshake(t, addr, clientFor(leaf))
	if err != nil {
		t.Fatalf("verified handshake with %s: %v", addr, err)
	}
	if !bytes.Equal(st.PeerCertificates[0].Raw, leaf.Raw) {
		t.Error("server presents another certificate than dev-cert.pem")
	}

	// A second Load reuses the pair, even if its key mode was loosened.
	if err := os.Chmod(filepath.Join(tlsDir, "dev-key.pem"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustLoad(t, Options{SelfSigned: true, DataDir: dataDir})
	if _, second := readDevCert(t, dataDir); !bytes.Equal(first, second) {
		t.Error("second Load generated a new certificate, want the first reused")
	}
	wantMode(t, filepath.Join(tlsDir, "dev-key.pem"), 0o600)
}

func TestSelfSignedRegenerates(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, opts *Options)
	}{
		{"expired", func(t *testing.T, o *Options) { o.Now = func() time.Time { return time.Now().AddDate(1, 0, 1) } }},
		{"expiring within a day", func(t *testing.T, o *Options) {
			o.Now = func() time.Time { return time.Now().Add(selfSignedValidity - time.Hour) }
		}},
		{"other host", func(t *testing.T, o *Options) { o.Hosts = []string{"custos.test"} }},
		{"certificate corrupt", func(t *testing.T, o *Options) {
			rewrite(t, filepath.Join(o.DataDir, "tls", "dev-cert.pem"), []byte("garbage"))
		}},
		{"key missing", func(t *testing.T, o *Options) {
			if err := os.Remove(filepath.Join(o.DataDir, "tls", "dev-key.pem")); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := Options{SelfSigned: true, DataDir: t.TempDir()}
			mustLoad(t, opts)
			before, _ := readDevCert(t, opts.DataDir)

			tc.change(t, &opts)
			mustLoad(t, opts)
			after, _ := readDevCert(t, opts.DataDir)
			if after.SerialNumber.Cmp(before.SerialNumber) == 0 {
				t.Fatal("certificate reused, want a new one")
			}
			now := time.Now()
			if opts.Now != nil {
				now = opts.Now()
			}
			hosts := opts.Hosts
			if len(hosts) == 0 {
				hosts = defaultHosts()
			}
			if !usable(after, hosts, now) {
				t.Errorf("new certificate (valid %v to %v, hosts %v %v) not usable at %v", after.NotBefore, after.NotAfter, after.DNSNames, after.IPAddresses, now)
			}
		})
	}
}

// TestSelfSignedRenewsWhileRunning runs a server across the expiry of its
// development certificate.
func TestSelfSignedRenewsWhileRunning(t *testing.T) {
	clk := &clock{now: time.Now()}
	dataDir := t.TempDir()
	r := mustLoad(t, Options{SelfSigned: true, DataDir: dataDir, Now: clk.Now})
	before, _ := readDevCert(t, dataDir)

	r.check()
	if got := r.cert.Load().Leaf.SerialNumber; got.Cmp(before.SerialNumber) != 0 {
		t.Fatalf("renewed a fresh certificate: serial %x, want %x", got, before.SerialNumber)
	}

	clk.Set(before.NotAfter.Add(-time.Hour))
	r.check()
	after, _ := readDevCert(t, dataDir)
	if after.SerialNumber.Cmp(before.SerialNumber) == 0 {
		t.Fatal("dev-cert.pem not renewed before expiry")
	}
	if got := r.cert.Load().Leaf.SerialNumber; got.Cmp(after.SerialNumber) != 0 {
		t.Errorf("served serial %x, want the renewed %x", got, after.SerialNumber)
	}
	wantMode(t, filepath.Join(dataDir, "tls", "dev-key.pem"), 0o600)
}
