package main

// This file is the end-to-end harness: it runs `custos serve` through run(),
// exactly as main does, and talks to it over HTTP like any client would.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// Environment variables of the re-executed test binary (TestCrashLosesNoAcknowledgedMessage).
const (
	childEnv     = "CUSTOS_E2E_CHILD"
	childArgsEnv = "CUSTOS_E2E_ARGS"
)

// TestMain lets the test binary double as the custos binary: with
// CUSTOS_E2E_CHILD=1 it runs run() with the JSON array of arguments in
// CUSTOS_E2E_ARGS and exits, so a test can SIGKILL a real server process.
// With CUSTOS_E2E_FLOODER set it is TestFairnessUnderFlood's flooding
// client instead.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		var args []string
		if err := json.Unmarshal([]byte(os.Getenv(childArgsEnv)), &args); err != nil {
			fmt.Fprintln(os.Stderr, "custos e2e child: bad", childArgsEnv+":", err)
			os.Exit(2)
		}
		if err := run(context.Background(), args, os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "custos:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if url := os.Getenv(flooderEnv); url != "" {
		if err := runFlooder(url, os.Getenv(flooderKeyEnv), os.Stdin); err != nil {
			fmt.Fprintln(os.Stderr, "flooder:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startTimeout bounds how long a server may take to start listening, and
// stopTimeout how long run may take to return once its context is
// cancelled. Both are deadlines for failing, never waits.
const (
	startTimeout = 30 * time.Second
	stopTimeout  = 30 * time.Second
)

// logBuffer is an io.Writer that goroutines may share. Every write wakes
// whoever waits for output.
type logBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced on every write
}

func newLogBuffer() *logBuffer { return &logBuffer{changed: make(chan struct{})} }

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	close(b.changed)
	b.changed = make(chan struct{})
	return len(p), nil
}

// snapshot returns a copy of everything written so far and a channel that
// is closed at the next write.
func (b *logBuffer) snapshot() ([]byte, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes()), b.changed
}

func (b *logBuffer) Bytes() []byte { out, _ := b.snapshot(); return out }

// jsonLines decodes the JSON log records in out, skipping other lines.
func jsonLines(out []byte) []map[string]any {
	var recs []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			recs = append(recs, m)
		}
	}
	return recs
}

// listenAddr returns the "addr" of the "custos listening" log record in out.
func listenAddr(out []byte) (string, bool) {
	for _, rec := range jsonLines(out) {
		if rec["msg"] == "custos listening" {
			addr, ok := rec["addr"].(string)
			return addr, ok && addr != ""
		}
	}
	return "", false
}

// serverConfig is what a server is started with; a restart reuses it.
type serverConfig struct {
	dir       string
	token     string
	masterKey string // base64 of 32 bytes
	extraArgs []string
	// outboundAllow is the server's --outbound-allow (CUSTOS_OUTBOUND_ALLOW):
	// loopback by default, since the tests' receivers listen there.
	outboundAllow string
}

// newServerConfig returns a fresh data directory, operator token and master key.
func newServerConfig(t *testing.T) serverConfig {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	return serverConfig{
		dir:       t.TempDir(),
		token:     "op_test_" + randomHex(16),
		masterKey: base64.StdEncoding.EncodeToString(key),

		outboundAllow: testOutboundAllow,
	}
}

// getenv is the whole environment the server sees: nothing of the test
// process leaks in.
func (c serverConfig) getenv() func(string) string {
	env := map[string]string{
		"CUSTOS_OPERATOR_TOKEN": c.token,
		"CUSTOS_MASTER_KEY":     c.masterKey,
		"CUSTOS_OUTBOUND_ALLOW": c.outboundAllow,
	}
	return func(name string) string { return env[name] }
}

// testOutboundAllow admits the loopback receivers tests start.
const testOutboundAllow = "127.0.0.0/8,::1"

func (c serverConfig) args(addr string) []string {
	args := []string{"serve", "--addr", addr, "--data", c.dir, "--log-format", "json"}
	return append(args, c.extraArgs...)
}

// testServer is one `custos serve` running in-process through run().
type testServer struct {
	cfg    serverConfig
	URL    string // http://127.0.0.1:port
	logs   *logBuffer
	stdout *logBuffer
	http   *http.Client

	cancel  context.CancelFunc
	done    chan error
	stopMu  sync.Mutex
	stopped bool
}

// startServer runs `custos serve` on a free port and returns once it
// listens. The server is stopped (and run's result checked) when the test ends.
func startServer(t *testing.T, cfg serverConfig) *testServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &testServer{
		cfg:    cfg,
		logs:   newLogBuffer(),
		stdout: newLogBuffer(),
		http:   &http.Client{Timeout: 20 * time.Second},
		cancel: cancel,
		done:   make(chan error, 1),
	}
	go func() {
		s.done <- run(ctx, cfg.args("127.0.0.1:0"), cfg.getenv(), strings.NewReader(""), s.stdout, s.logs)
	}()
	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	for {
		out, changed := s.logs.snapshot()
		if addr, ok := listenAddr(out); ok {
			s.URL = "http://" + addr
			break
		}
		select {
		case <-changed:
		case err := <-s.done:
			cancel()
			s.stopped = true
			t.Fatalf("run returned before listening: %v\nlog:\n%s", err, s.logs.Bytes())
		case <-deadline.C:
			cancel()
			select { // let run finish with the data directory before it is removed
			case <-s.done:
			case <-time.After(stopTimeout):
			}
			s.stopped = true
			t.Fatalf("no \"custos listening\" log record within %v; log:\n%s", startTimeout, out)
		}
	}
	t.Cleanup(func() { s.stop(t) })
	return s
}

