package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/custos-dev/custos/internal/testenv"
)

// TestOutboundGuardRefusesLoopbackRecipients: without --outbound-allow an
// internal address is refused when a tenant names it (a recipient URL, a
// request's callback_url), and — the real defence — when it is dialed: a
// recipient added while loopback was allowed is never reached once the
// node restarts without the allow-list, and the request records why.
func TestOutboundGuardRefusesLoopbackRecipients(t *testing.T) {
	t.Parallel()
	cfg := newServerConfig(t)
	srv := startServer(t, cfg) // loopback allowed
	tn := srv.createTenant(t, "inside")
	crm := newReceiver(t, "crm-signing-secret-0123")
	if res := srv.do(t, "POST", "/api/v1/recipients", []byte(`{"name":"crm","url":"`+crm.srv.URL+`","secret":"crm-signing-secret-0123","region":"eu"}`), "Authorization", "Bearer "+tn.SecretKey); res.status != 201 {
		t.Fatalf("create recipient with loopback allowed: %d %s", res.status, res.body)
	}
	srv.stop(t)
	cfg.outboundAllow = ""
	srv = startServer(t, cfg)

	// Configuration time: literal internal addresses are refused, naming
	// the field.
	for _, c := range []struct{ path, body, field string }{
		{"/api/v1/recipients", `{"name":"meta","url":"http://169.254.169.254/latest","secret":"crm-signing-secret-0123"}`, "url"},
		{"/api/v1/recipients", `{"name":"local","url":"http://localhost:9/hook","secret":"crm-signing-secret-0123"}`, "url"},
		{"/api/v1/requests", `{"type":"access","identity":{"type":"user_id","value":"u1"},"callback_url":"http://10.0.0.7/cb"}`, "callback_url"},
	} {
		r := srv.do(t, "POST", c.path, []byte(c.body), "Authorization", "Bearer "+tn.SecretKey)
		if r.status != 400 || !strings.HasPrefix(r.errorMessage(), c.field+": outbound address refused") {
			t.Errorf("POST %s %s: %d %s; want 400 naming %s and the refusal", c.path, c.body, r.status, r.body, c.field)
		}
	}

	// Dial time: the recipient stored before is refused on the address
	// actually dialed.
	user := "guard-" + randomHex(6)
	srv.ingest(t, tn.WriteKey, "/v1/batch", batchBody(t, "", trackMessages(user, "g-"+randomHex(4), 1)))
	er := srv.do(t, "POST", "/api/v1/requests", []byte(`{"type":"erasure","identity":{"type":"user_id","value":"`+user+`"}}`), "Authorization", "Bearer "+tn.SecretKey)
	var req map[string]any
	if err := json.Unmarshal(er.body, &req); err != nil {
		t.Fatalf("erasure answer %s: %v", er.body, err)
	}
	id, _ := req["id"].(string)
	if er.status != 201 || id == "" {
		t.Fatalf("erasure: %d %s", er.status, er.body)
	}
	var body string
	testenv.Poll(t, 20*time.Second, "the recipient's notice refused", func() bool {
		body = string(srv.do(t, "GET", "/api/v1/requests/"+id, nil, "Authorization", "Bearer "+tn.SecretKey).body)
		return strings.Contains(body, "outbound address refused")
	}, func() string { return "request " + body })
	if !strings.Contains(body, "loopback") {
		t.Errorf("request = %s, want the recipient's notice refused as loopback", body)
	}
	crm.mu.Lock()
	defer crm.mu.Unlock()
	if len(crm.attempts) != 0 || crm.bad != 0 {
		t.Errorf("the loopback recipient was reached %d times", len(crm.attempts)+crm.bad)
	}
}
