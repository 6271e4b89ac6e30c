package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// cli runs `custos <args>` through run() with only the operator token in
// the environment, and returns its stdout.
func cli(t *testing.T, token string, args ...string) (stdout string, err error) {
	t.Helper()
	env := map[string]string{"CUSTOS_OPERATOR_TOKEN": token}
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, func(k string) string { return env[k] }, strings.NewReader(""), &out, &errOut)
	return out.String(), err
}

// TestTenantCLI drives `custos tenant create|list|rotate-keys` against a
// running server.
func TestTenantCLI(t *testing.T) {
	t.Parallel()
	srv := startServer(t, newServerConfig(t))
	token := srv.cfg.token

	out, err := cli(t, token, "tenant", "create", "--name", "x", "--json", "--server", srv.URL)
	if err != nil {
		t.Fatalf("tenant create: %v", err)
	}
	var created tenantInfo
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("tenant create --json printed %q: %v", out, err)
	}
	if created.ID == "" || created.Name != "x" || created.Region != "eu" || created.CreatedAt.IsZero() ||
		!strings.HasPrefix(created.WriteKey, "wk_") || !strings.HasPrefix(created.SecretKey, "sk_") {
		t.Fatalf("tenant create --json = %s, want id, name x, region eu, created_at, wk_ and sk_ keys", out)
	}

	out, err = cli(t, token, "tenant", "list", "--json", "--server", srv.URL)
	if err != nil {
		t.Fatalf("tenant list: %v", err)
	}
	var listed []tenantInfo
	if err := json.Unmarshal([]byte(out), &listed); err != nil {
		t.Fatalf("tenant list --json printed %q: %v", out, err)
	}
	if len(listed) != 1 || listed[0].ID != created.ID || listed[0].Name != "x" || !listed[0].CreatedAt.Equal(created.CreatedAt) {
		t.Errorf("tenant list --json = %s, want the one tenant %s named x", out, created.ID)
	}
	if strings.Contains(out, created.WriteKey) || strings.Contains(out, created.SecretKey) {
		t.Errorf("tenant list shows keys: %s", out)
	}
	out, err = cli(t, token, "tenant", "list", "--server", srv.URL)
	if err != nil || !strings.Contains(out, created.ID) || !strings.Contains(out, "NAME") {
		t.Errorf("tenant list (table) = %q, %v; want a table with the tenant's id", out, err)
	}

	// The keys work: ingest with the write key, read with the secret key.
	user := "cli-" + randomHex(6)
	if res := srv.ingest(t, created.WriteKey, "/v1/batch", batchBody(t, "", trackMessages(user, "cli-before-"+randomHex(4), 2))); res.Accepted != 2 {
		t.Fatalf("ingest with the new tenant's write key: %+v", res)
	}
	before := srv.findProfile(t, created.SecretKey, "user_id", user)

	out, err = cli(t, token, "tenant", "rotate-keys", created.ID, "--json", "--server", srv.URL)
	if err != nil {
		t.Fatalf("tenant rotate-keys: %v", err)
	}
	var rotated tenantInfo
	if err := json.Unmarshal([]byte(out), &rotated); err != nil {
		t.Fatalf("tenant rotate-keys --json printed %q: %v", out, err)
	}
	if rotated.ID != created.ID || rotated.WriteKey == "" || rotated.SecretKey == "" ||
		rotated.WriteKey == created.WriteKey || rotated.SecretKey == created.SecretKey {
		t.Fatalf("tenant rotate-keys = %s, want new keys for %s", out, created.ID)
	}

	oldBatch := batchBody(t, "", trackMessages(user, "cli-old-key-"+randomHex(4), 1))
	r := srv.do(t, "POST", "/v1/batch", oldBatch, "Authorization", basicAuth(created.WriteKey))
	if r.status != http.StatusUnauthorized {
		t.Errorf("old write key after rotation: status %d, body %s, want 401", r.status, r.body)
	}
	if r := srv.lookup(t, created.SecretKey, "user_id", user); r.status != http.StatusUnauthorized {
		t.Errorf("old secret key after rotation: status %d, body %s, want 401", r.status, r.body)
	}
	if res := srv.ingest(t, rotated.WriteKey, "/v1/batch", batchBody(t, "", trackMessages(user, "cli-new-key-"+randomHex(4), 1))); res.Accepted != 1 {
		t.Errorf("new write key: %+v, want 1 accepted", res)
	}
	after := srv.findProfile(t, rotated.SecretKey, "user_id", user)
	if after.SubjectID != before.SubjectID {
		t.Errorf("subject read with the new secret key = %s, want %s", after.SubjectID, before.SubjectID)
	}
	if n := len(srv.events(t, rotated.SecretKey, after.SubjectID, 0)); n != 3 {
		t.Errorf("events after rotation: %d, want 3 (2 before, 1 after; none with the old key)", n)
	}
	out, err = cli(t, token, "tenant", "list", "--json", "--server", srv.URL)
	if err != nil || !strings.Contains(out, `"id":"`+created.ID) {
		t.Errorf("tenant list after rotation = %q, %v", out, err)
	}

	// Failures are errors naming the cause.
	if _, err := cli(t, "wrong-token", "tenant", "create", "--name", "y", "--json", "--server", srv.URL); err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "operator token") {
		t.Errorf("tenant create with a wrong token: %v, want an error with 401 and the server's message", err)
	}
	if _, err := cli(t, token, "tenant", "create", "--json", "--server", srv.URL); err == nil || !strings.Contains(err.Error(), "--name") {
		t.Errorf("tenant create without --name: %v, want an error naming --name", err)
	}
	if _, err := cli(t, token, "tenant", "rotate-keys", strings.Repeat("ab", 16), "--server", srv.URL); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("rotate-keys of an unknown tenant: %v, want a 404 error", err)
	}
	out, err = cli(t, token, "tenant", "list", "--json", "--server", srv.URL)
	if err != nil || strings.Count(out, `"id"`) != 1 {
		t.Errorf("after failed commands, tenant list = %q, %v; want still one tenant", out, err)
	}
}