// stop cancels run's context and waits for it to return nil. It is safe
// to call more than once.
func (s *testServer) stop(t *testing.T) {
	t.Helper()
	s.stopMu.Lock()
	defer s.stopMu.Unlock()
	if s.stopped {
		return
	}
	s.stopped = true
	s.http.CloseIdleConnections()
	s.cancel()
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("run(serve) returned %v after ctx was cancelled; want nil\nlog:\n%s", err, s.logs.Bytes())
		}
	case <-time.After(stopTimeout):
		t.Errorf("run(serve) did not return within %v of ctx being cancelled", stopTimeout)
	}
}

// allOutput is everything the server wrote, to stderr and to stdout.
func (s *testServer) allOutput() []byte {
	return append(s.logs.Bytes(), s.stdout.Bytes()...)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// response is an HTTP answer, read whole.
type response struct {
	status int
	header http.Header
	body   []byte
}

// errorMessage returns error.message of a JSON error answer; for a body
// that is not JSON, a text saying so, which no expected message matches.
func (r response) errorMessage() string {
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil {
		return fmt.Sprintf("(not a JSON error answer: %v: %q)", err, r.body)
	}
	return e.Error.Message
}

// errorCode returns error.code of a JSON error answer; for a body that is
// not JSON, a text saying so, which no expected code matches.
func (r response) errorCode() string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil {
		return fmt.Sprintf("(not a JSON error answer: %v: %q)", err, r.body)
	}
	return e.Error.Code
}

// do sends a request to the server; headers are name, value pairs.
func (s *testServer) do(t *testing.T, method, path string, body []byte, headers ...string) response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := s.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// tenantInfo is a tenant as the operator API answers its creation.
type tenantInfo struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Region    string    `json:"region"`
	CreatedAt time.Time `json:"created_at"`
	WriteKey  string    `json:"write_key"`
	SecretKey string    `json:"secret_key"`
	Identity  string    `json:"identity_verification_secret"`
	Callback  string    `json:"callback_signing_secret"`
	Delivery  string    `json:"delivery_signing_secret"`
}

// createTenant makes a tenant through POST /admin/v1/tenants.
func (s *testServer) createTenant(t *testing.T, name string) tenantInfo {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"name": name})
	r := s.do(t, "POST", "/admin/v1/tenants", body, "Authorization", "Bearer "+s.cfg.token, "Content-Type", "application/json")
	if r.status != http.StatusCreated {
		t.Fatalf("POST /admin/v1/tenants: status %d, want 201; body %s", r.status, r.body)
	}
	var ti tenantInfo
	if err := json.Unmarshal(r.body, &ti); err != nil {
		t.Fatalf("POST /admin/v1/tenants: decode %s: %v", r.body, err)
	}
	if ti.ID == "" || ti.WriteKey == "" || ti.SecretKey == "" || ti.WriteKey == ti.SecretKey {
		t.Fatalf("POST /admin/v1/tenants answered %s; want an id and two distinct keys", r.body)
	}
	if ti.Name != name {
		t.Errorf("created tenant name = %q, want %q", ti.Name, name)
	}
	return ti
}

// ingestResult is the 200 answer to an ingestion request.
type ingestResult struct {
	Success    bool `json:"success"`
	Accepted   int  `json:"accepted"`
	Duplicates int  `json:"duplicates"`
	Rejected   []struct {
		Index   int    `json:"index"`
		Reason  string `json:"reason"`
		Message string `json:"message"`
	} `json:"rejected"`
}

// ingest posts body to an ingestion path with the write key as HTTP Basic
// user name and wants a 200.
func (s *testServer) ingest(t *testing.T, writeKey, path string, body []byte) ingestResult {
	t.Helper()
	r := s.do(t, "POST", path, body, "Authorization", basicAuth(writeKey), "Content-Type", "application/json")
	if r.status != http.StatusOK {
		t.Fatalf("POST %s: status %d, want 200; body %s", path, r.status, r.body)
	}
	var res ingestResult
	if err := json.Unmarshal(r.body, &res); err != nil {
		t.Fatalf("POST %s: decode %s: %v", path, r.body, err)
	}
	return res
}

func basicAuth(user string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"))
}

