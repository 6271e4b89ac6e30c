package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	rudder "github.com/rudderlabs/analytics-go/v4"
	segment "github.com/segmentio/analytics-go/v3"
)

// scrape returns the value of one series of the server's /metrics, -1
// if absent.
func scrape(t *testing.T, srv *testServer, series string) float64 {
	t.Helper()
	v, ok := metricValue(t, srv.do(t, "GET", "/metrics", nil, "Authorization", "Bearer "+srv.cfg.token).body, series)
	if !ok {
		return -1
	}
	return v
}

// TestIngestRateLimit429: past its bucket a tenant gets 429 with
// Retry-After and the error naming the limit, counted per tenant; another
// tenant is not affected.
func TestIngestRateLimit429(t *testing.T) {
	t.Parallel()
	cfg := newServerConfig(t)
	cfg.extraArgs = append(cfg.extraArgs, "--rate-ingest", "5", "--rate-ingest-burst", "10", "--rate-api", "5", "--rate-api-burst", "5")
	srv := startServer(t, cfg)
	a, b := srv.createTenant(t, "flood"), srv.createTenant(t, "calm")
	if r := srv.ingest(t, a.WriteKey, "/v1/batch", batchBody(t, "", trackMessages("u-"+randomHex(4), "r-"+randomHex(4), 10))); r.Accepted != 10 {
		t.Fatalf("first 10 messages: %+v", r)
	}
	r := srv.do(t, "POST", "/v1/batch", batchBody(t, "", trackMessages("u-"+randomHex(4), "r-"+randomHex(4), 3)),
		"Authorization", basicAuth(a.WriteKey), "Content-Type", "application/json")
	if r.status != 429 || r.header.Get("Retry-After") == "" || !strings.Contains(r.errorMessage(), "rate limit") {
		t.Fatalf("past the burst: %d, Retry-After %q, %s; want 429 naming the rate limit", r.status, r.header.Get("Retry-After"), r.body)
	}
	if n, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || n < 1 {
		t.Errorf("Retry-After = %q, want whole seconds >= 1", r.header.Get("Retry-After"))
	}
	// The other tenant ingests.
	if r := srv.ingest(t, b.WriteKey, "/v1/batch", batchBody(t, "", trackMessages("u-"+randomHex(4), "r-"+randomHex(4), 5))); r.Accepted != 5 {
		t.Errorf("other tenant: %+v, want its 5 accepted", r)
	}
	// The management API has its own bucket.
	var limited bool
	for range 10 {
		r := srv.do(t, "GET", "/api/v1/settings", nil, "Authorization", "Bearer "+a.SecretKey)
		if r.status == 429 {
			limited = r.header.Get("Retry-After") != ""
			break
		}
	}
	if !limited {
		t.Error("10 API requests with a limit of 5/s burst 5: never a 429 with Retry-After")
	}
	// Device requests on /v1/privacy, which the public write key can
	// make, have their own bucket: past it 429, and nothing stored.
	var privacyLimited bool
	for i := range 10 {
		r := srv.do(t, "POST", "/v1/privacy", []byte(`{"type":"suppress","anonymousId":"flood-`+strconv.Itoa(i)+`"}`),
			"Authorization", basicAuth(b.WriteKey), "Content-Type", "application/json")
		if r.status == 429 {
			privacyLimited = r.header.Get("Retry-After") != "" && strings.Contains(r.errorMessage(), "privacy")
			break
		}
		if r.status != 201 {
			t.Fatalf("device request %d: %d %s", i, r.status, r.body)
		}
	}
	if !privacyLimited {
		t.Error("10 device requests with a limit of 5/s burst 5: never a 429 naming the privacy limit")
	}
	if v := scrape(t, srv, `custos_rate_limited_total{scope="ingest",tenant="`+a.ID+`"}`); v < 1 {
		t.Errorf("custos_rate_limited_total for the flooding tenant's ingest = %v, want >= 1", v)
	}
	if v := scrape(t, srv, `custos_rate_limited_total{scope="ingest",tenant="`+b.ID+`"}`); v > 0 {
		t.Errorf("custos_rate_limited_total for the calm tenant = %v, want none", v)
	}
}

