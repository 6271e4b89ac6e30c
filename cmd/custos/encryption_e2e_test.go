package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRotateMasterKey rotates the master key of a stopped node with the
// CLI: afterwards the node starts with the new key and reads everything,
// and refuses the old one.
func TestRotateMasterKey(t *testing.T) {
	t.Parallel()
	cfg := newServerConfig(t)
	srv := startServer(t, cfg)
	tn := srv.createTenant(t, "rotating")
	user := "rot-" + randomHex(6)
	srv.ingest(t, tn.WriteKey, "/v1/batch", batchBody(t, "", trackMessages(user, "rot-"+randomHex(4), 3)))
	before := srv.findProfile(t, tn.SecretKey, "user_id", user)
	srv.stop(t)

	newKey := make([]byte, 32)
	for i := range newKey {
		newKey[i] = byte(i * 7)
	}
	keyFile := filepath.Join(t.TempDir(), "new.key")
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(newKey)), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"CUSTOS_MASTER_KEY": cfg.masterKey}
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"keys", "rotate-master", "--data", cfg.dir, "--new-key-file", keyFile},
		func(k string) string { return env[k] }, strings.NewReader(""), &out, &errOut)
	if err != nil {
		t.Fatalf("keys rotate-master: %v\n%s", err, errOut.String())
	}
	// Running it again (as after an interruption) changes nothing and succeeds.
	if err := run(context.Background(), []string{"keys", "rotate-master", "--data", cfg.dir, "--new-key-file", keyFile},
		func(k string) string { return env[k] }, strings.NewReader(""), &out, &errOut); err != nil {
		t.Fatalf("second keys rotate-master: %v", err)
	}

	old := cfg
	cfg.masterKey = base64.StdEncoding.EncodeToString(newKey)
	srv = startServer(t, cfg)
	if ops := srv.do(t, "GET", "/admin/v1/audit", nil, "Authorization", "Bearer "+cfg.token); !strings.Contains(string(ops.body), "keys.rotate_master") {
		t.Errorf("the operator's audit chain lacks the master key rotation: %s", ops.body)
	}
	after := srv.findProfile(t, tn.SecretKey, "user_id", user)
	if after.SubjectID != before.SubjectID || len(srv.events(t, tn.SecretKey, after.SubjectID, 10)) != 3 {
		t.Errorf("after rotation: subject %s with its 3 events, want %s", after.SubjectID, before.SubjectID)
	}
	srv.stop(t)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var logs bytes.Buffer
	err = run(ctx, old.args("127.0.0.1:0"), old.getenv(), strings.NewReader(""), &out, &logs)
	if err == nil || !strings.Contains(err.Error(), "master key does not match") {
		t.Errorf("start with the old master key: err = %v, want a refusal naming the master key", err)
	}
}

// TestServeTLS serves HTTPS with a development certificate: TLS 1.2 and
// 1.3 clients connect and get Strict-Transport-Security; a TLS 1.1 client
// is refused.
func TestServeTLS(t *testing.T) {
	t.Parallel()
	cfg := newServerConfig(t)
	cfg.extraArgs = []string{"--tls-self-signed"}
	srv := startServer(t, cfg)
	url := strings.Replace(srv.URL, "http://", "https://", 1) + "/healthz"
	for _, c := range []struct {
		name     string
		min, max uint16
		ok       bool
	}{
		{"TLS 1.1", tls.VersionTLS10, tls.VersionTLS11, false},
		{"TLS 1.2", tls.VersionTLS12, tls.VersionTLS12, true},
		{"TLS 1.3", tls.VersionTLS13, tls.VersionTLS13, true},
	} {
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{MinVersion: c.min, MaxVersion: c.max, InsecureSkipVerify: true}, // a dev certificate
		}}
		resp, err := client.Get(url)
		if !c.ok {
			if err == nil {
				resp.Body.Close()
				t.Errorf("%s client: connected (%s), want the handshake refused", c.name, resp.Status)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s client: %v", c.name, err)
			continue
		}
		resp.Body.Close()
		if resp.TLS == nil || resp.TLS.Version != c.max {
			t.Errorf("%s client: negotiated %+v", c.name, resp.TLS)
		}
		if h := resp.Header.Get("Strict-Transport-Security"); !strings.Contains(h, "max-age=") {
			t.Errorf("%s client: Strict-Transport-Security = %q, want max-age", c.name, h)
		}
	}
	if _, err := os.Stat(filepath.Join(cfg.dir, "tls", "dev-cert.pem")); err != nil {
		t.Errorf("no development certificate in the data directory: %v", err)
	}
}
