package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestTenantIsolation checks invariant 6 over HTTP: tenant B's secret key
// finds nothing of tenant A's by any identifier or subject id, a write key
// cannot use the management API, and a wrong operator token is refused on
// every operator route.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	srv := startServer(t, newServerConfig(t))
	a := srv.createTenant(t, "tenant-a")
	b := srv.createTenant(t, "tenant-b")
	p := newPerson("iso")
	device := "dev-iso-" + randomHex(6)
	body := batchBody(t, "", []map[string]any{
		{"type": "identify", "messageId": "iso-1-" + p.userID, "userId": p.userID, "anonymousId": p.anonID,
			"traits":  map[string]any{"email": p.email, "name": p.name},
			"context": map[string]any{"ip": p.ip, "device": map[string]any{"id": device}}},
		{"type": "track", "messageId": "iso-2-" + p.userID, "userId": p.userID, "event": "Secret Thing", "properties": map[string]any{"plan": p.plan}},
	})
	if res := srv.ingest(t, a.WriteKey, "/v1/batch", body); res.Accepted != 2 {
		t.Fatalf("ingest for A: %+v, want 2 accepted", res)
	}
	profA := srv.findProfile(t, a.SecretKey, "user_id", p.userID)
	eventsA := srv.events(t, a.SecretKey, profA.SubjectID, 0)
	if len(eventsA) != 2 {
		t.Fatalf("A has %d events, want 2", len(eventsA))
	}
	secretsOfA := append(p.personal(), device, profA.SubjectID, a.ID, a.WriteKey, a.SecretKey)

	// B's own data, so that B is a tenant with a subject of its own.
	other := newPerson("iso-b")
	if res := srv.ingest(t, b.WriteKey, "/v1/batch", batchBody(t, "", trackMessages(other.userID, "iso-b-"+randomHex(4), 1))); res.Accepted != 1 {
		t.Fatalf("ingest for B: %+v", res)
	}
	profB := srv.findProfile(t, b.SecretKey, "user_id", other.userID)

	// An answer may echo what the request named (A's subject id, when the
	// path holds it), but nothing else of A's.
	notFound := func(what string, r response, echoed ...string) {
		t.Helper()
		secrets := slices.DeleteFunc(slices.Clone(secretsOfA), func(s string) bool { return slices.Contains(echoed, s) })
		if r.status != http.StatusNotFound {
			t.Errorf("%s with B's secret key: status %d, want 404; body %s", what, r.status, r.body)
		}
		if r.errorCode() != "not_found" {
			t.Errorf("%s with B's secret key: body %s, want a not_found error", what, r.body)
		}
		assertNoneOf(t, what+" answer", r.body, secrets)
	}
	for _, lk := range []struct{ typ, value string }{
		{"user_id", p.userID},
		{"anonymous_id", p.anonID},
		{"email", p.email},
		{"email", strings.ToLower(p.email)},
		{"device_id", device},
	} {
		notFound("lookup by "+lk.typ, srv.lookup(t, b.SecretKey, lk.typ, lk.value))
	}
	notFound("GET A's subject", srv.do(t, "GET", "/api/v1/profiles/"+profA.SubjectID, nil, "Authorization", "Bearer "+b.SecretKey), profA.SubjectID)
	notFound("GET A's events", srv.eventsPage(t, b.SecretKey, profA.SubjectID, "", 0), profA.SubjectID)
	// HTTP Basic with the secret key as user name is the other way in.
	notFound("GET A's events (Basic auth)", srv.do(t, "GET", "/api/v1/profiles/"+profA.SubjectID+"/events", nil, "Authorization", basicAuth(b.SecretKey)), profA.SubjectID)
	// And the other way round: A's key cannot see B's subject.
	if r := srv.eventsPage(t, a.SecretKey, profB.SubjectID, "", 0); r.status != http.StatusNotFound {
		t.Errorf("B's events with A's secret key: status %d, want 404; body %s", r.status, r.body)
	}

	// B sends the same identifiers: that makes a subject of B's, and
	// changes nothing of A's.
	same := batchBody(t, "", []map[string]any{
		{"type": "identify", "messageId": "iso-1-" + p.userID, "userId": p.userID, "anonymousId": p.anonID,
			"traits": map[string]any{"email": p.email, "name": "Someone Else"}},
	})
	if res := srv.ingest(t, b.WriteKey, "/v1/batch", same); res.Accepted != 1 || res.Duplicates != 0 {
		t.Errorf("B sending A's message id: %+v, want it accepted (deduplication is per tenant)", res)
	}
	sameB := srv.findProfile(t, b.SecretKey, "email", p.email)
	if sameB.SubjectID == profA.SubjectID {
		t.Errorf("B's subject for A's identifiers is A's subject %s", profA.SubjectID)
	}
	if got := string(sameB.Traits["name"]); got != `"Someone Else"` {
		t.Errorf("B's subject has name %s, want \"Someone Else\"", got)
	}
	if evs := srv.events(t, b.SecretKey, sameB.SubjectID, 0); len(evs) != 1 || evs[0].Event != "" {
		t.Errorf("B's subject events = %+v, want only B's identify", evs)
	}
	againA := srv.findProfile(t, a.SecretKey, "user_id", p.userID)
	if !bytes.Equal(mustJSON(t, againA), mustJSON(t, profA)) {
		t.Errorf("A's profile changed after B's ingest:\nbefore %s\nafter  %s", mustJSON(t, profA), mustJSON(t, againA))
	}
	if got := srv.events(t, a.SecretKey, profA.SubjectID, 0); !bytes.Equal(mustJSON(t, got), mustJSON(t, eventsA)) {
		t.Errorf("A's events changed after B's ingest")
	}

	// Write keys cannot use the management API.
	mgmt := []string{
		"/api/v1/profiles?user_id=" + p.userID,
		"/api/v1/profiles/" + profA.SubjectID,
		"/api/v1/profiles/" + profA.SubjectID + "/events",
	}
	for _, path := range mgmt {
		for _, auth := range []string{"Bearer " + a.WriteKey, basicAuth(a.WriteKey), "Bearer " + b.WriteKey} {
			r := srv.do(t, "GET", path, nil, "Authorization", auth)
			if r.status != http.StatusForbidden && r.status != http.StatusUnauthorized {
				t.Errorf("GET %s with a write key (%s): status %d, want 403 or 401; body %s", path, auth[:6], r.status, r.body)
			}
			if msg := r.errorMessage(); !strings.Contains(msg, "secret key") {
				t.Errorf("GET %s with a write key: message %q, want one saying the secret key is needed", path, msg)
			}
			assertNoneOf(t, "answer to a write key", r.body, secretsOfA)
		}
		for _, auth := range []string{"", "Bearer sk_not_a_key", "Bearer " + srv.cfg.token} {
			r := srv.do(t, "GET", path, nil, "Authorization", auth)
			if r.status != http.StatusUnauthorized {
				t.Errorf("GET %s with Authorization %q: status %d, want 401; body %s", path, auth, r.status, r.body)
			}
			assertNoneOf(t, "answer to a bad secret key", r.body, secretsOfA)
		}
	}

	// A wrong operator token gets 401 on every operator route, and changes nothing.
	routes := []struct{ method, path, body string }{
		{"POST", "/admin/v1/tenants", `{"name":"intruder"}`},
		{"GET", "/admin/v1/tenants", ""},
		{"GET", "/admin/v1/tenants/" + a.ID, ""},
		{"POST", "/admin/v1/tenants/" + a.ID + "/keys/rotate", ""},
		{"GET", "/admin/v1/tenants/" + strings.Repeat("0", 32), ""},
	}
	tok := srv.cfg.token
	badAuth := []string{
		"",
		"Bearer wrong",
		"Bearer " + tok + "x",
		"Bearer " + tok[:len(tok)-1],
		"Bearer " + strings.ToUpper(tok),
		basicAuth(tok),
		tok, // no scheme
		"Bearer " + a.SecretKey,
		"Bearer " + a.WriteKey,
	}
	for _, rt := range routes {
		for _, auth := range badAuth {
			var bodyBytes []byte
			if rt.body != "" {
				bodyBytes = []byte(rt.body)
			}
			r := srv.do(t, rt.method, rt.path, bodyBytes, "Authorization", auth, "Content-Type", "application/json")
			if r.status != http.StatusUnauthorized {
				t.Errorf("%s %s with Authorization %q: status %d, want 401; body %s", rt.method, rt.path, auth, r.status, r.body)
			}
			if msg := r.errorMessage(); !strings.Contains(msg, "operator token") {
				t.Errorf("%s %s with a wrong token: message %q, want one naming the operator token", rt.method, rt.path, msg)
			}
			assertNoneOf(t, "answer to a wrong operator token", r.body, []string{a.ID, b.ID, a.WriteKey, a.SecretKey, "tenant-a"})
		}
	}
	r := srv.do(t, "GET", "/admin/v1/tenants", nil, "Authorization", "Bearer "+tok)
	var list struct {
		Tenants []tenantInfo `json:"tenants"`
	}
	if err := json.Unmarshal(r.body, &list); err != nil || r.status != http.StatusOK {
		t.Fatalf("list tenants: %d %s", r.status, r.body)
	}
	if len(list.Tenants) != 2 {
		t.Errorf("after refused requests there are %d tenants, want 2: %s", len(list.Tenants), r.body)
	}
	// The refused rotations changed no key.
	if res := srv.ingest(t, a.WriteKey, "/v1/batch", batchBody(t, "", trackMessages(p.userID, "iso-after-"+randomHex(4), 1))); res.Accepted != 1 {
		t.Errorf("A's write key after refused rotations: %+v", res)
	}
	srv.findProfile(t, a.SecretKey, "user_id", p.userID)
}
