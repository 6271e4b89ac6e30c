package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos-dev/custos/internal/pgtest"
)

// TestRotateMasterKeyOnPostgres rotates the master key of a node whose
// keys are in PostgreSQL: the tenant keys and the key epochs move to the
// new key (twice, as after an interruption, without harm), the node
// starts with the new key and reads what it stored, and refuses the old
// key with an error naming the master key.
func TestRotateMasterKeyOnPostgres(t *testing.T) {
	cfg := newServerConfig(t)
	cfg.extraArgs = []string{"--store", pgtest.NewDatabase(t), "--keys", pgtest.NewDatabase(t)}
	srv := startServer(t, cfg)
	tn := srv.createTenant(t, "rotating")
	user := "rot-" + randomHex(6)
	srv.ingest(t, tn.WriteKey, "/v1/batch", batchBody(t, "", trackMessages(user, "rot-"+randomHex(4), 3)))
	before := srv.findProfile(t, tn.SecretKey, "user_id", user)
	srv.stop(t)

	newKey := bytes.Repeat([]byte{0x5a}, 32)
	keyFile := filepath.Join(t.TempDir(), "new.key")
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(newKey)), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"CUSTOS_MASTER_KEY": cfg.masterKey}
	args := append([]string{"keys", "rotate-master", "--data", cfg.dir, "--new-key-file", keyFile}, cfg.extraArgs...)
	for i := range 2 {
		var out, errOut bytes.Buffer
		if err := run(context.Background(), args, func(k string) string { return env[k] }, strings.NewReader(""), &out, &errOut); err != nil {
			t.Fatalf("keys rotate-master (run %d): %v\n%s", i+1, err, errOut.String())
		}
	}

	old := cfg
	cfg.masterKey = base64.StdEncoding.EncodeToString(newKey)
	srv = startServer(t, cfg)
	after := srv.findProfile(t, tn.SecretKey, "user_id", user)
	if after.SubjectID != before.SubjectID || len(srv.events(t, tn.SecretKey, after.SubjectID, 10)) != 3 {
		t.Errorf("after rotation: subject %s with its 3 events, want %s", after.SubjectID, before.SubjectID)
	}
	srv.stop(t)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, logs bytes.Buffer
	err := run(ctx, old.args("127.0.0.1:0"), old.getenv(), strings.NewReader(""), &out, &logs)
	if err == nil || !strings.Contains(err.Error(), "another master key") {
		t.Errorf("start with the old master key: err = %v, want a refusal naming the master key", err)
	}
}
