package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestBackupRestoreKeepsErasuresErased: a backup taken online while
// ingestion goes on, a subject erased after it, the backup restored: the
// erased subject stays unreadable (its key is shredded in the current key
// store) and a new event of it starts afresh; every other subject and
// every event acknowledged before the backup is back.
func TestBackupRestoreKeepsErasuresErased(t *testing.T) {
	t.Parallel()
	cfg := newServerConfig(t)
	srv := startServer(t, cfg)
	tn := srv.createTenant(t, "backed-up")

	users := make([]string, 6)
	acked := map[string][]string{} // user -> message ids acknowledged before the backup
	for i := range users {
		users[i] = fmt.Sprintf("bk-%d-%s", i, randomHex(4))
		prefix := "m-" + randomHex(6)
		res := srv.ingest(t, tn.WriteKey, "/v1/batch", batchBody(t, "", trackMessages(users[i], prefix, 3)))
		if res.Accepted != 3 {
			t.Fatalf("ingest %s: %+v", users[i], res)
		}
		for j := range 3 {
			acked[users[i]] = append(acked[users[i]], fmt.Sprintf("%s-%d", prefix, j))
		}
	}

	// Ingestion goes on during the backup.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var during atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			r := srv.do(t, "POST", "/v1/batch", batchBody(t, "", trackMessages("live-"+randomHex(4), "l-"+randomHex(6), 5)),
				"Authorization", basicAuth(tn.WriteKey), "Content-Type", "application/json")
			if r.status != 200 {
				t.Errorf("ingest during the backup: %d %s", r.status, r.body)
				return
			}
			during.Add(1)
		}
	}()
	time.Sleep(100 * time.Millisecond)
	dir := filepath.Join(t.TempDir(), "backup")
	out, err := cli(t, cfg.token, "backup", "--server", srv.URL, "--to", dir)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("custos backup: %v\n%s", err, out)
	}
	if !strings.Contains(out, "checkpointed") || !strings.Contains(out, "backup written to") {
		t.Errorf("backup output shows no progress:\n%s", out)
	}
	if during.Load() == 0 {
		t.Error("no batch was acknowledged while the backup ran")
	}
	// The backup holds the data store and its manifest, no key store.
	es, _ := os.ReadDir(dir)
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "custos-backup.json,store" {
		t.Errorf("backup directory holds %v, want only the manifest and store", names)
	}
	if _, err := cli(t, cfg.token, "backup", "--server", srv.URL, "--to", dir); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("a second backup into the same directory: %v, want refused as not empty", err)
	}

	// After the backup: erase one subject, and the others carry on.
	erased := users[0]
	erasedProfile := srv.findProfile(t, tn.SecretKey, "user_id", erased)
	res := srv.do(t, "POST", "/api/v1/requests", []byte(`{"type":"erasure","identity":{"type":"user_id","value":"`+erased+`"}}`), "Authorization", "Bearer "+tn.SecretKey)
	var req map[string]any
	json.Unmarshal(res.body, &req)
	if res.status != 201 || req["status"] != "completed" {
		t.Fatalf("erasure: %d %s", res.status, res.body)
	}
	srv.stop(t)

	// Restore: refused over a store that is not empty, unless forced.
	if out, err := cli(t, "", "restore", "--from", dir, "--data", cfg.dir); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("restore over a non-empty store: %v\n%s, want refused naming --force", err, out)
	}
	if out, err := cli(t, "", "restore", "--from", dir, "--data", cfg.dir, "--keys", filepath.Join(t.TempDir(), "none"), "--force"); err == nil || !strings.Contains(err.Error(), "key store") {
		t.Fatalf("restore without the key store: %v\n%s, want refused", err, out)
	}
	out, err = cli(t, "", "restore", "--from", dir, "--data", cfg.dir, "--force")
	if err != nil || !strings.Contains(out, "restore complete") {
		t.Fatalf("restore: %v\n%s", err, out)
	}

	srv = startServer(t, cfg)
	// The erased subject stays erased: its records came back, its key did not.
	if r := srv.lookup(t, tn.SecretKey, "user_id", erased); r.status != 404 {
		t.Errorf("erased subject after restore: %d %s, want 404", r.status, r.body)
	}
	if r := srv.do(t, "GET", "/api/v1/profiles/"+erasedProfile.SubjectID+"/events", nil, "Authorization", "Bearer "+tn.SecretKey); r.status != 404 {
		t.Errorf("erased subject's events after restore: %d %s, want 404", r.status, r.body)
	}
	// Every other subject and every event acknowledged before the backup is back.
	for _, u := range users[1:] {
		p := srv.findProfile(t, tn.SecretKey, "user_id", u)
		got := byMessageID(t, srv.events(t, tn.SecretKey, p.SubjectID, 0))
		for _, id := range acked[u] {
			if _, ok := got[id]; !ok {
				t.Errorf("event %s of %s acknowledged before the backup is missing after restore", id, u)
			}
		}
	}
	// A late event of the erased user starts a new subject: none of the
	// erased events come back with it.
	srv.ingest(t, tn.WriteKey, "/v1/batch", batchBody(t, "", trackMessages(erased, "late-"+randomHex(4), 1)))
	p := srv.findProfile(t, tn.SecretKey, "user_id", erased)
	if p.SubjectID == erasedProfile.SubjectID {
		t.Errorf("the late event joined the erased subject %s", p.SubjectID)
	}
	evs := srv.events(t, tn.SecretKey, p.SubjectID, 0)
	for _, e := range evs {
		for _, id := range acked[erased] {
			if e.MessageID == id {
				t.Errorf("erased event %s readable again after restore", id)
			}
		}
	}
	if len(evs) != 1 {
		t.Errorf("the erased user's new subject has %d events, want only the late one", len(evs))
	}
}
