package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestRegionPinning starts a node of region eu, makes a tenant there, and
// restarts the node over the same data as a node of region us: every path
// a tenant's key opens — each ingestion path, the beacon, /v1/privacy, the
// management API and OpenDSR — answers 421 naming both regions, and
// nothing is stored: back on an eu node, no subject exists for the
// identifiers sent, the messages are not duplicates (no dedupe record),
// and no request or recipient was made. The operator still lists the
// tenant.
func TestRegionPinning(t *testing.T) {
	t.Parallel()
	cfg := newServerConfig(t)
	eu := startServer(t, cfg)
	a := eu.createTenant(t, "pinned")
	eu.stop(t)

	usCfg := cfg
	usCfg.extraArgs = append(usCfg.extraArgs, "--region", "us")
	us := startServer(t, usCfg)
	anon := "region-anon-" + randomHex(6)
	msg := `{"type":"track","event":"Pinned","anonymousId":"` + anon + `","messageId":"region-msg-1"}`
	batch := []byte(`{"batch":[` + msg + `]}`)
	want421 := func(what string, r response) {
		t.Helper()
		var body struct {
			Error struct {
				Code         string `json:"code"`
				Message      string `json:"message"`
				TenantRegion string `json:"tenant_region"`
				NodeRegion   string `json:"node_region"`
			} `json:"error"`
		}
		json.Unmarshal(r.body, &body)
		if r.status != http.StatusMisdirectedRequest || body.Error.Code != "misdirected" || body.Error.TenantRegion != "eu" ||
			body.Error.NodeRegion != "us" || !strings.Contains(body.Error.Message, `"eu"`) || !strings.Contains(body.Error.Message, `"us"`) {
			t.Errorf("%s on a us node for an eu tenant: status %d, body %s; want 421 naming tenant region eu and node region us", what, r.status, r.body)
		}
	}
	for _, p := range []string{"/v1/batch", "/v1/b", "/beacon/v1/batch"} {
		want421("POST "+p, us.do(t, "POST", p, batch, "Authorization", basicAuth(a.WriteKey)))
	}
	for _, p := range []string{"/v1/track", "/v1/t", "/v1/page", "/v1/p", "/v1/screen", "/v1/s", "/v1/identify", "/v1/i", "/v1/group", "/v1/g", "/v1/alias", "/v1/a"} {
		one := `{"type":"track","event":"Pinned","name":"n","groupId":"g","userId":"u-` + anon + `","previousId":"` + anon + `","anonymousId":"` + anon + `","messageId":"region-` + p + `"}`
		want421("POST "+p, us.do(t, "POST", p, []byte(one), "Authorization", basicAuth(a.WriteKey)))
	}
	// The write key in the body, as the beacon sends it.
	want421("POST /beacon/v1/batch (key in body)", us.do(t, "POST", "/beacon/v1/batch", []byte(`{"writeKey":"`+a.WriteKey+`","batch":[`+msg+`]}`)))
	want421("POST /v1/privacy", us.do(t, "POST", "/v1/privacy", []byte(`{"type":"suppress","anonymousId":"`+anon+`","writeKey":"`+a.WriteKey+`"}`)))
	bearer := "Bearer " + a.SecretKey
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/api/v1/profiles?anonymous_id=" + anon, ""},
		{"POST", "/api/v1/requests", `{"type":"suppress","identity":{"type":"anonymous_id","value":"` + anon + `"}}`},
		{"GET", "/api/v1/requests", ""},
		{"POST", "/api/v1/recipients", `{"name":"crm","url":"https://crm.example.com/hook","secret":"0123456789abcdef0123","region":"eu"}`},
		{"GET", "/api/v1/recipients", ""},
		{"GET", "/api/v1/settings", ""},
		{"PATCH", "/api/v1/settings", `{"keep_full_ip":true}`},
		{"GET", "/api/v1/audit", ""},
		{"GET", "/api/v1/processing-record", ""},
	} {
		var body []byte
		if c.body != "" {
			body = []byte(c.body)
		}
		want421(c.method+" "+c.path, us.do(t, c.method, c.path, body, "Authorization", bearer, "Content-Type", "application/json"))
	}
	// OpenDSR routes answer in the OpenDSR error shape, naming both regions.
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/opendsr/v2/discovery", ""},
		{"POST", "/opendsr/v2/requests", `{}`},
		{"GET", "/opendsr/v1/discovery", ""},
	} {
		r := us.do(t, c.method, c.path, []byte(c.body), "Authorization", bearer, "Content-Type", "application/json")
		e := dsrError(t, c.method+" "+c.path, r)
		if r.status != http.StatusMisdirectedRequest || !strings.Contains(e.Message, `"eu"`) || !strings.Contains(e.Message, `"us"`) {
			t.Errorf("%s %s on a us node for an eu tenant: %d %s; want 421 naming regions eu and us", c.method, c.path, r.status, r.body)
		}
	}
	// The operator still sees the tenant.
	if r := us.do(t, "GET", "/admin/v1/tenants/"+a.ID, nil, "Authorization", "Bearer "+cfg.token); r.status != http.StatusOK {
		t.Errorf("operator GET of an eu tenant on a us node: status %d, want 200; body %s", r.status, r.body)
	}
	// A tenant of the node's own region is served as usual.
	b := us.createTenant(t, "local")
	if res := us.ingest(t, b.WriteKey, "/v1/batch", batch); res.Accepted != 1 {
		t.Errorf("ingest for a us tenant on a us node accepted %d, want 1", res.Accepted)
	}
	us.stop(t)

	eu = startServer(t, cfg)
	if r := eu.lookup(t, a.SecretKey, "anonymous_id", anon); r.status != http.StatusNotFound {
		t.Errorf("after the refused requests, profile of %s: status %d, want 404 (nothing stored); body %s", anon, r.status, r.body)
	}
	for _, p := range []string{"/api/v1/requests", "/api/v1/recipients"} {
		r := eu.do(t, "GET", p, nil, "Authorization", bearer)
		if r.status != http.StatusOK || strings.Contains(string(r.body), `"id"`) {
			t.Errorf("GET %s after the refused requests = %d %s; want none made", p, r.status, r.body)
		}
	}
	if got := decodeObject(t, "settings", eu.do(t, "GET", "/api/v1/settings", nil, "Authorization", bearer).body); got["keep_full_ip"] != false {
		t.Errorf("keep_full_ip = %v after a refused patch, want false", got["keep_full_ip"])
	}
	// No dedupe record was left: the same message is new here.
	if res := eu.ingest(t, a.WriteKey, "/v1/batch", batch); res.Accepted != 1 || res.Duplicates != 0 {
		t.Errorf("the refused message sent to its own region: accepted %d, duplicates %d; want 1, 0", res.Accepted, res.Duplicates)
	}
	eu.findProfile(t, a.SecretKey, "anonymous_id", anon)
	// And the us tenant is refused here in turn.
	if r := eu.do(t, "POST", "/v1/batch", batch, "Authorization", basicAuth(b.WriteKey)); r.status != http.StatusMisdirectedRequest {
		t.Errorf("us tenant on an eu node: status %d, want 421", r.status)
	}
}
