package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos-dev/custos/internal/pgtest"
	"github.com/custos-dev/custos/internal/testenv"
)

// pgConfig is a server configuration on two fresh PostgreSQL databases,
// one for the data and one for the keys.
func pgConfig(t *testing.T) serverConfig {
	t.Helper()
	cfg := newServerConfig(t)
	cfg.extraArgs = []string{"--store", pgtest.NewDatabase(t), "--keys", pgtest.NewDatabase(t)}
	return cfg
}

// TestServeOnPostgres runs one node on PostgreSQL through the whole
// stack: it logs the store it uses, stores and reads back events, is
// ready, exposes pool metrics, and a restart finds everything again.
func TestServeOnPostgres(t *testing.T) {
	cfg := pgConfig(t)
	srv := startServer(t, cfg)
	if !strings.Contains(string(srv.logs.Bytes()), `"engine":"postgres"`) {
		t.Errorf("serve on PostgreSQL does not log the engine it uses; log:\n%s", srv.logs.Bytes())
	}
	ten := srv.createTenant(t, "pg")
	user := "pg-" + randomHex(6)
	res := srv.ingest(t, ten.WriteKey, "/v1/batch", batchBody(t, "", trackMessages(user, "m-"+randomHex(4), 5)))
	if res.Accepted != 5 {
		t.Errorf("first batch: %+v, want 5 accepted", res)
	}
	prof := srv.findProfile(t, ten.SecretKey, "user_id", user)
	if n := len(srv.events(t, ten.SecretKey, prof.SubjectID, 2)); n != 5 {
		t.Errorf("events on PostgreSQL = %d, want 5", n)
	}
	if r := srv.do(t, "GET", "/readyz", nil); r.status != http.StatusOK {
		t.Errorf("GET /readyz = %d %s, want 200", r.status, r.body)
	}
	m := srv.do(t, "GET", "/metrics", nil, "Authorization", "Bearer "+srv.cfg.token)
	if m.status != http.StatusOK {
		t.Fatalf("GET /metrics = %d %s", m.status, m.body)
	}
	for _, series := range []string{`custos_db_pool_max_connections{database="data"}`, `custos_db_pool_max_connections{database="keys"}`, `custos_store_query_seconds_count{outcome="ok"}`} {
		if !strings.Contains(string(m.body), series) {
			t.Errorf("metrics lack %s", series)
		}
	}
	// Cut the data database off: the node is not ready until it is back.
	name := pgtest.Name(t, cfg.extraArgs[1])
	pgtest.Admin(t, "ALTER DATABASE "+name+" ALLOW_CONNECTIONS false",
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '"+name+"'")
	if r := srv.do(t, "GET", "/readyz", nil); r.status != http.StatusServiceUnavailable {
		t.Errorf("GET /readyz with the database unreachable = %d %s, want 503", r.status, r.body)
	}
	r := srv.do(t, "POST", "/v1/batch", batchBody(t, "", trackMessages(user, "cut-"+randomHex(4), 1)), "Authorization", basicAuth(ten.WriteKey), "Content-Type", "application/json")
	if r.status < 500 {
		t.Errorf("POST /v1/batch with the database unreachable = %d %s, want a 5xx (clients retry those)", r.status, r.body)
	}
	pgtest.Admin(t, "ALTER DATABASE "+name+" ALLOW_CONNECTIONS true")
	// Back within the connection breaker's holdoff (a quarter second).
	testenv.Poll(t, 5*time.Second, "GET /readyz answering 200 with the database back", func() bool {
		return srv.do(t, "GET", "/readyz", nil).status == http.StatusOK
	})
	if res := srv.ingest(t, ten.WriteKey, "/v1/batch", batchBody(t, "", trackMessages(user, "back-"+randomHex(4), 2))); res.Accepted != 2 {
		t.Errorf("with the database back: %+v, want 2 accepted", res)
	}
	srv.stop(t)

	srv = startServer(t, cfg)
	if n := len(srv.events(t, ten.SecretKey, prof.SubjectID, 0)); n != 7 {
		t.Errorf("events after a restart = %d, want 7", n)
	}
	// The same batch again is recognised as a retry.
	res = srv.ingest(t, ten.WriteKey, "/v1/batch", batchBody(t, "", trackMessages(user, "again-"+randomHex(4), 1)))
	if res.Accepted != 1 {
		t.Errorf("after restart: %+v, want 1 accepted", res)
	}
}

// TestServeRefusesSharedOrForeignDatabases checks the refusals a node
// makes before serving: the data and keys in one database, and a key
// database written with another master key, each with an error that
// says what is wrong.
func TestServeRefusesSharedOrForeignDatabases(t *testing.T) {
	db := pgtest.NewDatabase(t)
	cfg := newServerConfig(t)
	err := run(context.Background(), []string{"serve", "--addr", "127.0.0.1:0", "--data", cfg.dir, "--store", db, "--keys", db}, cfg.getenv(), strings.NewReader(""), &strings.Builder{}, &strings.Builder{})
	if err == nil || !strings.Contains(err.Error(), "separate database") {
		t.Errorf("serve with --store and --keys on one database = %v, want an error asking for a separate database", err)
	}

	first := pgConfig(t)
	srv := startServer(t, first)
	srv.stop(t)
	other := first
	key := make([]byte, 32)
	rand.Read(key)
	other.masterKey = base64.StdEncoding.EncodeToString(key)
	other.dir = t.TempDir()
	err = run(context.Background(), other.args("127.0.0.1:0"), other.getenv(), strings.NewReader(""), &strings.Builder{}, &strings.Builder{})
	if err == nil || !strings.Contains(err.Error(), "another master key") {
		t.Errorf("serve with another master key on the same key database = %v, want an error saying it was written with another master key", err)
	}
}

// TestMigrateCommand runs `custos migrate` twice on new databases.
func TestMigrateCommand(t *testing.T) {
	data, keys := pgtest.NewDatabase(t), pgtest.NewDatabase(t)
	var out strings.Builder
	if err := run(context.Background(), []string{"migrate", "--store", data, "--keys", keys}, func(string) string { return "" }, strings.NewReader(""), &out, &out); err != nil {
		t.Fatalf("custos migrate = %v; output %s", err, out.String())
	}
	if got := out.String(); strings.Count(got, "applied migrations 0001") != 2 {
		t.Errorf("first custos migrate said %q, want migration 0001 applied to both databases", got)
	}
	out.Reset()
	if err := run(context.Background(), []string{"migrate", "--store", data, "--keys", keys}, func(string) string { return "" }, strings.NewReader(""), &out, &out); err != nil {
		t.Fatalf("second custos migrate = %v", err)
	}
	if got := out.String(); strings.Count(got, "up to date") != 2 {
		t.Errorf("second custos migrate said %q, want both up to date", got)
	}
	if err := run(context.Background(), []string{"migrate", "--store", data, "--keys", data}, func(string) string { return "" }, strings.NewReader(""), &out, &out); err == nil || !strings.Contains(err.Error(), "separate database") {
		t.Errorf("custos migrate with one database for both = %v, want an error asking for a separate database", err)
	}
}

// TestBackupRefusedOnPostgres: custos backup and restore copy the
// embedded store only; on PostgreSQL each refuses with a message that
// names PostgreSQL's own tools, and writes nothing.
func TestBackupRefusedOnPostgres(t *testing.T) {
	cfg := pgConfig(t)
	srv := startServer(t, cfg)
	dir := filepath.Join(t.TempDir(), "backup")
	_, err := cli(t, cfg.token, "backup", "--server", srv.URL, "--to", dir)
	if err == nil || !strings.Contains(err.Error(), "PostgreSQL") || !strings.Contains(err.Error(), "pg_basebackup") {
		t.Errorf("custos backup on PostgreSQL: %v; want a refusal naming PostgreSQL's tools", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("refused backup left %s behind (stat: %v)", dir, err)
	}
	_, err = cli(t, cfg.token, "restore", "--from", t.TempDir(), "--store", cfg.extraArgs[1])
	if err == nil || !strings.Contains(err.Error(), "PostgreSQL") || !strings.Contains(err.Error(), "pg_restore") {
		t.Errorf("custos restore onto PostgreSQL: %v; want a refusal naming PostgreSQL's tools", err)
	}
}
