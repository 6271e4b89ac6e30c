package loadgen

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

var uuidShape = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestRunDelivers(t *testing.T) {
	tests := []struct {
		name                       string
		events, batch, concurrency int
		users                      int
		gzip                       bool
	}{
		{"batch 100", 2000, 100, 4, 37, false},
		{"batch 100 gzip", 2000, 100, 4, 37, true},
		{"batch with remainder", 1000, 7, 3, 50, false},
		{"single messages", 300, 1, 4, 20, false},
		{"single messages gzip", 300, 1, 2, 20, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, srv := newCapture(t)
			cfg := Config{
				Server: srv.URL, WriteKey: "wk_test", Events: tt.events, Batch: tt.batch,
				Concurrency: tt.concurrency, Users: tt.users, Gzip: tt.gzip, Seed: 42,
			}
			res, err := Run(context.Background(), cfg, nil)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			reqs := c.received()
			wantReqs := (tt.events + tt.batch - 1) / tt.batch
			if len(reqs) != wantReqs || res.Requests != wantReqs {
				t.Errorf("requests: server got %d, Result says %d, want %d", len(reqs), res.Requests, wantReqs)
			}
			if res.Events != tt.events || res.Errors != 0 {
				t.Errorf("Result: %d events, %d errors, want %d and 0", res.Events, res.Errors, tt.events)
			}
			if got := res.StatusCounts; len(got) != 1 || got[200] != wantReqs {
				t.Errorf("StatusCounts = %v, want map[200:%d]", got, wantReqs)
			}
			checkRequests(t, reqs, cfg)
			checkMessages(t, reqs, cfg)
			checkLatencies(t, res)
			if res.Elapsed <= 0 || res.EventsPerSec <= 0 {
				t.Errorf("Elapsed %s, EventsPerSec %f: want both positive", res.Elapsed, res.EventsPerSec)
			}
		})
	}
}

// checkRequests checks the envelope of each request: auth, headers, path,
// batch sizes and batch fields.
func checkRequests(t *testing.T, reqs []capturedRequest, cfg Config) {
	t.Helper()
	var sizes []int
	batchIDs := map[string]bool{}
	for i, r := range reqs {
		if !r.basicAuth || r.user != cfg.WriteKey || r.pass != "" {
			t.Errorf("request %d: basic auth %v %q:%q, want %q with empty password", i, r.basicAuth, r.user, r.pass, cfg.WriteKey)
		}
		if r.contentType != "application/json" {
			t.Errorf("request %d: Content-Type %q", i, r.contentType)
		}
		if wantEnc := map[bool]string{true: "gzip"}[cfg.Gzip]; r.encoding != wantEnc {
			t.Errorf("request %d: Content-Encoding %q, want %q", i, r.encoding, wantEnc)
		}
		if _, err := time.Parse(time.RFC3339, r.sentAt); err != nil {
			t.Errorf("request %d: sentAt %q: %v", i, r.sentAt, err)
		}
		if r.library != "analytics-go" {
			t.Errorf("request %d: context.library.name %q, want analytics-go", i, r.library)
		}
		sizes = append(sizes, len(r.msgs))
		if cfg.Batch == 1 {
			if want := "/v1/" + r.msgs[0].Type; r.path != want {
				t.Errorf("request %d: a %s message POSTed to %s, want %s", i, r.msgs[0].Type, r.path, want)
			}
			continue
		}
		if r.path != "/v1/batch" {
			t.Errorf("request %d: path %s, want /v1/batch", i, r.path)
		}
		if !uuidShape.MatchString(r.batchID) || batchIDs[r.batchID] {
			t.Errorf("request %d: batch messageId %q not a fresh UUID", i, r.batchID)
		}
		batchIDs[r.batchID] = true
	}
	var want []int
	for left := cfg.Events; left > 0; left -= cfg.Batch {
		want = append(want, min(left, cfg.Batch))
	}
	slices.Sort(sizes)
	slices.Sort(want)
	if !slices.Equal(sizes, want) {
		t.Errorf("batch sizes %v, want %v", sizes, want)
	}
}