// TestServeZeroConfig starts `custos serve` with neither an operator token
// nor a master key in the environment, as a newcomer would: the server
// makes both in the data directory, says where the token is, and the
// tenant CLI finds the token through --data. A restart reuses both.
func TestServeZeroConfig(t *testing.T) {
	t.Parallel()
	cfg := newServerConfig(t)
	cfg.token, cfg.masterKey = "", ""
	srv := startServer(t, cfg)
	var tokenPath string
	var warned bool
	for _, rec := range jsonLines(srv.logs.Bytes()) {
		if rec["msg"] == "operator token" {
			tokenPath, _ = rec["path"].(string)
		}
		if rec["level"] == "WARN" && strings.Contains(fmt.Sprint(rec["msg"]), "master key") {
			warned = true
		}
	}
	if !strings.HasPrefix(tokenPath, cfg.dir) {
		t.Errorf("operator token path logged as %q, want a file in %s", tokenPath, cfg.dir)
	}
	if !warned {
		t.Errorf("no warning about a master key kept in the data directory; log:\n%s", srv.logs.Bytes())
	}
	out, err := cli(t, "", "tenant", "create", "--name", "zero", "--json", "--server", srv.URL, "--data", cfg.dir)
	if err != nil {
		t.Fatalf("tenant create with the token from --data: %v", err)
	}
	var tn tenantInfo
	if err := json.Unmarshal([]byte(out), &tn); err != nil || tn.WriteKey == "" {
		t.Fatalf("tenant create printed %q (%v)", out, err)
	}
	user := "zero-" + randomHex(6)
	srv.ingest(t, tn.WriteKey, "/v1/batch", batchBody(t, "", trackMessages(user, "zero-"+randomHex(4), 2)))
	srv.stop(t)

	srv2 := startServer(t, cfg)
	if out, err := cli(t, "", "tenant", "list", "--json", "--server", srv2.URL, "--data", cfg.dir); err != nil || !strings.Contains(out, tn.ID) {
		t.Errorf("tenant list after restart with the token from --data: %q, %v", out, err)
	}
	p := srv2.findProfile(t, tn.SecretKey, "user_id", user)
	if n := len(srv2.events(t, tn.SecretKey, p.SubjectID, 0)); n != 2 {
		t.Errorf("after restart with the generated master key: %d events, want 2", n)
	}
	if _, err := cli(t, "", "tenant", "list", "--server", srv2.URL, "--data", t.TempDir()); err == nil || !strings.Contains(err.Error(), "operator token") {
		t.Errorf("tenant list with no token anywhere: %v, want an error about the operator token", err)
	}
}
