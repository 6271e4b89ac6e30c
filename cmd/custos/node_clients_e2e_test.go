package main

// The real JavaScript clients, installed from npm into testdata/jsclients
// (npm ci --prefix cmd/custos/testdata/jsclients), against a real server:
// the Node libraries here, the browser ones in browser_clients_e2e_test.go.

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// jsClientsDir is where package.json pins the JavaScript clients.
const jsClientsDir = "testdata/jsclients"

// requireJSClients returns the absolute path of jsClientsDir and fails the
// test (never skips it) when the installed packages are missing.
func requireJSClients(t *testing.T, packages ...string) string {
	t.Helper()
	dir, err := filepath.Abs(jsClientsDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range packages {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", p, "package.json")); err != nil {
			t.Fatalf("npm package %s is not installed in %s (%v): run `npm ci --prefix cmd/custos/testdata/jsclients` (as .ci/run does)", p, dir, err)
		}
	}
	return dir
}

// requireNode returns the path of the node binary or fails the test.
func requireNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node (v18 or later) is needed for the JavaScript client tests and is not on PATH: %v", err)
	}
	return node
}

// proxiedRequest is one request that passed a recordingProxy.
type proxiedRequest struct {
	Method, Path, Encoding string
	Origin                 string // the Origin request header
	AllowOrigin            string // the Access-Control-Allow-Origin answer header
	Status                 int
}

// call is "METHOD path", with " encoding" when the body had one.
func (r proxiedRequest) call() string {
	return strings.TrimSpace(r.Method + " " + r.Path + " " + r.Encoding)
}

// recordingProxy is a reverse proxy to the server that notes each request
// and its answer.
type recordingProxy struct {
	*httptest.Server
	mu       sync.Mutex
	requests []proxiedRequest
}

func newRecordingProxy(t *testing.T, target string) *recordingProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &recordingProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(resp *http.Response) error {
		r := resp.Request
		p.mu.Lock()
		p.requests = append(p.requests, proxiedRequest{Method: r.Method, Path: r.URL.Path, Encoding: r.Header.Get("Content-Encoding"),
			Origin: r.Header.Get("Origin"), AllowOrigin: resp.Header.Get("Access-Control-Allow-Origin"), Status: resp.StatusCode})
		p.mu.Unlock()
		return nil
	}
	p.Server = httptest.NewServer(rp)
	t.Cleanup(p.Close)
	return p
}

func (p *recordingProxy) recorded() []proxiedRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.requests)
}

// nodeMessage is one message as node-send.cjs hands it to the library.
type nodeMessage struct {
	Type        string         `json:"type"`
	MessageID   string         `json:"messageId"`
	UserID      string         `json:"userId,omitempty"`
	AnonymousID string         `json:"anonymousId,omitempty"`
	PreviousID  string         `json:"previousId,omitempty"`
	GroupID     string         `json:"groupId,omitempty"`
	Event       string         `json:"event,omitempty"`
	Properties  map[string]any `json:"properties,omitempty"`
	Traits      map[string]any `json:"traits,omitempty"`
	Context     map[string]any `json:"context,omitempty"`
}

// sendWithNode runs node-send.cjs with the given client library, sending
// flow to url, and fails the test unless every message was delivered.
func sendWithNode(t *testing.T, dir, client, url, writeKey string, flow []wantEvent) {
	t.Helper()
	node := requireNode(t)
	var msgs []nodeMessage
	for _, w := range flow {
		m := nodeMessage{Type: w.Type, MessageID: w.MessageID, UserID: w.UserID, AnonymousID: w.AnonymousID,
			PreviousID: w.PreviousID, GroupID: w.Group, Event: w.Event, Properties: w.Properties, Traits: w.Traits}
		if w.IP != "" {
			m.Context = map[string]any{"ip": w.IP}
		}
		msgs = append(msgs, m)
	}
	in := mustJSON(t, map[string]any{"client": client, "url": url, "writeKey": writeKey, "messages": msgs})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "node-send.cjs")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var res struct {
		Errors []string `json:"errors"`
	}
	if jerr := json.Unmarshal(stdout.Bytes(), &res); jerr != nil || err != nil || len(res.Errors) > 0 {
		t.Fatalf("node-send.cjs (%s): %v; errors %q\nstdout:\n%s\nstderr:\n%s", client, err, res.Errors, stdout.Bytes(), stderr.Bytes())
	}
}

// TestNodeClients sends the client flow with @segment/analytics-node and
// @rudderstack/rudder-sdk-node, in batches of two, and reads everything
// back through the management API.
func TestNodeClients(t *testing.T) {
	t.Parallel()
	dir := requireJSClients(t, "@segment/analytics-node", "@rudderstack/rudder-sdk-node")
	srv := startServer(t, newServerConfig(t))
	for _, c := range []struct {
		client, pkg, library, request string
	}{
		// Segment's library sends JSON; RudderStack's gzips it.
		{"segment", "@segment/analytics-node", "@segment/analytics-node", "POST /v1/batch"},
		{"rudderstack", "@rudderstack/rudder-sdk-node", "analytics-node", "POST /v1/batch gzip"},
	} {
		t.Run(c.client, func(t *testing.T) {
			t.Parallel()
			tn := srv.createTenant(t, "node-"+c.client)
			proxy := newRecordingProxy(t, srv.URL)
			p := newPerson("node-" + c.client)
			flow := clientFlow("node-"+c.client, p)
			sendWithNode(t, dir, c.client, proxy.URL, tn.WriteKey, flow)

			reqs := proxy.recorded()
			// Five messages in batches of at most two: three batches or more.
			if len(reqs) < 3 {
				t.Errorf("%s sent %d requests %+v, want at least 3 batches", c.pkg, len(reqs), reqs)
			}
			for _, r := range reqs {
				if r.call() != c.request || r.Status != http.StatusOK {
					t.Errorf("%s sent %q, answered %d; want %q, 200", c.pkg, r.call(), r.Status, c.request)
				}
			}
			checkFlow(t, srv, tn.SecretKey, p, flow, c.library, packageVersion(t, dir, c.pkg))
		})
	}
}

// packageVersion is the version of an installed npm package.
func packageVersion(t *testing.T, dir, pkg string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "node_modules", pkg, "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(b, &v); err != nil || v.Version == "" {
		t.Fatalf("%s package.json: no version (%v)", pkg, err)
	}
	return v.Version
}