// checkMessages checks what the messages carry: unique IDs, users spread
// over exactly cfg.Users, stable anonymous IDs, identify traits.
func checkMessages(t *testing.T, reqs []capturedRequest, cfg Config) {
	t.Helper()
	ids := map[string]bool{}
	anonOf := map[string]string{}
	userOf := map[string]string{}
	counts := map[string]int{}
	total, trackBytes := 0, 0
	for _, r := range reqs {
		for _, m := range r.msgs {
			total++
			if !uuidShape.MatchString(m.MessageID) {
				t.Errorf("messageId %q is not UUID-shaped", m.MessageID)
			}
			if ids[m.MessageID] {
				t.Errorf("messageId %s sent twice", m.MessageID)
			}
			ids[m.MessageID] = true
			i, err := strconv.Atoi(strings.TrimPrefix(m.UserID, "user-"))
			if err != nil || i < 0 || i >= cfg.Users {
				t.Errorf("userId %q: want user-<i> with 0 <= i < %d", m.UserID, cfg.Users)
			}
			if a, ok := anonOf[m.UserID]; ok && a != m.AnonymousID {
				t.Errorf("%s has anonymousIds %s and %s", m.UserID, a, m.AnonymousID)
			}
			if u, ok := userOf[m.AnonymousID]; ok && u != m.UserID {
				t.Errorf("anonymousId %s shared by %s and %s", m.AnonymousID, u, m.UserID)
			}
			anonOf[m.UserID], userOf[m.AnonymousID] = m.AnonymousID, m.UserID
			if _, err := time.Parse(time.RFC3339, m.Timestamp); err != nil {
				t.Errorf("message %s: timestamp %q: %v", m.MessageID, m.Timestamp, err)
			}
			ctx := m.Context
			if ctx.IP == "" || ctx.Locale == "" || ctx.UserAgent == "" || (ctx.Page == nil && ctx.App == nil) {
				t.Errorf("message %s: context %+v lacks ip, locale, userAgent, or page and app", m.MessageID, ctx)
			}
			counts[m.Type]++
			switch m.Type {
			case "track":
				trackBytes += m.size
				if m.Event == "" || m.Properties["currency"] != "EUR" || m.Properties["url"] == nil {
					t.Errorf("track %s: event %q, properties %v", m.MessageID, m.Event, m.Properties)
				}
			case "identify":
				if got, want := m.Traits["email"], m.UserID+"@example.com"; got != want {
					t.Errorf("identify %s: email %v, want %s", m.MessageID, got, want)
				}
				if m.Traits["name"] == "" || m.Traits["plan"] == "" {
					t.Errorf("identify %s: traits %v lack name or plan", m.MessageID, m.Traits)
				}
			default:
				t.Errorf("message %s: type %q", m.MessageID, m.Type)
			}
		}
	}
	if total != cfg.Events {
		t.Errorf("server received %d messages, want %d", total, cfg.Events)
	}
	if len(anonOf) != cfg.Users {
		t.Errorf("%d distinct userIds, want %d", len(anonOf), cfg.Users)
	}
	// Alone, a message also carries the library and sentAt the batch would.
	if mean := float64(trackBytes) / float64(counts["track"]); cfg.Batch > 1 && (mean < 495 || mean > 575) {
		t.Errorf("mean track message received: %.1f bytes, want 535±40", mean)
	}
	if counts["identify"] == 0 || counts["identify"] > total/10 {
		t.Errorf("%d identify among %d messages, want about one in %d", counts["identify"], total, identifyEvery)
	}
}

func checkLatencies(t *testing.T, r Result) {
	t.Helper()
	if !(0 < r.P50 && r.P50 <= r.P90 && r.P90 <= r.P99 && r.P99 <= r.Max) {
		t.Errorf("latencies p50 %s p90 %s p99 %s max %s: want 0 < p50 <= p90 <= p99 <= max", r.P50, r.P90, r.P99, r.Max)
	}
}

func TestRunStopsEarlyWhenEveryRequestFails(t *testing.T) {
	tests := []struct {
		name    string
		status  int // 0: nothing listens
		body    string
		wantErr []string
	}{
		{"unauthorized", http.StatusUnauthorized, `{"error":"invalid write key"}`, []string{"401", "invalid write key"}},
		{"unavailable", http.StatusServiceUnavailable, "warming up\n", []string{"503", "warming up"}},
		{"refused", 0, "", []string{"connection refused"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, srv := newCapture(t)
			c.respond = func(w http.ResponseWriter, r *http.Request, n int) bool {
				http.Error(w, tt.body, tt.status)
				return true
			}
			if tt.status == 0 {
				srv.Close()
			}
			cfg := Config{Server: srv.URL, WriteKey: "wrong", Events: 10_000_000, Concurrency: 4}
			start := time.Now()
			res, err := Run(context.Background(), cfg, nil)
			if err == nil {
				t.Fatal("Run succeeded, want an error")
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %s to give up", d)
			}
			if res.Events != 0 || res.Errors < earlyStopAfter {
				t.Errorf("Result: %d events, %d errors; want 0 and at least %d", res.Events, res.Errors, earlyStopAfter)
			}
			if limit := earlyStopAfter + 2*cfg.Concurrency; c.hits() > limit {
				t.Errorf("server got %d requests before the run stopped, want at most %d", c.hits(), limit)
			}
			if res.StatusCounts[tt.status] != res.Errors {
				t.Errorf("StatusCounts %v, want all %d under %d", res.StatusCounts, res.Errors, tt.status)
			}
		})
	}
}

