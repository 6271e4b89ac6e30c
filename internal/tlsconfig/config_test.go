package tlsconfig

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestHandshakePolicy runs real handshakes against the served
// configuration, for an ECDSA and an RSA certificate, since the key type
// decides which TLS 1.2 suites a server could pick.
func TestHandshakePolicy(t *testing.T) {
	cbc := []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
	}
	rsaKeyExchange := []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_AES_256_GCM_SHA384}
	chacha := []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256}

	tests := []struct {
		name    string
		client  func(*tls.Config)
		want    uint16 // negotiated version, if the server accepts
		refusal string // the alert the server refuses with, if it does
		wantKEX tls.CurveID
	}{
		{name: "TLS 1.1 client refused", client: func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS11 }, refusal: "protocol version not supported"},
		{name: "TLS 1.2 client", client: func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 }, want: tls.VersionTLS12},
		{name: "TLS 1.3 client", client: func(c *tls.Config) { c.MinVersion = tls.VersionTLS13 }, want: tls.VersionTLS13},
		{name: "default client gets TLS 1.3 and post-quantum key exchange", client: func(*tls.Config) {}, want: tls.VersionTLS13, wantKEX: tls.X25519MLKEM768},
		{name: "TLS 1.2 X25519", client: func(c *tls.Config) {
			c.MaxVersion, c.CurvePreferences = tls.VersionTLS12, []tls.CurveID{tls.X25519}
		}, want: tls.VersionTLS12, wantKEX: tls.X25519},
		{name: "TLS 1.2 P-256", client: func(c *tls.Config) {
			c.MaxVersion, c.CurvePreferences = tls.VersionTLS12, []tls.CurveID{tls.CurveP256}
		}, want: tls.VersionTLS12, wantKEX: tls.CurveP256},
		{name: "TLS 1.2 ChaCha20-Poly1305", client: func(c *tls.Config) {
			c.MaxVersion, c.CipherSuites = tls.VersionTLS12, chacha
		}, want: tls.VersionTLS12},
		{name: "TLS 1.2 CBC suites only refused", client: func(c *tls.Config) {
			c.MaxVersion, c.CipherSuites = tls.VersionTLS12, cbc
		}, refusal: "handshake failure"},
		{name: "TLS 1.2 RSA key exchange only refused", client: func(c *tls.Config) {
			c.MaxVersion, c.CipherSuites = tls.VersionTLS12, rsaKeyExchange
		}, refusal: "handshake failure"},
		{name: "TLS 1.2 P-384 only refused", client: func(c *tls.Config) {
			c.MaxVersion, c.CurvePreferences = tls.VersionTLS12, []tls.CurveID{tls.CurveP384}
		}, refusal: "handshake failure"},
		{name: "TLS 1.3 P-384 only refused", client: func(c *tls.Config) {
			c.MinVersion, c.CurvePreferences = tls.VersionTLS13, []tls.CurveID{tls.CurveP384}
		}, refusal: "handshake failure"},
	}
	for _, keyType := range []string{"ECDSA", "RSA"} {
		t.Run(keyType, func(t *testing.T) {
			p := newPair(t, "policy", keyType)
			certFile, keyFile := writePair(t, t.TempDir(), p)
			addr := serve(t, mustLoad(t, Options{CertFile: certFile, KeyFile: keyFile}).Config())
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					cfg := clientFor(p.leaf)
					tc.client(cfg)
					st, err := handshake(t, addr, cfg)
					if tc.refusal != "" {
						wantRefused(t, err, tc.refusal)
						return
					}
					if err != nil {
						t.Fatalf("handshake: %v", err)
					}
					if st.Version != tc.want {
						t.Errorf("version = %s, want %s", tls.VersionName(st.Version), tls.VersionName(tc.want))
					}
					if st.Version == tls.VersionTLS12 && !slices.Contains(cipherSuites(), st.CipherSuite) {
						t.Errorf("cipher suite = %s, not one of the allowed ECDHE AEAD suites", tls.CipherSuiteName(st.CipherSuite))
					}
					if tc.wantKEX != 0 && st.CurveID != tc.wantKEX {
						t.Errorf("key exchange = %s, want %s", st.CurveID, tc.wantKEX)
					}
				})
			}
		})
	}
}

// wantRefused checks that a handshake failed because the server sent the
// alert named, not because the client gave up on its own configuration
// first. The alert matters: a server accepting TLS 1.1 would still refuse a
// TLS 1.1 client for want of a TLS 1.1 cipher suite, but with a handshake
// failure instead of protocol version not supported.
func wantRefused(t *testing.T, err error, alert string) {
	t.Helper()
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "remote error" || !strings.HasSuffix(op.Err.Error(), alert) {
		t.Errorf("handshake error = %v, want the server to refuse with alert %q", err, alert)
	}
}

func TestALPN(t *testing.T) {
	p := newPair(t, "alpn", "ECDSA")
	certFile, keyFile := writePair(t, t.TempDir(), p)
	addr := serve(t, mustLoad(t, Options{CertFile: certFile, KeyFile: keyFile}).Config())
	tests := []struct {
		name      string
		http2     bool
		wantProto string
	}{
		{name: "h2", http2: true, wantProto: "HTTP/2.0"},
		{name: "http/1.1", http2: false, wantProto: "HTTP/1.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := &http.Transport{TLSClientConfig: clientFor(p.leaf), ForceAttemptHTTP2: tc.http2}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr}).Get("https://" + addr + "/")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Proto != tc.wantProto || string(body) != tc.wantProto {
				t.Errorf("client saw %s, server saw %s, want %s", resp.Proto, body, tc.wantProto)
			}
		})
	}
}
