package tlsconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos-dev/custos/internal/testenv"
)

func TestReload(t *testing.T) {
	dir := t.TempDir()
	a, b := newPair(t, "pair A", "ECDSA"), newPair(t, "pair B", "ECDSA")
	certFile, keyFile := writePair(t, dir, a)
	var logs logBuffer
	r := mustLoad(t, Options{CertFile: certFile, KeyFile: keyFile, Log: logs.logger()})
	addr := serve(t, r.Config())

	if got, want := servedSerial(t, addr, a.leaf, b.leaf), a.leaf.SerialNumber; got.Cmp(want) != 0 {
		t.Fatalf("before reload: served serial %x, want pair A's %x", got, want)
	}
	writePair(t, dir, b)
	r.check()
	if got, want := servedSerial(t, addr, a.leaf, b.leaf), b.leaf.SerialNumber; got.Cmp(want) != 0 {
		t.Errorf("after reload: served serial %x, want pair B's %x", got, want)
	}
	if !strings.Contains(logs.String(), "TLS certificate reloaded") || !strings.Contains(logs.String(), "CN=pair B") {
		t.Errorf("log does not report the reload of pair B:\n%s", logs.String())
	}
}

// TestReloadKeepsCurrent breaks the pair on disk in the ways a renewal can
// go wrong or be caught half-way, and checks that the server goes on
// presenting the old certificate, then takes the new one once it is whole.
func TestReloadKeepsCurrent(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(t *testing.T, certFile, keyFile string, b testPair)
	}{
		{"new certificate, old key", func(t *testing.T, certFile, _ string, b testPair) {
			rewrite(t, certFile, b.certPEM)
		}},
		{"new key, old certificate", func(t *testing.T, _, keyFile string, b testPair) {
			rewrite(t, keyFile, b.keyPEM)
		}},
		{"certificate not PEM", func(t *testing.T, certFile, _ string, _ testPair) {
			rewrite(t, certFile, []byte("not a certificate"))
		}},
		{"certificate cut short", func(t *testing.T, certFile, _ string, b testPair) {
			rewrite(t, certFile, b.certPEM[:len(b.certPEM)/2])
		}},
		{"key empty", func(t *testing.T, _, keyFile string, _ testPair) {
			rewrite(t, keyFile, nil)
		}},
		{"key removed", func(t *testing.T, _, keyFile string, _ testPair) {
			if err := os.Remove(keyFile); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			a, b := newPair(t, "pair A", "ECDSA"), newPair(t, "pair B", "ECDSA")
			certFile, keyFile := writePair(t, dir, a)
			var logs logBuffer
			r := mustLoad(t, Options{CertFile: certFile, KeyFile: keyFile, Log: logs.logger()})
			addr := serve(t, r.Config())

			tc.break_(t, certFile, keyFile, b)
			r.check()
			if got, want := servedSerial(t, addr, a.leaf, b.leaf), a.leaf.SerialNumber; got.Cmp(want) != 0 {
				t.Errorf("after a broken replacement: served serial %x, want pair A's %x", got, want)
			}
			if !strings.Contains(logs.String(), "still serving the previous certificate") {
				t.Errorf("broken replacement not logged:\n%s", logs.String())
			}
			if strings.Contains(logs.String(), string(b.keyPEM)) || strings.Contains(logs.String(), "PRIVATE KEY") {
				t.Errorf("log shows key material:\n%s", logs.String())
			}

			writePair(t, dir, b)
			r.check()
			if got, want := servedSerial(t, addr, a.leaf, b.leaf), b.leaf.SerialNumber; got.Cmp(want) != 0 {
				t.Errorf("after the pair was made whole: served serial %x, want pair B's %x", got, want)
			}
		})
	}
}

// TestWatch leaves the reload to the watcher.
func TestWatch(t *testing.T) {
	dir := t.TempDir()
	a, b := newPair(t, "pair A", "ECDSA"), newPair(t, "pair B", "ECDSA")
	certFile, keyFile := writePair(t, dir, a)
	r := mustLoad(t, Options{CertFile: certFile, KeyFile: keyFile, interval: 5 * time.Millisecond})
	addr := serve(t, r.Config())

	writePair(t, dir, b)
	testenv.Poll(t, 10*time.Second, "the watcher picking up pair B", func() bool {
		return servedSerial(t, addr, a.leaf, b.leaf).Cmp(b.leaf.SerialNumber) == 0
	})

	// After Close the watcher is gone: a change is no longer picked up, and
	// the configs handed out still serve the last certificate.
	r.Close()
	r.Close()
	select {
	case <-r.done: // the watcher returned: nothing polls the files any more
	default:
		t.Fatal("Close returned with the watcher still running")
	}
	writePair(t, dir, a)
	if got, want := servedSerial(t, addr, a.leaf, b.leaf), b.leaf.SerialNumber; got.Cmp(want) != 0 {
		t.Errorf("after Close: served serial %x, want pair B's %x", got, want)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	a, b := newPair(t, "pair A", "ECDSA"), newPair(t, "pair B", "ECDSA")
	certA, keyA := writePair(t, filepath.Join(dir), a)
	keyB := filepath.Join(dir, "key-b.pem")
	rewrite(t, keyB, b.keyPEM)
	garbage := filepath.Join(dir, "garbage.pem")
	rewrite(t, garbage, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	missing := filepath.Join(dir, "missing.pem")

	tests := []struct {
		name string
		opts Options
		want []string // substrings of the error
	}{
		{"certificate without key", Options{CertFile: certA}, []string{certA, "without a key file"}},
		{"key without certificate", Options{KeyFile: keyA}, []string{keyA, "without a certificate file"}},
		{"nothing", Options{}, []string{"no TLS certificate"}},
		{"self-signed and files", Options{SelfSigned: true, DataDir: dir, CertFile: certA, KeyFile: keyA}, []string{"mutually exclusive"}},
		{"self-signed without data directory", Options{SelfSigned: true}, []string{"data directory"}},
		{"self-signed with an empty host", Options{SelfSigned: true, DataDir: dir, Hosts: []string{"localhost", ""}}, []string{"empty host"}},
		{"certificate missing", Options{CertFile: missing, KeyFile: keyA}, []string{missing, "no such file"}},
		{"key missing", Options{CertFile: certA, KeyFile: missing}, []string{missing, "no such file"}},
		{"key of another certificate", Options{CertFile: certA, KeyFile: keyB}, []string{certA, keyB, "does not match"}},
		{"certificate unparsable", Options{CertFile: garbage, KeyFile: keyA}, []string{garbage, keyA}},
		{"certificate and key swapped", Options{CertFile: keyA, KeyFile: certA}, []string{keyA, certA}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Load(tc.opts)
			if err == nil {
				r.Close()
				t.Fatalf("Load(%+v) succeeded, want an error", tc.opts)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Load error = %q, want it to mention %q", err, w)
				}
			}
		})
	}
}
