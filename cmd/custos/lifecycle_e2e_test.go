package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestServeLeavesNoGoroutine starts custos serve with every background
// part running (the API, the pprof listener, the writer, the outbox,
// incident mail, OpenDSR forwarding, campaigns, retention, the audit
// tally), uses it, stops it, and checks that run returned nil and that
// no goroutine it started is left. It is not parallel: other tests'
// goroutines would be counted.
func TestServeLeavesNoGoroutine(t *testing.T) {
	before := goleak.IgnoreCurrent()
	cfg := newServerConfig(t)
	cfg.extraArgs = []string{"--pprof-addr", "127.0.0.1:0", "--retention-interval", "1s"}
	s := startServer(t, cfg)
	tn := s.createTenant(t, "lifecycle")
	res := s.ingest(t, tn.WriteKey, "/v1/track", []byte(`{"userId":"u-1","event":"Started","messageId":"m-1"}`))
	if res.Accepted != 1 {
		t.Fatalf("ingest: %+v; want 1 accepted", res)
	}
	// The pprof part serves on its own listener.
	var pprofAddr string
	for _, rec := range jsonLines(s.logs.Bytes()) {
		if rec["msg"] == "profiling enabled" {
			pprofAddr, _ = rec["addr"].(string)
		}
	}
	if pprofAddr == "" {
		t.Fatalf("no \"profiling enabled\" record with an addr; log:\n%s", s.logs.Bytes())
	}
	resp, err := s.http.Get("http://" + pprofAddr + "/debug/pebble")
	if err != nil {
		t.Fatalf("GET /debug/pebble: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /debug/pebble: status %d, want 200", resp.StatusCode)
	}

	s.stop(t) // run returned nil: checked by stop
	out := string(s.logs.Bytes())
	for _, want := range []string{"shutting down: draining in-flight requests", "stopped: every accepted message is durable"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, `"level":"ERROR"`) {
		t.Errorf("an orderly stop logged an error:\n%s", out)
	}
	// The stopped server answers nothing any more.
	s.http.Timeout = 2 * time.Second
	if _, err := s.http.Get(s.URL + "/healthz"); err == nil {
		t.Errorf("GET /healthz after the stop succeeded; want the listener closed")
	}
	s.http.CloseIdleConnections()
	if err := goleak.Find(before); err != nil {
		t.Errorf("goroutines left after run returned: %v", err)
	}
}
