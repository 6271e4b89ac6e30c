package main

import (
	"encoding/json"
	"fmt"
	"github.com/custos-dev/custos/internal/testenv"
	"net/http"
	"sync"
	"testing"
	"time"
)

// twoNodes starts two `custos serve` nodes on one PostgreSQL data
// database and one key database, with the same master key and operator
// token and a data directory each, and creates a tenant on the first
// before the second starts.
func twoNodes(t *testing.T) (a, b *testServer, ten tenantInfo) {
	t.Helper()
	cfgA := pgConfig(t)
	a = startServer(t, cfgA)
	ten = a.createTenant(t, "shared")
	cfgB := cfgA
	cfgB.dir = t.TempDir()
	b = startServer(t, cfgB)
	return a, b, ten
}

// ingestRetrying posts a batch like an SDK does: a 5xx is retried (a node
// still refused as stale after composing a write again answers 503), a
// 200 is the answer.
func (s *testServer) ingestRetrying(t *testing.T, writeKey string, body []byte) ingestResult {
	t.Helper()
	for attempt := 0; ; attempt++ {
		r := s.do(t, "POST", "/v1/batch", body, "Authorization", basicAuth(writeKey), "Content-Type", "application/json")
		if r.status == http.StatusOK {
			var res ingestResult
			if err := json.Unmarshal(r.body, &res); err != nil {
				t.Fatalf("POST /v1/batch: decode %s: %v", r.body, err)
			}
			return res
		}
		if r.status < 500 || attempt == 5 {
			t.Fatalf("POST /v1/batch attempt %d: status %d %s, want 200 (or a 5xx then 200)", attempt+1, r.status, r.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTwoNodesSuppression: a suppression acknowledged by node B is in
// force for the next message node A acknowledges.
func TestTwoNodesSuppression(t *testing.T) {
	a, b, ten := twoNodes(t)
	user := "two-sup-" + randomHex(6)
	if res := a.ingestRetrying(t, ten.WriteKey, batchBody(t, "", trackMessages(user, "before-"+randomHex(4), 2))); res.Accepted != 2 {
		t.Fatalf("node A before the suppression: %+v, want 2 accepted", res)
	}
	r := b.do(t, "POST", "/api/v1/requests", []byte(`{"type":"suppress","identity":{"type":"user_id","value":"`+user+`"}}`), "Authorization", "Bearer "+ten.SecretKey)
	if r.status != http.StatusCreated {
		t.Fatalf("suppress through node B: %d %s", r.status, r.body)
	}
	res := a.ingestRetrying(t, ten.WriteKey, batchBody(t, "", trackMessages(user, "after-"+randomHex(4), 3)))
	if res.Accepted != 0 {
		t.Errorf("node A after node B acknowledged the suppression: %+v, want nothing accepted", res)
	}
	prof := b.findProfile(t, ten.SecretKey, "user_id", user)
	for name, n := range map[string]*testServer{"A": a, "B": b} {
		if got := len(n.events(t, ten.SecretKey, prof.SubjectID, 0)); got != 2 {
			t.Errorf("events through node %s after the suppression = %d, want the 2 from before", name, got)
		}
	}
}

// TestTwoNodesErasure: after node A completes an erasure, no identifier
// finds anything through node B, and a late retry through B of a message
// sent before the erasure does not bring the subject back.
func TestTwoNodesErasure(t *testing.T) {
	a, b, ten := twoNodes(t)
	user := "two-era-" + randomHex(6)
	anon := "anon-" + randomHex(6)
	msgs := trackMessages(user, "e-"+randomHex(4), 3)
	for _, m := range msgs {
		m["anonymousId"] = anon
	}
	if res := b.ingestRetrying(t, ten.WriteKey, batchBody(t, "", msgs)); res.Accepted != 3 {
		t.Fatalf("node B: %+v, want 3 accepted", res)
	}
	prof := a.findProfile(t, ten.SecretKey, "anonymous_id", anon)
	r := a.do(t, "POST", "/api/v1/requests", []byte(`{"type":"erasure","identity":{"type":"user_id","value":"`+user+`"}}`), "Authorization", "Bearer "+ten.SecretKey)
	var req map[string]any
	mustDecode(t, r.body, &req)
	if r.status != http.StatusCreated || req["status"] != "completed" {
		t.Fatalf("erasure through node A: %d %s, want 201 completed", r.status, r.body)
	}
	for idType, v := range map[string]string{"user_id": user, "anonymous_id": anon} {
		if r := b.lookup(t, ten.SecretKey, idType, v); r.status != http.StatusNotFound {
			t.Errorf("node B: %s lookup after the erasure = %d %s, want 404", idType, r.status, r.body)
		}
	}
	// Node B drops the subject's key from memory when told of the
	// deletion (LISTEN/NOTIFY): its events are then not found at all.
	testenv.Poll(t, 10*time.Second, "node B answering 404 for the erased subject's events", func() bool {
		r := b.do(t, "GET", "/api/v1/profiles/"+prof.SubjectID+"/events", nil, "Authorization", "Bearer "+ten.SecretKey)
		var evs struct {
			Events []json.RawMessage `json:"events"`
		}
		if r.status == http.StatusOK {
			if err := json.Unmarshal(r.body, &evs); err != nil || len(evs.Events) != 0 {
				t.Fatalf("node B: events of the erased subject = %d %s, want none", r.status, r.body)
			}
		}
		return r.status == http.StatusNotFound
	})
	// A client retrying, through node B, a message dated before the erasure.
	late := trackMessages(user, "late-"+randomHex(4), 1)
	late[0]["timestamp"] = time.Now().Add(-time.Hour).UTC().Format(time.RFC3339Nano)
	if res := b.ingestRetrying(t, ten.WriteKey, batchBody(t, "", late)); res.Accepted != 0 {
		t.Errorf("node B: a message dated before the erasure: %+v, want nothing accepted", res)
	}
	if r := a.lookup(t, ten.SecretKey, "user_id", user); r.status != http.StatusNotFound {
		t.Errorf("node A: lookup after the late retry = %d %s, want 404", r.status, r.body)
	}
}

// TestTwoNodesSameMessages sends the same batch to both nodes at once,
// several times, for a person neither node has seen: each message is
// stored once, under one subject.
func TestTwoNodesSameMessages(t *testing.T) {
	a, b, ten := twoNodes(t)
	for round := range 5 {
		user := "two-dup-" + randomHex(6)
		body := batchBody(t, "", trackMessages(user, "d-"+randomHex(4), 10))
		var wg sync.WaitGroup
		results := make([]ingestResult, 4)
		for i, n := range []*testServer{a, b, a, b} {
			wg.Go(func() { results[i] = n.ingestRetrying(t, ten.WriteKey, body) })
		}
		wg.Wait()
		accepted := 0
		for _, r := range results {
			accepted += r.Accepted
		}
		if accepted != 10 {
			t.Errorf("round %d: the same 10 messages sent 4 times to two nodes: %d accepted in all, want 10 (%+v)", round, accepted, results)
		}
		pa, pb := a.findProfile(t, ten.SecretKey, "user_id", user), b.findProfile(t, ten.SecretKey, "user_id", user)
		if pa.SubjectID != pb.SubjectID {
			t.Errorf("round %d: node A finds subject %s, node B %s: one person split in two", round, pa.SubjectID, pb.SubjectID)
		}
		byMessageID(t, a.events(t, ten.SecretKey, pa.SubjectID, 0)) // fails on a repeated message id
		if n := len(a.events(t, ten.SecretKey, pa.SubjectID, 0)); n != 10 {
			t.Errorf("round %d: %d events stored, want 10", round, n)
		}
	}
}

// TestTwoNodesSeeTenantChanges: a tenant created through node A after
// node B started, and its settings and keys changed through A, are in
// force at B without a restart (LISTEN/NOTIFY).
func TestTwoNodesSeeTenantChanges(t *testing.T) {
	a, b, _ := twoNodes(t)
	ten := a.createTenant(t, "late")
	user := "late-" + randomHex(6)
	body := batchBody(t, "", trackMessages(user, "l-"+randomHex(4), 2))
	testenv.Poll(t, 10*time.Second, "node B accepting the write key of a tenant created through node A", func() bool {
		r := b.do(t, "POST", "/v1/batch", body, "Authorization", basicAuth(ten.WriteKey), "Content-Type", "application/json")
		return r.status == http.StatusOK
	})
	if p := b.findProfile(t, ten.SecretKey, "user_id", user); p.SubjectID == "" {
		t.Fatal("node B stored nothing for the new tenant")
	}
	// Settings changed through A.
	r := a.do(t, "PATCH", "/api/v1/settings", []byte(`{"marketing_daily_cap":7}`), "Authorization", "Bearer "+ten.SecretKey)
	if r.status != http.StatusOK {
		t.Fatalf("PATCH settings through node A: %d %s", r.status, r.body)
	}
	testenv.Poll(t, 10*time.Second, "node B showing the settings changed through node A", func() bool {
		r := b.do(t, "GET", "/api/v1/settings", nil, "Authorization", "Bearer "+ten.SecretKey)
		var s struct {
			Cap int `json:"marketing_daily_cap"`
		}
		return r.status == http.StatusOK && json.Unmarshal(r.body, &s) == nil && s.Cap == 7
	})
	// Keys rotated through A: the old secret key stops working at B.
	r = a.do(t, "POST", "/admin/v1/tenants/"+ten.ID+"/keys/rotate", nil, "Authorization", "Bearer "+a.cfg.token)
	if r.status != http.StatusOK {
		t.Fatalf("rotate keys through node A: %d %s", r.status, r.body)
	}
	testenv.Poll(t, 10*time.Second, "node B refusing the secret key rotated away through node A", func() bool {
		r := b.do(t, "GET", "/api/v1/settings", nil, "Authorization", "Bearer "+ten.SecretKey)
		return r.status == http.StatusUnauthorized
	})
}

// TestTwoNodesConcurrentMerges: two anonymous visitors, each first seen
// by one node, are identified as the same user through both nodes at
// once, and a third identifier is aliased to the user meanwhile: every
// identifier ends on one subject, seen alike from both nodes, holding
// every message once (no subject split, no link or event lost).
func TestTwoNodesConcurrentMerges(t *testing.T) {
	a, b, ten := twoNodes(t)
	for round := range 5 {
		user := fmt.Sprintf("merge-%d-%s", round, randomHex(4))
		anonA, anonB, prev := "anon-a-"+randomHex(6), "anon-b-"+randomHex(6), "prev-"+randomHex(6)
		var ids []string
		msg := func(m map[string]any) map[string]any {
			m["messageId"] = fmt.Sprintf("%s-%d", user, len(ids))
			ids = append(ids, m["messageId"].(string))
			return m
		}
		a.ingestRetrying(t, ten.WriteKey, batchBody(t, "", []map[string]any{
			msg(map[string]any{"type": "track", "anonymousId": anonA, "event": "Viewed"}),
			msg(map[string]any{"type": "track", "anonymousId": anonA, "event": "Viewed"}),
		}))
		b.ingestRetrying(t, ten.WriteKey, batchBody(t, "", []map[string]any{
			msg(map[string]any{"type": "track", "anonymousId": anonB, "event": "Viewed"}),
			msg(map[string]any{"type": "track", "userId": prev, "event": "Viewed"}),
		}))
		bodies := []struct {
			n    *testServer
			body []byte
		}{
			{a, batchBody(t, "", []map[string]any{msg(map[string]any{"type": "identify", "userId": user, "anonymousId": anonA})})},
			{b, batchBody(t, "", []map[string]any{msg(map[string]any{"type": "identify", "userId": user, "anonymousId": anonB})})},
			{a, batchBody(t, "", []map[string]any{msg(map[string]any{"type": "alias", "userId": user, "previousId": prev})})},
		}
		var wg sync.WaitGroup
		for _, x := range bodies {
			wg.Go(func() { x.n.ingestRetrying(t, ten.WriteKey, x.body) })
		}
		wg.Wait()
		want := ""
		for _, n := range []*testServer{a, b} {
			for _, id := range [][2]string{{"user_id", user}, {"anonymous_id", anonA}, {"anonymous_id", anonB}, {"user_id", prev}} {
				p := n.findProfile(t, ten.SecretKey, id[0], id[1])
				if want == "" {
					want = p.SubjectID
				}
				if p.SubjectID != want {
					t.Errorf("round %d: %s %s finds subject %s, want %s: one person split", round, id[0], id[1], p.SubjectID, want)
				}
			}
		}
		got := byMessageID(t, b.events(t, ten.SecretKey, want, 0))
		for _, id := range ids {
			if _, ok := got[id]; !ok {
				t.Errorf("round %d: message %s lost in the merge (have %d events)", round, id, len(got))
			}
		}
	}
}
