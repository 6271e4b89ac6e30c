package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// metricValue returns the value of the sample whose name and labels are
// exactly series (e.g. `custos_messages_rejected_total{reason="missing_identity"}`).
func metricValue(t *testing.T, text []byte, series string) (float64, bool) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		// Label values may hold spaces ("POST /v1/batch"): the value is the last field.
		i := strings.LastIndexByte(line, ' ')
		if i > 0 && line[:i] == series {
			value := line[i+1:]
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				t.Fatalf("metric %s: value %q: %v", series, value, err)
			}
			return v, true
		}
	}
	return 0, false
}

// TestObservability checks the health endpoints and that /metrics counts
// what was ingested.
func TestObservability(t *testing.T) {
	t.Parallel()
	srv := startServer(t, newServerConfig(t))
	for path, want := range map[string]string{"/healthz": `"ok"`, "/readyz": `"ready"`} {
		r := srv.do(t, "GET", path, nil)
		if r.status != http.StatusOK || !bytes.Contains(r.body, []byte(want)) {
			t.Errorf("GET %s: status %d, body %s, want 200 with %s", path, r.status, r.body, want)
		}
	}

	tn := srv.createTenant(t, "metrics")
	user := "metrics-" + randomHex(6)
	run := randomHex(4)
	// 7 stored, 1 duplicate, 3 rejected (2 without identity, 1 without event).
	srv.ingest(t, tn.WriteKey, "/v1/batch", batchBody(t, "", trackMessages(user, "m-"+run, 4)))
	second := append(trackMessages(user, "m-"+run, 1), trackMessages(user, "n-"+run, 2)...)
	second = append(second,
		map[string]any{"type": "track", "messageId": "x1-" + run, "event": "No One"},
		map[string]any{"type": "identify", "messageId": "x2-" + run, "traits": map[string]any{"a": 1}},
		map[string]any{"type": "track", "messageId": "x3-" + run, "userId": user},
	)
	res := srv.ingest(t, tn.WriteKey, "/v1/batch", batchBody(t, "", second))
	if res.Accepted != 2 || res.Duplicates != 1 || len(res.Rejected) != 3 {
		t.Fatalf("second batch: %+v, want 2 accepted, 1 duplicate, 3 rejected", res)
	}
	if res := srv.ingest(t, tn.WriteKey, "/v1/track", mustJSON(t, trackMessages(user, "o-"+run, 1)[0])); res.Accepted != 1 {
		t.Fatalf("single track: %+v", res)
	}
	prof := srv.findProfile(t, tn.SecretKey, "user_id", user)
	srv.events(t, tn.SecretKey, prof.SubjectID, 0)
	srv.do(t, "GET", "/no/such/"+user, nil)

	// /metrics is not public on the API listener: it wants the metrics or
	// the operator token.
	for _, auth := range []string{"", "Bearer " + tn.SecretKey, "Bearer wrong"} {
		r := srv.do(t, "GET", "/metrics", nil, "Authorization", auth)
		if r.status != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("GET /metrics with Authorization %q: %d, WWW-Authenticate %q; want 401 with a challenge", auth, r.status, r.header.Get("WWW-Authenticate"))
		}
	}
	r := srv.do(t, "GET", "/metrics", nil, "Authorization", "Bearer "+srv.cfg.token)
	if r.status != http.StatusOK {
		t.Fatalf("GET /metrics: status %d", r.status)
	}
	for _, c := range []struct {
		series string
		want   float64
	}{
		{"custos_messages_accepted_total", 7},
		{`custos_messages_rejected_total{reason="missing_identity"}`, 2},
		{`custos_messages_rejected_total{reason="missing_event"}`, 1},
		{`custos_messages_dropped_total{reason="duplicate"}`, 1},
		{`custos_http_request_duration_seconds_count{code="200",route="POST /v1/batch"}`, 2},
		{`custos_http_request_duration_seconds_count{code="200",route="POST /v1/track"}`, 1},
		{`custos_http_request_duration_seconds_count{code="201",route="POST /admin/v1/tenants"}`, 1},
		{`custos_http_request_duration_seconds_count{code="200",route="GET /api/v1/profiles/{subject_id}/events"}`, 1},
		{`custos_http_request_duration_seconds_count{code="404",route="unmatched"}`, 1},
	} {
		got, ok := metricValue(t, r.body, c.series)
		if !ok {
			t.Errorf("/metrics has no %s", c.series)
		} else if got != c.want {
			t.Errorf("%s = %v, want %v", c.series, got, c.want)
		}
	}
	if !bytes.Contains(r.body, []byte("custos_http_request_duration_seconds_bucket{")) {
		t.Errorf("/metrics has no custos_http_request_duration_seconds histogram buckets")
	}
	// Labels carry route patterns, never identifiers from the path.
	assertNoneOf(t, "/metrics", r.body, []string{user, prof.SubjectID, tn.ID, tn.WriteKey})
}

