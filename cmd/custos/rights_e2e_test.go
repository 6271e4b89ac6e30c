package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos-dev/custos/internal/testenv"
	"github.com/custos-dev/custos/internal/webhook"
)

func TestSuppressionThroughTheAPI(t *testing.T) {
	t.Parallel()
	srv := startServer(t, newServerConfig(t))
	a, b := srv.createTenant(t, "a"), srv.createTenant(t, "b")
	user := "sup-" + randomHex(6)
	srv.ingest(t, a.WriteKey, "/v1/batch", batchBody(t, "", trackMessages(user, "s1-"+randomHex(4), 2)))

	body := []byte(`{"type":"suppress","identity":{"type":"user_id","value":"` + user + `"}}`)
	res := srv.do(t, "POST", "/api/v1/requests", body, "Authorization", "Bearer "+a.SecretKey)
	if res.status != 201 {
		t.Fatalf("POST /api/v1/requests: %d %s", res.status, res.body)
	}
	var req struct {
		ID string `json:"id"`
	}
	var full map[string]any
	mustDecode(t, res.body, &full)
	mustDecode(t, res.body, &req)
	if full["status"] != "completed" || full["type"] != "suppress" || full["due_at"] == nil {
		t.Errorf("request = %s, want a completed suppress request with a due date", res.body)
	}
	if strings.Contains(string(res.body), user) {
		t.Errorf("the request record echoes the identifier: %s", res.body)
	}

	// From the acknowledgement on, the subject's events are answered 200 and dropped.
	got := srv.ingest(t, a.WriteKey, "/v1/batch", batchBody(t, "", trackMessages(user, "s2-"+randomHex(4), 3)))
	if got.Accepted != 0 {
		t.Errorf("after suppression: %+v, want nothing accepted", got)
	}
	prof := srv.findProfile(t, a.SecretKey, "user_id", user)
	if n := len(srv.events(t, a.SecretKey, prof.SubjectID, 10)); n != 2 {
		t.Errorf("events after suppression = %d, want the 2 from before", n)
	}
	metrics := srv.do(t, "GET", "/metrics", nil, "Authorization", "Bearer "+srv.cfg.token)
	if !strings.Contains(string(metrics.body), `custos_messages_dropped_total{reason="suppressed"} 3`) {
		t.Errorf("metrics lack the 3 suppressed messages")
	}

	// The request is visible to its tenant only; a write key cannot make one.
	if r := srv.do(t, "GET", "/api/v1/requests/"+req.ID, nil, "Authorization", "Bearer "+a.SecretKey); r.status != 200 {
		t.Errorf("GET own request: %d", r.status)
	}
	if r := srv.do(t, "GET", "/api/v1/requests/"+req.ID, nil, "Authorization", "Bearer "+b.SecretKey); r.status != 404 {
		t.Errorf("tenant B reads tenant A's request: %d, want 404", r.status)
	}
	if r := srv.do(t, "GET", "/api/v1/requests", nil, "Authorization", "Bearer "+b.SecretKey); strings.Contains(string(r.body), req.ID) {
		t.Errorf("tenant B lists tenant A's request: %s", r.body)
	}
	if r := srv.do(t, "POST", "/api/v1/requests", body, "Authorization", "Bearer "+a.WriteKey); r.status != 403 {
		t.Errorf("a write key creating a request: %d, want 403", r.status)
	}
	// Tenant B's suppression of the same user id touches only tenant B.
	srv.do(t, "POST", "/api/v1/requests", body, "Authorization", "Bearer "+b.SecretKey)
	srv.do(t, "POST", "/api/v1/requests", []byte(`{"type":"unsuppress","identity":{"type":"user_id","value":"`+user+`"}}`), "Authorization", "Bearer "+a.SecretKey)
	if got := srv.ingest(t, a.WriteKey, "/v1/batch", batchBody(t, "", trackMessages(user, "s3-"+randomHex(4), 1))); got.Accepted != 1 {
		t.Errorf("tenant A after unsuppress (tenant B suppressed its own user): %+v, want accepted", got)
	}

	for _, c := range []struct{ body, code string }{
		{`{"type":"delete-me","identity":{"type":"user_id","value":"x"}}`, "invalid"},
		{`{"type":"suppress","identity":{"type":"phone","value":"x"}}`, "invalid"},
		{`{"type":"suppress"}`, "invalid"},
		{`{"type":"rectify","identity":{"type":"user_id","value":"x"}}`, "invalid"},
		{`{"type":"access","traits":{"a":1},"identity":{"type":"user_id","value":"x"}}`, "invalid"},
		{`{"type":"suppress","suppress":true,"identity":{"type":"user_id","value":"x"}}`, "invalid"},
	} {
		r := srv.do(t, "POST", "/api/v1/requests", []byte(c.body), "Authorization", "Bearer "+a.SecretKey)
		if r.errorCode() != c.code || r.errorMessage() == "" {
			t.Errorf("POST %s: %d %s, want error %s with a message", c.body, r.status, r.body, c.code)
		}
	}
}