func TestRunCountsFailuresAfterSuccess(t *testing.T) {
	c, srv := newCapture(t)
	c.respond = func(w http.ResponseWriter, r *http.Request, n int) bool {
		if n%4 != 0 {
			return false
		}
		io.Copy(io.Discard, r.Body)
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
		return true
	}
	cfg := Config{Server: srv.URL, WriteKey: "wk", Events: 2000, Batch: 100, Concurrency: 1, Users: 10}
	res, err := Run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Requests != 20 || res.Errors != 5 || res.Events != 1500 {
		t.Errorf("Result: %d requests, %d errors, %d events; want 20, 5, 1500", res.Requests, res.Errors, res.Events)
	}
	if res.StatusCounts[200] != 15 || res.StatusCounts[503] != 5 {
		t.Errorf("StatusCounts %v, want 15 x 200 and 5 x 503", res.StatusCounts)
	}
	if !strings.Contains(res.FirstError, "503") || !strings.Contains(res.FirstError, "overloaded") {
		t.Errorf("FirstError %q, want the 503 and its body", res.FirstError)
	}
}

func TestRunCancelReturnsPartialResult(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, srv := newCapture(t)
	// A request in flight when the run is cancelled is cut off mid-body.
	c.cutShort = func() bool { return ctx.Err() != nil }
	c.respond = func(w http.ResponseWriter, r *http.Request, n int) bool {
		if n < 10 {
			return false
		}
		// From the tenth request on, the server hangs: only cancellation
		// can end the run. (Reading the body lets the server notice the
		// client hanging up.)
		io.Copy(io.Discard, r.Body)
		cancel()
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
		return true
	}
	cfg := Config{Server: srv.URL, WriteKey: "wk", Events: 10_000_000, Batch: 10, Concurrency: 2}
	start := time.Now()
	res, err := Run(ctx, cfg, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run error %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Run took %s to return after cancellation", d)
	}
	got := 0
	for _, r := range c.received() {
		got += len(r.msgs)
	}
	// A response on its way back when the run was cancelled is lost to
	// the client, not to the server.
	if res.Events == 0 || res.Events > got || got-res.Events > cfg.Batch*cfg.Concurrency {
		t.Errorf("Result.Events %d, server decoded %d: want positive, at most that, and short by at most what was in flight", res.Events, got)
	}
	if res.Errors != 0 {
		t.Errorf("Result.Errors %d: requests cut short by cancellation must not count", res.Errors)
	}
	checkLatencies(t, res)
}

func TestRunDuration(t *testing.T) {
	c, srv := newCapture(t)
	cfg := Config{Server: srv.URL, WriteKey: "wk", Duration: 300 * time.Millisecond, Batch: 10, Concurrency: 2}
	res, err := Run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Elapsed < cfg.Duration || res.Elapsed > cfg.Duration+2*time.Second {
		t.Errorf("Elapsed %s for a %s run", res.Elapsed, cfg.Duration)
	}
	got := 0
	for _, r := range c.received() {
		got += len(r.msgs)
	}
	if res.Events == 0 || res.Events != got {
		t.Errorf("Result.Events %d, server decoded %d: want equal and positive", res.Events, got)
	}
}

func TestRunEventsBeforeDuration(t *testing.T) {
	_, srv := newCapture(t)
	cfg := Config{Server: srv.URL, WriteKey: "wk", Events: 50, Duration: time.Minute, Batch: 10}
	res, err := Run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Events != 50 || res.Elapsed > 10*time.Second {
		t.Errorf("Result: %d events in %s, want 50 at once", res.Events, res.Elapsed)
	}
}