// TestClientsRetry429: the Segment and RudderStack Go clients, held to 2
// messages a second, get 429s, retry, and every event arrives.
func TestClientsRetry429(t *testing.T) {
	t.Parallel()
	cfg := newServerConfig(t)
	cfg.extraArgs = append(cfg.extraArgs, "--rate-ingest", "2", "--rate-ingest-burst", "2")
	srv := startServer(t, cfg)
	for _, c := range []struct {
		name    string
		send    func(*testing.T, *testServer, string, []wantEvent, ...time.Duration)
		version string
	}{
		{"segment", sendWithSegment, segment.Version},
		{"rudder", sendWithRudder, rudder.Version},
	} {
		tn := srv.createTenant(t, c.name+"-limited")
		p := newPerson(c.name)
		flow := clientFlow(c.name, p)
		c.send(t, srv, tn.WriteKey, flow, 350*time.Millisecond)
		if v := scrape(t, srv, `custos_rate_limited_total{scope="ingest",tenant="`+tn.ID+`"}`); v < 1 {
			t.Errorf("%s: no 429 was answered (%v), the retry was not exercised", c.name, v)
		}
		checkFlow(t, srv, tn.SecretKey, p, flow, "analytics-go", c.version)
	}
}

// TestSlowClients: a client dribbling its headers and one dribbling its
// body are cut off at the read timeouts; idle connections beyond
// --max-connections wait, and the server keeps answering others once
// idle ones time out.
func TestSlowClients(t *testing.T) {
	t.Parallel()
	cfg := newServerConfig(t)
	cfg.extraArgs = append(cfg.extraArgs, "--read-header-timeout", "1s", "--read-timeout", "2s", "--idle-timeout", "1s", "--max-connections", "20")
	srv := startServer(t, cfg)
	addr := strings.TrimPrefix(srv.URL, "http://")

	// Slow headers: one byte every 200ms never completes the header block.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	closed := dribble(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "+strings.Repeat("a", 200), 200*time.Millisecond)
	if took := time.Since(start); !closed || took > 4*time.Second {
		t.Errorf("slow headers: closed %v after %v, want cut off near the 1s header timeout", closed, took)
	}

	// Slow body: headers at once, then the body a byte every 200ms.
	tn := srv.createTenant(t, "slow")
	body := string(batchBody(t, "", trackMessages("slow-"+randomHex(4), "s-"+randomHex(4), 1)))
	conn2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	head := fmt.Sprintf("POST /v1/batch HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", basicAuth(tn.WriteKey), len(body))
	conn2.Write([]byte(head))
	start = time.Now()
	closed = dribble(conn2, body, 200*time.Millisecond)
	if took := time.Since(start); !closed || took > 5*time.Second {
		t.Errorf("slow body: closed %v after %v, want cut off near the 2s read timeout", closed, took)
	}

	// Many idle connections: 40 open and silent, twice the limit. The
	// server still answers a real request once the idle ones are cut off.
	var idle []net.Conn
	for range 40 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial idle connection: %v", err)
		}
		idle = append(idle, c)
	}
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	client := &http.Client{Timeout: 10 * time.Second}
	start = time.Now()
	resp, err := client.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz with 40 idle connections open: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /healthz: %d", resp.StatusCode)
	}
	t.Logf("answered after %v with 40 idle connections against a limit of 20", time.Since(start))
	// Every idle connection was closed by the server (read returns EOF).
	for i, c := range idle[:20] {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Errorf("idle connection %d: read data, want it closed", i)
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("idle connection %d: still open after the timeouts", i)
		}
	}
}

// dribble writes s one byte per interval until the peer closes the
// connection, and reports whether it did before s ran out.
func dribble(c net.Conn, s string, interval time.Duration) (closed bool) {
	gone := make(chan struct{})
	go func() {
		// The server's answer (a 408 or nothing) then EOF means it closed.
		io.Copy(io.Discard, bufio.NewReader(c))
		close(gone)
	}()
	for i := 0; i < len(s); i++ {
		select {
		case <-gone:
			return true
		case <-time.After(interval):
		}
		if _, err := c.Write([]byte{s[i]}); err != nil {
			return true
		}
	}
	select {
	case <-gone:
		return true
	case <-time.After(time.Second):
		return false
	}
}