func TestErasureThroughTheAPIWithAVerifiedCertificate(t *testing.T) {
	t.Parallel()
	cfg := newServerConfig(t)
	srv := startServer(t, cfg)
	tn := srv.createTenant(t, "erasing")
	user := "era-" + randomHex(6)
	srv.ingest(t, tn.WriteKey, "/v1/batch", batchBody(t, "", trackMessages(user, "e1-"+randomHex(4), 4)))
	prof := srv.findProfile(t, tn.SecretKey, "user_id", user)

	res := srv.do(t, "POST", "/api/v1/requests", []byte(`{"type":"erasure","identity":{"type":"user_id","value":"`+user+`"}}`), "Authorization", "Bearer "+tn.SecretKey)
	if res.status != 201 {
		t.Fatalf("erasure request: %d %s", res.status, res.body)
	}
	var req map[string]any
	mustDecode(t, res.body, &req)
	if req["status"] != "completed" {
		t.Fatalf("erasure answered %s, want completed", res.body)
	}
	id := req["id"].(string)
	if r := srv.lookup(t, tn.SecretKey, "user_id", user); r.status != 404 {
		t.Errorf("profile after erasure: %d, want 404", r.status)
	}
	if r := srv.do(t, "GET", "/api/v1/profiles/"+prof.SubjectID+"/events", nil, "Authorization", "Bearer "+tn.SecretKey); r.status != 404 {
		t.Errorf("events after erasure: %d, want 404", r.status)
	}
	cert := srv.do(t, "GET", "/api/v1/requests/"+id+"/certificate", nil, "Authorization", "Bearer "+tn.SecretKey)
	if cert.status != 200 || strings.Contains(string(cert.body), user) {
		t.Fatalf("certificate: %d %s", cert.status, cert.body)
	}
	file := t.TempDir() + "/cert.json"
	if err := os.WriteFile(file, cert.body, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := cli(t, "", "certificate", "verify", "--server", srv.URL, file)
	if err != nil || !strings.Contains(out, "verifies") {
		t.Fatalf("certificate verify: %v\n%s", err, out)
	}
	// One edited byte and it no longer verifies.
	edited := []byte(strings.Replace(string(cert.body), `"events": 4`, `"events": 3`, 1))
	if string(edited) == string(cert.body) {
		t.Fatalf("could not edit the certificate: %s", cert.body)
	}
	os.WriteFile(file, edited, 0o600)
	if _, err := cli(t, "", "certificate", "verify", "--server", srv.URL, file); err == nil {
		t.Error("an edited certificate verifies")
	}
	if r := srv.do(t, "GET", "/api/v1/requests/"+id+"/certificate", nil, "Authorization", "Bearer "+srv.createTenant(t, "other").SecretKey); r.status != 404 {
		t.Errorf("another tenant reads the certificate: %d, want 404", r.status)
	}
}

func TestAccessAndRectifyThroughTheAPI(t *testing.T) {
	t.Parallel()
	srv := startServer(t, newServerConfig(t))
	tn := srv.createTenant(t, "access")
	user := "acc-" + randomHex(6)
	srv.ingest(t, tn.WriteKey, "/v1/batch", batchBody(t, "", trackMessages(user, "a1-"+randomHex(4), 5)))
	post := func(body string) map[string]any {
		t.Helper()
		res := srv.do(t, "POST", "/api/v1/requests", []byte(body), "Authorization", "Bearer "+tn.SecretKey)
		if res.status != 201 {
			t.Fatalf("POST %s: %d %s", body, res.status, res.body)
		}
		var out map[string]any
		mustDecode(t, res.body, &out)
		return out
	}
	fix := post(`{"type":"rectify","identity":{"type":"user_id","value":"` + user + `"},"traits":{"name":"Corrected Name"}}`)
	if fix["status"] != "completed" {
		t.Errorf("rectify: %v", fix)
	}
	acc := post(`{"type":"portability","identity":{"type":"user_id","value":"` + user + `"}}`)
	id := acc["id"].(string)
	res := srv.do(t, "GET", "/api/v1/requests/"+id+"/result?format=ndjson", nil, "Authorization", "Bearer "+tn.SecretKey)
	lines := strings.Split(strings.TrimSpace(string(res.body)), "\n")
	if res.status != 200 || len(lines) != 6 || !strings.Contains(lines[0], "Corrected Name") || res.header.Get("Content-Disposition") == "" {
		t.Errorf("portability result: %d, %d lines, first %q", res.status, len(lines), lines[0])
	}
	if r := srv.do(t, "GET", "/api/v1/requests/"+id+"/result?format=xml", nil, "Authorization", "Bearer "+tn.SecretKey); r.status != 400 || r.errorMessage() == "" {
		t.Errorf("format xml: %d %s, want 400 naming the formats", r.status, r.body)
	}
	other := srv.createTenant(t, "other")
	if r := srv.do(t, "GET", "/api/v1/requests/"+id+"/result", nil, "Authorization", "Bearer "+other.SecretKey); r.status != 404 || strings.Contains(string(r.body), user) {
		t.Errorf("another tenant downloads the result: %d", r.status)
	}
	if r := srv.do(t, "GET", "/api/v1/requests/"+id+"/result", nil, "Authorization", "Bearer "+tn.WriteKey); r.status != 403 {
		t.Errorf("a write key downloads the result: %d, want 403", r.status)
	}
}

func TestRightsFromTheDevice(t *testing.T) {
	t.Parallel()
	srv := startServer(t, newServerConfig(t))
	tn := srv.createTenant(t, "device")
	if tn.Identity == "" {
		t.Fatal("tenant creation did not show the identity verification secret")
	}
	privacy := func(body string) map[string]any {
		t.Helper()
		res := srv.do(t, "POST", "/v1/privacy", []byte(body), "Authorization", basicAuth(tn.WriteKey), "Content-Type", "text/plain")
		var out map[string]any
		if err := json.Unmarshal(res.body, &out); err != nil {
			t.Fatalf("POST /v1/privacy %s: decode %s: %v", body, res.body, err)
		}
		// 201 for a request already carried out, 202 for one still pending.
		want := http.StatusAccepted
		if out["status"] == "completed" {
			want = http.StatusCreated
		}
		if res.status != want {
			t.Fatalf("POST /v1/privacy %s: %d %s; want %d", body, res.status, res.body, want)
		}
		return out
	}
	userA, userB, userC := "dev-a-"+randomHex(4), "dev-b-"+randomHex(4), "dev-c-"+randomHex(4)
	for _, u := range []string{userA, userB, userC} {
		srv.ingest(t, tn.WriteKey, "/v1/batch", batchBody(t, "", trackMessages(u, "p-"+u, 2)))
	}

	// Suppression from the device is honoured at once.
	if out := privacy(`{"type":"suppress","userId":"` + userA + `"}`); out["status"] != "completed" {
		t.Errorf("device suppression: %v, want completed", out)
	}
	if got := srv.ingest(t, tn.WriteKey, "/v1/batch", batchBody(t, "", trackMessages(userA, "p2-"+userA, 1))); got.Accepted != 0 {
		t.Errorf("after device suppression: %+v, want dropped", got)
	}

	// Erasure with the write key alone waits for the controller.
	out := privacy(`{"type":"erasure","userId":"` + userB + `","user_hash":"00ff"}`)
	if out["status"] != "pending_verification" {
		t.Fatalf("erasure without a valid user_hash: %v, want pending_verification", out)
	}
	id := out["request_id"].(string)
	if r := srv.lookup(t, tn.SecretKey, "user_id", userB); r.status != 200 {
		t.Errorf("data erased on the word of a write key alone: %d", r.status)
	}
	got := srv.do(t, "GET", "/api/v1/requests/"+id, nil, "Authorization", "Bearer "+tn.SecretKey)
	if strings.Contains(string(got.body), "pending_identity") || strings.Contains(string(got.body), userB) {
		t.Errorf("pending request shows its identity: %s", got.body)
	}
	if r := srv.do(t, "POST", "/api/v1/requests/"+id+"/approve", nil, "Authorization", "Bearer "+tn.WriteKey); r.status != 403 {
		t.Errorf("a write key approves: %d, want 403", r.status)
	}
	approved := srv.do(t, "POST", "/api/v1/requests/"+id+"/approve", nil, "Authorization", "Bearer "+tn.SecretKey)
	if !strings.Contains(string(approved.body), `"status":"completed"`) {
		t.Fatalf("approve: %d %s", approved.status, approved.body)
	}
	if r := srv.lookup(t, tn.SecretKey, "user_id", userB); r.status != 404 {
		t.Errorf("after approval the subject is still there: %d", r.status)
	}

	// Access without proof, rejected by the controller.
	out = privacy(`{"type":"access","userId":"` + userC + `"}`)
	rid := out["request_id"].(string)
	rej := srv.do(t, "POST", "/api/v1/requests/"+rid+"/reject", []byte(`{"reason":"could not verify"}`), "Authorization", "Bearer "+tn.SecretKey)
	if !strings.Contains(string(rej.body), `"status":"rejected"`) {
		t.Errorf("reject: %d %s", rej.status, rej.body)
	}
	if r := srv.do(t, "POST", "/api/v1/requests/"+rid+"/approve", nil, "Authorization", "Bearer "+tn.SecretKey); r.status != 409 {
		t.Errorf("approve after reject: %d, want 409", r.status)
	}

	// With a user_hash made by the tenant's back end, erasure runs at once.
	mac := hmac.New(sha256.New, []byte(tn.Identity))
	mac.Write([]byte(userC))
	out = privacy(`{"type":"erasure","userId":"` + userC + `","user_hash":"` + hex.EncodeToString(mac.Sum(nil)) + `"}`)
	if out["status"] != "completed" {
		t.Errorf("erasure with a valid user_hash: %v, want completed", out)
	}
	if r := srv.lookup(t, tn.SecretKey, "user_id", userC); r.status != 404 {
		t.Errorf("after a verified device erasure the subject is still there: %d", r.status)
	}
	if r := srv.do(t, "POST", "/v1/privacy", []byte(`{"type":"erasure","userId":"x"}`), "Authorization", basicAuth("wk_wrong")); r.status != 401 {
		t.Errorf("privacy with an unknown write key: %d, want 401", r.status)
	}
}

func TestBenchRights(t *testing.T) {
	t.Parallel()
	srv := startServer(t, newServerConfig(t))
	tn := srv.createTenant(t, "bench")
	out, err := cli(t, "", "bench", "rights", "--server", srv.URL, "--write-key", tn.WriteKey, "--secret-key", tn.SecretKey,
		"--erase-events", "120", "--erasures", "2", "--export-events", "30", "--exports", "3", "--large-export", "600")
	if err != nil {
		t.Fatalf("bench rights: %v\n%s", err, out)
	}
	// The embedded store purges in passes: the certificate names the pass.
	for _, want := range []string{"erasure unreadable", "erasure certificate issued", "erasure purge pass due", "access export", "large access export"} {
		if !strings.Contains(out, want) {
			t.Errorf("bench rights output lacks %q:\n%s", want, out)
		}
	}
}

// receiver is an httptest server that records signed deliveries, failing
// the first attempt of each to prove the retries.
type receiver struct {
	mu       sync.Mutex
	secret   []byte
	bodies   []map[string]any
	attempts map[string]int
	bad      int
	srv      *httptest.Server
}

func newReceiver(t *testing.T, secret string) *receiver {
	r := &receiver{secret: []byte(secret), attempts: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if webhook.Verify(r.secret, body, req.Header.Get(webhook.HeaderSignature), time.Now(), time.Minute) != nil {
			r.bad++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		id := req.Header.Get(webhook.HeaderDelivery)
		if r.attempts[id]++; r.attempts[id] == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			r.bad++
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		r.bodies = append(r.bodies, m)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) received() []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.bodies)
}

func TestRecipientsAndCallbacks(t *testing.T) {
	t.Parallel()
	srv := startServer(t, newServerConfig(t))
	tn := srv.createTenant(t, "downstream")
	crm := newReceiver(t, "crm-signing-secret-0123")
	callbacks := newReceiver(t, tn.Callback)
	res := srv.do(t, "POST", "/api/v1/recipients", []byte(`{"name":"crm","url":"`+crm.srv.URL+`","secret":"crm-signing-secret-0123","region":"eu"}`), "Authorization", "Bearer "+tn.SecretKey)
	if res.status != 201 || strings.Contains(string(res.body), "crm-signing-secret") {
		t.Fatalf("create recipient: %d %s", res.status, res.body)
	}
	if r := srv.do(t, "GET", "/api/v1/recipients", nil, "Authorization", "Bearer "+srv.createTenant(t, "other").SecretKey); strings.Contains(string(r.body), "crm") {
		t.Errorf("another tenant lists the recipient: %s", r.body)
	}
	user := "down-" + randomHex(6)
	srv.ingest(t, tn.WriteKey, "/v1/batch", batchBody(t, "", trackMessages(user, "d-"+randomHex(4), 2)))
	er := srv.do(t, "POST", "/api/v1/requests", []byte(`{"type":"erasure","identity":{"type":"user_id","value":"`+user+`"},"callback_url":"`+callbacks.srv.URL+`"}`), "Authorization", "Bearer "+tn.SecretKey)
	var req map[string]any
	mustDecode(t, er.body, &req)
	id, _ := req["id"].(string)
	if er.status != 201 || id == "" {
		t.Fatalf("erasure: %d %s", er.status, er.body)
	}

	// The recipient is told who to erase (after one failed attempt), signed.
	testenv.Poll(t, 20*time.Second, "a delivery to the recipient and a callback", func() bool {
		return len(crm.received()) > 0 && len(callbacks.received()) > 0
	}, func() string { return fmt.Sprintf("crm %v, callbacks %v", crm.received(), callbacks.received()) })
	notice := crm.received()[0]
	if notice["type"] != "erasure" || notice["request_id"] != id || !strings.Contains(fmt.Sprint(notice["identifiers"]), user) {
		t.Errorf("recipient notice = %v, want the erasure of %s", notice, user)
	}
	if crm.bad > 0 || callbacks.bad > 0 {
		t.Errorf("unsigned or badly signed deliveries: crm %d, callbacks %d", crm.bad, callbacks.bad)
	}
	// The callbacks report the request's states, up to completed.
	testenv.Poll(t, 20*time.Second, "a callback reporting completed", func() bool {
		return slices.ContainsFunc(callbacks.received(), func(c map[string]any) bool { return c["status"] == "completed" })
	}, func() string { return fmt.Sprintf("callbacks %v", callbacks.received()) })
	// Each state change is its own delivery, retried on its own, so they
	// may arrive out of order: receivers order them by updated_at.
	got := callbacks.received()
	completed := false
	for _, c := range got {
		completed = completed || c["status"] == "completed"
		if c["request_id"] != id {
			t.Errorf("callback for %v, want %s", c["request_id"], id)
		}
	}
	if !completed {
		t.Errorf("callbacks = %v, want one reporting completed", got)
	}
	// The request shows the recipient's outcome.
	var last response
	testenv.Poll(t, 20*time.Second, "the request showing the recipient's notice as delivered", func() bool {
		last = srv.do(t, "GET", "/api/v1/requests/"+id, nil, "Authorization", "Bearer "+tn.SecretKey)
		return strings.Contains(string(last.body), `"status":"delivered"`)
	}, func() string { return "request " + string(last.body) })
}

func TestEveryFlagTypeThroughTheAPIAndIsolation(t *testing.T) {
	t.Parallel()
	srv := startServer(t, newServerConfig(t))
	a, b := srv.createTenant(t, "flags-a"), srv.createTenant(t, "flags-b")
	user := "flag-" + randomHex(6)
	srv.ingest(t, a.WriteKey, "/v1/batch", batchBody(t, "", trackMessages(user, "f0-"+randomHex(4), 1)))
	post := func(typ string) string {
		t.Helper()
		res := srv.do(t, "POST", "/api/v1/requests", []byte(`{"type":"`+typ+`","identity":{"type":"user_id","value":"`+user+`"}}`), "Authorization", "Bearer "+a.SecretKey)
		var out map[string]any
		mustDecode(t, res.body, &out)
		if res.status != 201 || out["status"] != "completed" {
			t.Fatalf("%s: %d %s", typ, res.status, res.body)
		}
		return out["id"].(string)
	}
	send := func() int {
		return srv.ingest(t, a.WriteKey, "/v1/batch", batchBody(t, "", trackMessages(user, "f-"+randomHex(4), 1))).Accepted
	}
	post("restrict")
	if n := send(); n != 0 {
		t.Errorf("after restrict: %d accepted, want 0", n)
	}
	post("unrestrict")
	if n := send(); n != 1 {
		t.Errorf("after unrestrict: %d accepted, want 1", n)
	}
	id := post("object")
	if n := send(); n != 1 {
		t.Errorf("an objection to marketing stops collection: %d accepted, want 1", n)
	}
	// Tenant B can touch none of tenant A's requests or recipients.
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/api/v1/requests/" + id + "/cancel", ""},
		{"POST", "/api/v1/requests/" + id + "/extend", `{"months":1,"reason":"x"}`},
		{"POST", "/api/v1/requests/" + id + "/approve", ""},
		{"POST", "/api/v1/requests/" + id + "/reject", ""},
		{"GET", "/api/v1/requests/" + id + "/certificate", ""},
		{"DELETE", "/api/v1/recipients/rcp_x", ""},
	} {
		var body []byte
		if c.body != "" {
			body = []byte(c.body)
		}
		if r := srv.do(t, c.method, c.path, body, "Authorization", "Bearer "+b.SecretKey); r.status != 404 {
			t.Errorf("tenant B %s %s: %d %s, want 404", c.method, c.path, r.status, r.body)
		}
	}
	if r := srv.do(t, "POST", "/api/v1/requests/"+id+"/extend", []byte(`{"months":3,"reason":"x"}`), "Authorization", "Bearer "+a.SecretKey); r.status != 409 && r.status != 400 {
		t.Errorf("extend a completed request by 3 months: %d, want a refusal", r.status)
	}
	list := srv.do(t, "GET", "/api/v1/requests?type=object", nil, "Authorization", "Bearer "+a.SecretKey)
	if !strings.Contains(string(list.body), id) || strings.Count(string(list.body), `"type":"object"`) != 1 {
		t.Errorf("list type=object: %s", list.body)
	}
	if r := srv.do(t, "GET", "/api/v1/requests?overdue=maybe", nil, "Authorization", "Bearer "+a.SecretKey); r.status != 400 {
		t.Errorf("overdue=maybe: %d, want 400", r.status)
	}
}