func TestRunProgress(t *testing.T) {
	t.Run("count", func(t *testing.T) {
		_, srv := newCapture(t)
		var out bytes.Buffer
		cfg := Config{Server: srv.URL, WriteKey: "wk", Events: 1000, Batch: 50}
		if _, err := Run(context.Background(), cfg, &out); err != nil {
			t.Fatalf("Run: %v", err)
		}
		s := out.String()
		if !strings.HasPrefix(s, "\r") || !strings.HasSuffix(s, "\n") || strings.Count(s, "\n") != 1 {
			t.Errorf("progress %q: want \\r-led lines ending in one newline", s)
		}
		last := s[strings.LastIndex(s, "\r")+1:]
		for _, want := range []string{"sent 1000/1000 events", "ev/s", "p50 ", "errors 0"} {
			if !strings.Contains(last, want) {
				t.Errorf("last progress line %q lacks %q", last, want)
			}
		}
	})
	t.Run("every second", func(t *testing.T) {
		if testing.Short() {
			t.Skip("takes over a second")
		}
		_, srv := newCapture(t)
		var out bytes.Buffer
		cfg := Config{Server: srv.URL, WriteKey: "wk", Duration: 1200 * time.Millisecond, Batch: 10, Concurrency: 1}
		if _, err := Run(context.Background(), cfg, &out); err != nil {
			t.Fatalf("Run: %v", err)
		}
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\r")[1:]
		if len(lines) < 2 {
			t.Fatalf("progress %q: want a line after one second and a last one", out.String())
		}
		if !regexp.MustCompile(`events in 1(\.\d)?s/1.2s`).MatchString(lines[0]) {
			t.Errorf("first line %q lacks the time", lines[0])
		}
		last := lines[len(lines)-1]
		if len(last) < len(strings.TrimRight(lines[0], " ")) {
			t.Errorf("last line %q does not blank out %q", last, lines[0])
		}
	})
}

func TestRunRejectsBadConfig(t *testing.T) {
	c, srv := newCapture(t)
	good := Config{Server: srv.URL, WriteKey: "wk", Events: 10}
	tests := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"no server", func(c *Config) { c.Server = "" }, "server"},
		{"not http", func(c *Config) { c.Server = "ftp://127.0.0.1" }, "server URL"},
		{"no host", func(c *Config) { c.Server = "http://" }, "server URL"},
		{"no write key", func(c *Config) { c.WriteKey = "" }, "write key"},
		{"nothing to do", func(c *Config) { c.Events = 0 }, "events"},
		{"negative events", func(c *Config) { c.Events = -1 }, "events"},
		{"negative duration", func(c *Config) { c.Duration = -time.Second }, "duration"},
		{"negative batch", func(c *Config) { c.Batch = -1 }, "batch"},
		{"negative concurrency", func(c *Config) { c.Concurrency = -1 }, "concurrency"},
		{"negative users", func(c *Config) { c.Users = -1 }, "users"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.change(&cfg)
			_, err := Run(context.Background(), cfg, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run(%+v) error %v, want one naming %q", cfg, err, tt.want)
			}
		})
	}
	if c.hits() != 0 {
		t.Errorf("server got %d requests from invalid configs", c.hits())
	}
}

func TestRunDefaults(t *testing.T) {
	c, srv := newCapture(t)
	cfg := Config{Server: srv.URL + "/", WriteKey: "wk", Events: 2 * defaultUsers}
	res, err := Run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if want := 2 * defaultUsers / defaultBatch; res.Requests != want {
		t.Errorf("%d requests, want %d of the default batch size", res.Requests, want)
	}
	users := map[string]bool{}
	for _, r := range c.received() {
		for _, m := range r.msgs {
			users[m.UserID] = true
		}
	}
	if len(users) != defaultUsers {
		t.Errorf("%d distinct users, want the default %d", len(users), defaultUsers)
	}
	if res.Seed == 0 {
		t.Error("Result.Seed is 0, want the random seed chosen")
	}
}

func ExampleResult_Format() {
	r := Result{
		Events: 98000, Requests: 1000, Errors: 20, Bytes: 53 << 20,
		Elapsed: 2 * time.Second, EventsPerSec: 49000,
		P50: 3100 * time.Microsecond, P90: 5200 * time.Microsecond, P99: 9870 * time.Microsecond, Max: 41 * time.Millisecond,
		StatusCounts: map[int]int{200: 980, 503: 18, 0: 2},
		FirstError:   "POST /v1/batch: 503 Service Unavailable: overloaded",
		Seed:         7,
	}
	r.Format(os.Stdout)
	// Output:
	// events     98000 acknowledged in 2s: 49000 events/s
	// requests   1000 sent (53.0 MiB), 20 failed
	// latency    p50 3.10ms  p90 5.20ms  p99 9.87ms  max 41.0ms
	// status     transport error: 2, 200: 980, 503: 18
	// first error POST /v1/batch: 503 Service Unavailable: overloaded
	// seed       7
}