// TestOperatorSetsTenantRateLimits: the operator raises one tenant's
// ingestion limit above the node's and lowers another's API limit; each
// takes effect at once, the tenant cannot change its own, and {} returns
// a tenant to the node's limits.
func TestOperatorSetsTenantRateLimits(t *testing.T) {
	t.Parallel()
	cfg := newServerConfig(t)
	cfg.extraArgs = append(cfg.extraArgs, "--rate-ingest", "5", "--rate-ingest-burst", "10")
	srv := startServer(t, cfg)
	big, small := srv.createTenant(t, "big"), srv.createTenant(t, "small")
	op := "Bearer " + cfg.token
	put := func(id, body string) response {
		t.Helper()
		return srv.do(t, "PUT", "/admin/v1/tenants/"+id+"/rate-limits", []byte(body), "Authorization", op, "Content-Type", "application/json")
	}
	if r := put(big.ID, `{"ingest_per_second":1000,"ingest_burst":1000}`); r.status != 200 || !strings.Contains(string(r.body), `"ingest_per_second":1000`) {
		t.Fatalf("set big's limits: %d %s", r.status, r.body)
	}
	// 200 messages at once: far past the node's burst of 10, within big's.
	if r := srv.ingest(t, big.WriteKey, "/v1/batch", batchBody(t, "", trackMessages("u-"+randomHex(4), "r-"+randomHex(4), 200))); r.Accepted != 200 {
		t.Errorf("big's 200 messages under its own limit: %+v, want all accepted", r)
	}
	// small still has the node's: its burst of 10 taken, it waits.
	if r := srv.ingest(t, small.WriteKey, "/v1/batch", batchBody(t, "", trackMessages("u-"+randomHex(4), "r-"+randomHex(4), 10))); r.Accepted != 10 {
		t.Errorf("small's first 10 messages: %+v", r)
	}
	r := srv.do(t, "POST", "/v1/batch", batchBody(t, "", trackMessages("u-"+randomHex(4), "r-"+randomHex(4), 10)),
		"Authorization", basicAuth(small.WriteKey), "Content-Type", "application/json")
	if r.status != 429 || !strings.Contains(r.errorMessage(), "rate limit") {
		t.Errorf("small's next 10 messages past the node's burst of 10: %d %s, want 429", r.status, r.body)
	}
	// small's API: 1 request a second, burst 1.
	if r := put(small.ID, `{"api_per_second":1,"api_burst":1}`); r.status != 200 {
		t.Fatalf("set small's limits: %d %s", r.status, r.body)
	}
	codes := []int{}
	for range 3 {
		codes = append(codes, srv.do(t, "GET", "/api/v1/settings", nil, "Authorization", "Bearer "+small.SecretKey).status)
	}
	if codes[0] != 200 || !slices.Contains(codes, 429) {
		t.Errorf("small's API with 1/s burst 1: statuses %v, want 200 then a 429", codes)
	}
	// Bad figures are refused, naming the field.
	if r := put(small.ID, `{"api_per_second":-1}`); r.status != 400 || !strings.Contains(r.errorMessage(), "api_per_second") {
		t.Errorf("negative rate: %d %s, want 400 naming api_per_second", r.status, r.body)
	}
	// The tenant cannot set its own: not through its settings, not through
	// the operator route.
	if r := srv.do(t, "PATCH", "/api/v1/settings", []byte(`{"rate_limits":{"ingest_per_second":1000000}}`), "Authorization", "Bearer "+small.SecretKey, "Content-Type", "application/json"); r.status != 400 && r.status != 429 {
		t.Errorf("tenant patches rate_limits into its settings: %d %s, want refused", r.status, r.body)
	}
	if r := srv.do(t, "PUT", "/admin/v1/tenants/"+small.ID+"/rate-limits", []byte(`{}`), "Authorization", "Bearer "+small.SecretKey, "Content-Type", "application/json"); r.status != 401 {
		t.Errorf("tenant calls the operator route: %d, want 401", r.status)
	}
	// {} returns big to the node's limits: its bucket shrinks to the
	// node's burst of 10.
	if r := put(big.ID, `{}`); r.status != 200 || strings.Contains(string(r.body), "rate_limits") {
		t.Fatalf("reset big's limits: %d %s", r.status, r.body)
	}
	if r := srv.ingest(t, big.WriteKey, "/v1/batch", batchBody(t, "", trackMessages("u-"+randomHex(4), "r-"+randomHex(4), 10))); r.Accepted != 10 {
		t.Errorf("big's 10 messages after the reset: %+v", r)
	}
	r = srv.do(t, "POST", "/v1/batch", batchBody(t, "", trackMessages("u-"+randomHex(4), "r-"+randomHex(4), 10)),
		"Authorization", basicAuth(big.WriteKey), "Content-Type", "application/json")
	if r.status != 429 {
		t.Errorf("big's next 10 messages after the reset: %d %s, want 429 under the node's limits", r.status, r.body)
	}
}