// TestErasurePurgePassWithinItsStatedBound: on the embedded store an
// erasure's certificate states when the purge pass that removes the
// erased bytes starts (purge_due_at, certificate version 2), at most
// --purge-interval after the deletion, and that pass runs and purges the
// subject by then. (That the pass leaves no byte of the subject in any
// file is TestPurgePassWithinInterval in internal/pebble.)
func TestErasurePurgePassWithinItsStatedBound(t *testing.T) {
	t.Parallel()
	const interval = 3 * time.Second
	cfg := newServerConfig(t)
	cfg.extraArgs = []string{"--purge-interval", interval.String()}
	srv := startServer(t, cfg)
	tn := srv.createTenant(t, "purging")
	user := "pur-" + randomHex(6)
	srv.ingest(t, tn.WriteKey, "/v1/batch", batchBody(t, "", trackMessages(user, "p1-"+randomHex(4), 3)))
	res := srv.do(t, "POST", "/api/v1/requests", []byte(`{"type":"erasure","identity":{"type":"user_id","value":"`+user+`"}}`), "Authorization", "Bearer "+tn.SecretKey)
	if res.status != 201 {
		t.Fatalf("erasure request: %d %s", res.status, res.body)
	}
	var req struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal(res.body, &req); err != nil || req.Status != "completed" {
		t.Fatalf("erasure answered %s (%v), want completed", res.body, err)
	}
	cert := srv.do(t, "GET", "/api/v1/requests/"+req.ID+"/certificate", nil, "Authorization", "Bearer "+tn.SecretKey)
	var c struct {
		Version    int       `json:"version"`
		ShreddedAt time.Time `json:"shredded_at"`
		DeletedAt  time.Time `json:"deleted_at"`
		PurgedAt   time.Time `json:"purged_at"`
		PurgeDueAt time.Time `json:"purge_due_at"`
	}
	if err := json.Unmarshal(cert.body, &c); err != nil || cert.status != 200 {
		t.Fatalf("certificate: %d %s (%v)", cert.status, cert.body, err)
	}
	if c.Version != 2 || c.PurgeDueAt.IsZero() || !c.PurgedAt.IsZero() {
		t.Fatalf("certificate version %d, purge_due_at %v, purged_at %v; want version 2 naming the purge pass to come", c.Version, c.PurgeDueAt, c.PurgedAt)
	}
	if c.ShreddedAt.After(c.DeletedAt) || c.PurgeDueAt.Before(c.DeletedAt) || c.PurgeDueAt.Sub(c.DeletedAt) > interval {
		t.Errorf("shredded %v, deleted %v, purge due %v: want the shred first and the purge due within %v of the deletion", c.ShreddedAt, c.DeletedAt, c.PurgeDueAt, interval)
	}
	// The pass that purges the subject starts by then (two seconds of
	// slack for this machine's load).
	var pass struct {
		Time     time.Time     `json:"time"`
		Subjects int           `json:"subjects"`
		Took     time.Duration `json:"took"`
	}
	testenv.Poll(t, time.Until(c.PurgeDueAt)+interval+10*time.Second, "a purge pass of one subject in the server log", func() bool {
		for _, l := range strings.Split(string(srv.logs.Bytes()), "\n") {
			if strings.Contains(l, `"msg":"purge pass"`) && json.Unmarshal([]byte(l), &pass) == nil && pass.Subjects == 1 {
				return true
			}
		}
		return false
	})
	if start := pass.Time.Add(-pass.Took); start.After(c.PurgeDueAt.Add(2 * time.Second)) {
		t.Errorf("the purge pass started at %v, after the certificate's purge_due_at %v", start, c.PurgeDueAt)
	}
}