// mustJSON marshals v or fails the test.
func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// profile is a profile as GET /api/v1/profiles answers it.
type profile struct {
	SubjectID   string                     `json:"subject_id"`
	Identifiers map[string][]string        `json:"identifiers"`
	Traits      map[string]json.RawMessage `json:"traits"`
	Groups      []struct {
		GroupID   string          `json:"group_id"`
		Traits    json.RawMessage `json:"traits"`
		UpdatedAt time.Time       `json:"updated_at"`
	} `json:"groups"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
}

// event is an event as GET /api/v1/profiles/{id}/events answers it.
type event struct {
	MessageID   string          `json:"message_id"`
	Type        string          `json:"type"`
	Event       string          `json:"event"`
	Name        string          `json:"name"`
	UserID      string          `json:"user_id"`
	AnonymousID string          `json:"anonymous_id"`
	PreviousID  string          `json:"previous_id"`
	GroupID     string          `json:"group_id"`
	Properties  json.RawMessage `json:"properties"`
	Traits      json.RawMessage `json:"traits"`
	Context     json.RawMessage `json:"context"`
	Timestamp   time.Time       `json:"timestamp"`
	ReceivedAt  time.Time       `json:"received_at"`
}

// lookup is GET /api/v1/profiles?<idType>=<value> with the given key.
func (s *testServer) lookup(t *testing.T, secretKey, idType, value string) response {
	t.Helper()
	return s.do(t, "GET", "/api/v1/profiles?"+url.Values{idType: {value}}.Encode(), nil, "Authorization", "Bearer "+secretKey)
}

// findProfile looks a subject up by one identifier and wants it found.
func (s *testServer) findProfile(t *testing.T, secretKey, idType, value string) profile {
	t.Helper()
	r := s.lookup(t, secretKey, idType, value)
	if r.status != http.StatusOK {
		t.Fatalf("GET /api/v1/profiles?%s=%s: status %d, want 200; body %s", idType, value, r.status, r.body)
	}
	var p profile
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("GET /api/v1/profiles?%s=%s: decode %s: %v", idType, value, r.body, err)
	}
	if p.SubjectID == "" {
		t.Fatalf("GET /api/v1/profiles?%s=%s: no subject_id in %s", idType, value, r.body)
	}
	return p
}

// eventsPage is GET /api/v1/profiles/{subject}/events with a cursor.
func (s *testServer) eventsPage(t *testing.T, secretKey, subject, cursor string, limit int) response {
	t.Helper()
	q := url.Values{}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if limit > 0 {
		q.Set("limit", fmt.Sprint(limit))
	}
	path := "/api/v1/profiles/" + url.PathEscape(subject) + "/events"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return s.do(t, "GET", path, nil, "Authorization", "Bearer "+secretKey)
}

// events returns every event of a subject, following next_cursor page by page.
func (s *testServer) events(t *testing.T, secretKey, subject string, limit int) []event {
	t.Helper()
	var all []event
	cursor := ""
	for page := 0; ; page++ {
		if page > 100000 {
			t.Fatalf("events of %s: more than 100000 pages; the cursor does not advance", subject)
		}
		r := s.eventsPage(t, secretKey, subject, cursor, limit)
		if r.status != http.StatusOK {
			t.Fatalf("events of %s (cursor %q): status %d, want 200; body %s", subject, cursor, r.status, r.body)
		}
		var out struct {
			Events     []event `json:"events"`
			NextCursor *string `json:"next_cursor"`
		}
		if err := json.Unmarshal(r.body, &out); err != nil {
			t.Fatalf("events of %s: decode %s: %v", subject, r.body, err)
		}
		if out.Events == nil {
			t.Fatalf("events of %s: no \"events\" array in %s", subject, r.body)
		}
		if limit > 0 && len(out.Events) > limit {
			t.Fatalf("events of %s: page of %d events, limit was %d", subject, len(out.Events), limit)
		}
		all = append(all, out.Events...)
		if out.NextCursor == nil || *out.NextCursor == "" {
			return all
		}
		if *out.NextCursor == cursor {
			t.Fatalf("events of %s: next_cursor %q repeats the cursor of the page", subject, cursor)
		}
		cursor = *out.NextCursor
	}
}

// byMessageID indexes events by message id and fails on a repeated one.
func byMessageID(t *testing.T, events []event) map[string]event {
	t.Helper()
	m := make(map[string]event, len(events))
	for _, e := range events {
		if _, dup := m[e.MessageID]; dup {
			t.Errorf("message %q appears more than once among the events", e.MessageID)
		}
		m[e.MessageID] = e
	}
	return m
}

// jsonEqual reports whether two JSON texts hold the same value.
func jsonEqual(a, b []byte) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

// decodeObject decodes a JSON object, or fails the test.
func decodeObject(t *testing.T, what string, raw []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		t.Fatalf("%s: %s is not a JSON object (%v)", what, raw, err)
	}
	return m
}

// assertNoneOf fails for every value found in out.
func assertNoneOf(t *testing.T, what string, out []byte, values []string) {
	t.Helper()
	for _, v := range values {
		if v == "" {
			continue
		}
		if i := bytes.Index(out, []byte(v)); i >= 0 {
			lo, hi := max(0, i-200), min(len(out), i+len(v)+200)
			t.Errorf("%s contains %q: …%s…", what, v, out[lo:hi])
		}
	}
}

// mustDecode decodes raw into v, or fails the test showing raw.
func mustDecode(t testing.TB, raw []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("decode %T from %s: %v", v, raw, err)
	}
}