// TestLogsCarryNoPersonalData runs the client flows, the HTTP flows and
// their error paths against one server logging at debug level, stops it,
// and looks for every identifier, e-mail address, trait value, IP address
// and secret that was sent in everything the server wrote.
func TestLogsCarryNoPersonalData(t *testing.T) {
	t.Parallel()
	cfg := newServerConfig(t)
	cfg.extraArgs = []string{"--log-level", "debug"}
	srv := startServer(t, cfg)
	tn := srv.createTenant(t, "logs")
	other := srv.createTenant(t, "logs-other")
	var personal []string

	ps := newPerson("logseg")
	sendWithSegment(t, srv, tn.WriteKey, clientFlow("logseg", ps))
	pr := newPerson("logrs")
	sendWithRudder(t, srv, tn.WriteKey, clientFlow("logrs", pr))
	personal = append(personal, ps.personal()...)
	personal = append(personal, pr.personal()...)

	ph := newPerson("loghttp")
	personal = append(personal, ph.personal()...)
	fwd := "198.51.100.77"
	agent := "Mozilla/5.0 (Ada's Laptop " + randomHex(4) + ")"
	personal = append(personal, fwd, agent)
	msg := map[string]any{"type": "identify", "messageId": "log-" + ph.userID, "userId": ph.userID, "anonymousId": ph.anonID,
		"traits":  map[string]any{"email": ph.email, "name": ph.name, "plan": ph.plan},
		"context": map[string]any{"ip": ph.ip, "userAgent": agent, "traits": map[string]any{"email": ph.email}}}
	hdr := []string{"Authorization", basicAuth(tn.WriteKey), "X-Forwarded-For", fwd, "User-Agent", agent, "AnonymousId", base64.StdEncoding.EncodeToString([]byte(ph.anonID))}
	good := batchBody(t, "", []map[string]any{msg})
	srv.do(t, "POST", "/v1/batch", good, hdr...)
	srv.do(t, "POST", "/v1/batch", good, hdr...) // duplicate
	srv.do(t, "POST", "/v1/batch", gzipBytes(t, good), append(hdr, "Content-Encoding", "gzip")...)
	// Error paths carrying personal data.
	srv.do(t, "POST", "/v1/batch", []byte(`{"batch":[{"userId":"`+ph.userID+`","traits":{"email":"`+ph.email+`"`), hdr...)
	srv.do(t, "POST", "/v1/batch", []byte(ph.email), hdr...)
	srv.do(t, "POST", "/v1/batch", good, "Authorization", basicAuth("wk_"+ph.userID))
	srv.do(t, "POST", "/v1/batch", gzipBytes(t, good)[:30], append(hdr, "Content-Encoding", "gzip")...)
	srv.do(t, "POST", "/v1/batch", batchBody(t, "", []map[string]any{
		{"type": ph.email, "userId": ph.userID},
		{"type": "track", "userId": ph.userID, "timestamp": ph.name},
		{"type": "track", "event": ph.plan, "properties": map[string]any{"email": ph.email}},
	}), hdr...)
	srv.do(t, "POST", "/v1/t", mustJSON(t, map[string]any{"writeKey": tn.WriteKey, "userId": ph.userID, "event": "T", "context": map[string]any{"ip": ph.ip}}), "Content-Type", "text/plain")
	srv.do(t, "OPTIONS", "/v1/t", nil, "Origin", "https://"+ph.plan+".example", "Access-Control-Request-Headers", "authorization,content-type,anonymousid,sentat")
	// Reads, found and not, right and wrong key.
	sub := srv.findProfile(t, tn.SecretKey, "email", ph.email).SubjectID
	srv.events(t, tn.SecretKey, sub, 1)
	srv.lookup(t, other.SecretKey, "email", ph.email)
	srv.lookup(t, tn.SecretKey, "email", "nobody-"+ph.email)
	srv.do(t, "GET", "/api/v1/profiles?user_id="+ph.userID+"&email="+ph.email, nil, "Authorization", "Bearer "+tn.SecretKey)
	srv.do(t, "GET", "/api/v1/profiles?user_id="+ph.userID, nil, "Authorization", "Bearer "+tn.WriteKey)
	srv.do(t, "GET", "/api/v1/profiles/"+sub+"/events?cursor="+ph.userID, nil, "Authorization", "Bearer "+tn.SecretKey)
	srv.do(t, "GET", "/api/v1/profiles/"+ph.userID+"/events", nil, "Authorization", "Bearer "+tn.SecretKey)
	srv.do(t, "GET", "/"+ph.email, nil)
	// Operator calls.
	srv.do(t, "POST", "/admin/v1/tenants/"+tn.ID+"/keys/rotate", nil, "Authorization", "Bearer "+cfg.token)
	srv.do(t, "POST", "/admin/v1/tenants", []byte(`{"name":"`+ph.name+`","region":"`+ph.plan+`"}`), "Authorization", "Bearer "+cfg.token)
	srv.do(t, "GET", "/admin/v1/tenants", nil, "Authorization", "Bearer "+ph.email)
	srv.do(t, "GET", "/metrics", nil, "Authorization", "Bearer "+srv.cfg.token)
	srv.stop(t)

	out := srv.allOutput()
	if len(jsonLines(out)) < 3 {
		t.Fatalf("server wrote %d JSON log records; want at least start, listening and stop:\n%s", len(jsonLines(out)), out)
	}
	assertNoneOf(t, "server log", out, personal)
	assertNoneOf(t, "server log", out, []string{tn.WriteKey, tn.SecretKey, other.WriteKey, other.SecretKey, cfg.token, cfg.masterKey})
	for i, rec := range jsonLines(out) {
		if _, ok := rec["msg"]; !ok {
			t.Errorf("log record %d has no msg: %v", i, rec)
		}
	}
}

// TestMetricsAddress: --metrics-addr serves /metrics without a token on
// its own listener, while the API listener still wants one.
func TestMetricsAddress(t *testing.T) {
	t.Parallel()
	cfg := newServerConfig(t)
	cfg.extraArgs = []string{"--metrics-addr", "127.0.0.1:0"}
	srv := startServer(t, cfg)
	addr := ""
	for _, rec := range jsonLines(srv.logs.Bytes()) {
		if rec["msg"] == "metrics listening" {
			addr, _ = rec["addr"].(string)
		}
	}
	if addr == "" {
		t.Fatalf("no \"metrics listening\" log record with an addr:\n%s", srv.logs.Bytes())
	}
	resp, err := srv.http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("GET metrics address: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "custos_") {
		t.Errorf("GET http://%s/metrics without a token: %d, %v; want 200 with custos_ series", addr, resp.StatusCode, err)
	}
	if r := srv.do(t, "GET", "/metrics", nil); r.status != http.StatusUnauthorized {
		t.Errorf("GET /metrics on the API listener without a token: %d, want 401", r.status)
	}
}
