package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/pgtest"
	"github.com/custos-dev/custos/internal/testenv"
	"github.com/jackc/pgx/v5"
)

// scanCluster reads every file under dir (a PostgreSQL data directory:
// base, global, pg_wal, pg_xact, …) and returns, for each needle found,
// the files (relative to dir) holding it.
func scanCluster(t *testing.T, dir string, needles map[string][]byte) map[string][]string {
	t.Helper()
	found := map[string][]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // a file the server removed while we walked
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(path)
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		for name, n := range needles {
			if len(n) > 0 && bytes.Contains(b, n) {
				found[name] = append(found[name], rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("scan %s: %v", dir, err)
	}
	return found
}

// storedKey reads, from the key database, the stored (sealed) key of a
// subject.
func storedKey(t *testing.T, url string, s custos.SubjectID) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	var stored []byte
	if err := c.QueryRow(ctx, "SELECT wrapped FROM subject_keys WHERE subject_id = $1", s[:]).Scan(&stored); err != nil {
		t.Fatalf("the stored key of subject %s: %v", s, err)
	}
	return stored
}

// epochRows reads every epoch key row (sealed epoch keys) there is now.
func epochRows(t *testing.T, url string) map[int64][]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	rows, err := c.Query(ctx, "SELECT epoch, wrapped FROM key_epochs")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[int64][]byte{}
	for rows.Next() {
		var e int64
		var w []byte
		if err := rows.Scan(&e, &w); err != nil {
			t.Fatal(err)
		}
		out[e] = w
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestErasureOnPostgresByteScan runs a node on a throwaway PostgreSQL
// cluster (data and keys databases; WAL segments removed, not recycled,
// and none kept beyond the checkpoint) with a short --key-epoch, and reads
// the cluster's files byte by byte:
//
//   - the canary scan: no trait or event property of either person sent
//     is anywhere in the cluster, before or after the erasure (values are
//     sealed with the subject's key; identifiers are keyed hashes);
//   - the shredded-key scan: after one person is erased and the key epoch
//     the erasure fell in has been rotated out and purged (the bound,
//     forced by the node itself), no epoch key that existed at the erasure
//     is left in any file of the cluster — heap, indexes, WAL — and that
//     person's key as stored is in none either, except possibly in freed
//     space of a subject_keys page, sealed under one of those epoch keys;
//
// and the other person's data, whose key was re-sealed by every rotation,
// is still readable after a restart of the node.
func TestErasureOnPostgresByteScan(t *testing.T) {
	pg := pgtest.NewServer(t, "erasure", "wal_recycle = off\nwal_keep_size = 0\nmin_wal_size = 32MB\nmax_wal_size = 64MB")
	pg.Exec(t, "postgres", "CREATE DATABASE custos_data", "CREATE DATABASE custos_keys")
	keysURL := pg.URL("custos_keys")
	cfg := newServerConfig(t)
	cfg.extraArgs = []string{"--store", pg.URL("custos_data"), "--keys", keysURL, "--key-epoch", "3s"}
	srv := startServer(t, cfg)
	ten := srv.createTenant(t, "scan")

	// The scanner sees what the server writes: a marker written through SQL
	// is found once checkpointed.
	marker := "scan-marker-" + randomHex(16)
	pg.Exec(t, "custos_keys", "CREATE TABLE scan_marker (v text)", "INSERT INTO scan_marker VALUES ('"+marker+"')", "CHECKPOINT")
	if found := scanCluster(t, pg.Dir, map[string][]byte{"marker": []byte(marker)}); len(found["marker"]) == 0 {
		t.Fatalf("the scanner did not find a row written by SQL in %s: it reads nothing", pg.Dir)
	}

	type person struct {
		user     string
		canaries []string
		subject  custos.SubjectID
	}
	people := map[string]*person{}
	for _, who := range []string{"erased", "kept"} {
		p := &person{user: who + "-" + randomHex(6)}
		p.canaries = []string{"canary-mail-" + randomHex(8) + "@example.org", "Canary Name " + randomHex(8), "canary-prop-" + randomHex(8)}
		msgs := []map[string]any{{
			"type": "identify", "messageId": "id-" + randomHex(8), "userId": p.user,
			"traits": map[string]any{"email": p.canaries[0], "name": p.canaries[1]},
		}}
		for i, m := range trackMessages(p.user, "ev-"+randomHex(4), 4) {
			m["properties"] = map[string]any{"note": p.canaries[2], "i": i}
			msgs = append(msgs, m)
		}
		if res := srv.ingest(t, ten.WriteKey, "/v1/batch", batchBody(t, "", msgs)); res.Accepted != 5 {
			t.Fatalf("%s: %+v, want 5 accepted", who, res)
		}
		id, err := custos.ParseSubjectID(srv.findProfile(t, ten.SecretKey, "user_id", p.user).SubjectID)
		if err != nil {
			t.Fatal(err)
		}
		p.subject = id
		people[who] = p
	}
	canaries := map[string][]byte{}
	for who, p := range people {
		for i, c := range p.canaries {
			canaries[fmt.Sprintf("%s canary %d", who, i)] = []byte(c)
		}
	}
	pg.Exec(t, "postgres", "CHECKPOINT")
	if found := scanCluster(t, pg.Dir, canaries); len(found) > 0 {
		t.Errorf("plaintext of what was sent is in the PostgreSQL cluster's files: %v", found)
	}

	// Just before the erasure: the erased person's key as stored (sealed
	// under the current epoch) and every epoch key there is.
	stored, epochs := storedKey(t, keysURL, people["erased"].subject), epochRows(t, keysURL)
	lastEpoch := int64(0)
	for e := range epochs {
		lastEpoch = max(lastEpoch, e)
	}
	r := srv.do(t, "POST", "/api/v1/requests", []byte(`{"type":"erasure","identity":{"type":"user_id","value":"`+people["erased"].user+`"}}`), "Authorization", "Bearer "+ten.SecretKey)
	var req map[string]any
	if err := json.Unmarshal(r.body, &req); err != nil {
		t.Fatalf("erasure answer %d %s: %v", r.status, r.body, err)
	}
	if r.status != http.StatusCreated || req["status"] != "completed" {
		t.Fatalf("erasure: %d %s, want 201 completed", r.status, r.body)
	}
	// The epoch may have moved between the read and the shred: every epoch
	// present now that the key is shredded is one its bytes may be under.
	for e, w := range epochRows(t, keysURL) {
		epochs[e] = w
		lastEpoch = max(lastEpoch, e)
	}

	// The bound: the node rotates past every epoch the erased key could be
	// under and purges (VACUUM FULL of the epoch table, CHECKPOINT, WAL
	// switch, CHECKPOINT), then logs the rotation.
	t0 := time.Now()
	testenv.Poll(t, 30*time.Second, fmt.Sprintf("a key epoch rotation past epoch %d, purged", lastEpoch), func() bool {
		for _, rec := range jsonLines(srv.logs.Bytes()) {
			if rec["msg"] == "key epoch rotated" {
				if to, _ := rec["to"].(float64); int64(to) > lastEpoch {
					return true
				}
			}
		}
		return false
	})
	if out := srv.logs.Bytes(); bytes.Contains(out, []byte("key epoch purge incomplete")) || bytes.Contains(out, []byte("key epoch rotation failed")) {
		t.Errorf("a rotation failed or purged incompletely:\n%s", grepLines(out, "key epoch"))
	}
	t.Logf("bound reached %v after the erasure (--key-epoch 3s)", time.Since(t0).Round(time.Millisecond))

	// The epoch keys are in no file. The erased key as it was stored is in
	// no file either, except possibly in freed space of a subject_keys
	// page (VACUUM removes the dead row but does not zero its bytes) —
	// where it is ciphertext under one of those destroyed epoch keys.
	var heap string
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, keysURL)
	if err != nil {
		t.Fatal(err)
	}
	err = conn.QueryRow(ctx, "SELECT pg_relation_filepath('subject_keys')").Scan(&heap)
	conn.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	needles := map[string][]byte{"the erased person's stored key": stored}
	for e, w := range epochs {
		needles[fmt.Sprintf("epoch %d's sealed key", e)] = w
	}
	left := scanCluster(t, pg.Dir, needles)
	if files := left["the erased person's stored key"]; len(files) == 1 && files[0] == heap {
		t.Logf("the erased key's sealed bytes linger in freed space of %s (subject_keys); the epoch keys that could open them are gone", heap)
		delete(left, "the erased person's stored key")
	}
	names := make([]string, 0, len(left))
	for n := range left {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t.Errorf("%s is still in the cluster's files after the bound: %s", n, strings.Join(left[n], ", "))
	}
	if found := scanCluster(t, pg.Dir, canaries); len(found) > 0 {
		t.Errorf("plaintext of what was sent is in the PostgreSQL cluster's files after the erasure: %v", found)
	}

	// The kept person's key was re-sealed by every rotation: a fresh node
	// (no key in memory) still reads everything.
	srv.stop(t)
	// With no node running (no rotation under way), the kept person's
	// live key as stored is found by the same scan: the absences above
	// are not the scanner's blindness.
	pg.Exec(t, "postgres", "CHECKPOINT")
	if found := scanCluster(t, pg.Dir, map[string][]byte{"live": storedKey(t, keysURL, people["kept"].subject)}); len(found["live"]) == 0 {
		t.Errorf("the kept person's live stored key is not found by the scan: the scan proves nothing")
	}
	srv = startServer(t, cfg)
	kept := srv.findProfile(t, ten.SecretKey, "user_id", people["kept"].user)
	if evs := srv.events(t, ten.SecretKey, kept.SubjectID, 0); len(evs) != 5 {
		t.Errorf("the kept person's events after the rotations and a restart: %d, want 5 (the identify and 4 tracks)", len(evs))
	}
	r = srv.do(t, "GET", "/api/v1/profiles/"+kept.SubjectID, nil, "Authorization", "Bearer "+ten.SecretKey)
	if r.status != http.StatusOK || !bytes.Contains(r.body, []byte(people["kept"].canaries[0])) {
		t.Errorf("the kept person's profile after the rotations and a restart: %d %s, want 200 with their e-mail", r.status, r.body)
	}
	if r := srv.lookup(t, ten.SecretKey, "user_id", people["erased"].user); r.status != http.StatusNotFound {
		t.Errorf("the erased person after a restart: %d %s, want 404", r.status, r.body)
	}
}

// grepLines returns the lines of out containing s.
func grepLines(out []byte, s string) string {
	var b strings.Builder
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, s) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}
