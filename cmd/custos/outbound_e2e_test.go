package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestOutboundGuardRefusesLoopbackRecipients: with no --outbound-allow, a
// recipient a tenant points at 127.0.0.1 is never reached; the request
// records the refusal.
func TestOutboundGuardRefusesLoopbackRecipients(t *testing.T) {
	t.Parallel()
	cfg := newServerConfig(t)
	cfg.outboundAllow = ""
	srv := startServer(t, cfg)
	tn := srv.createTenant(t, "inside")
	crm := newReceiver(t, "crm-signing-secret-0123")
	res := srv.do(t, "POST", "/api/v1/recipients", []byte(`{"name":"crm","url":"`+crm.srv.URL+`","secret":"crm-signing-secret-0123","region":"eu"}`), "Authorization", "Bearer "+tn.SecretKey)
	if res.status != 201 {
		t.Fatalf("create recipient: %d %s", res.status, res.body)
	}
	user := "guard-" + randomHex(6)
	srv.ingest(t, tn.WriteKey, "/v1/batch", batchBody(t, "", trackMessages(user, "g-"+randomHex(4), 1)))
	er := srv.do(t, "POST", "/api/v1/requests", []byte(`{"type":"erasure","identity":{"type":"user_id","value":"`+user+`"}}`), "Authorization", "Bearer "+tn.SecretKey)
	var req map[string]any
	json.Unmarshal(er.body, &req)
	id, _ := req["id"].(string)
	if er.status != 201 || id == "" {
		t.Fatalf("erasure: %d %s", er.status, er.body)
	}
	deadline := time.Now().Add(20 * time.Second)
	var body string
	for time.Now().Before(deadline) {
		body = string(srv.do(t, "GET", "/api/v1/requests/"+id, nil, "Authorization", "Bearer "+tn.SecretKey).body)
		if strings.Contains(body, "outbound address refused") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(body, "outbound address refused") || !strings.Contains(body, "loopback") {
		t.Errorf("request = %s, want the recipient's notice refused as loopback", body)
	}
	crm.mu.Lock()
	defer crm.mu.Unlock()
	if len(crm.attempts) != 0 || crm.bad != 0 {
		t.Errorf("the loopback recipient was reached %d times", len(crm.attempts)+crm.bad)
	}
}
