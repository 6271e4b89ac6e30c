package main

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos-dev/custos/internal/testenv"

	rudder "github.com/rudderlabs/analytics-go/v4"
	segment "github.com/segmentio/analytics-go/v3"
)

// person is one data subject's identifiers and personal data. Every value
// is unique to the test, so that finding one anywhere is never chance.
type person struct {
	userID, anonID, anonID2 string
	email                   string // as sent, mixed case
	name, plan              string
	groupID, groupName      string
	ip                      string
}

func newPerson(label string) person {
	r := randomHex(6)
	return person{
		userID:    "user-" + label + "-" + r,
		anonID:    "anon-" + label + "-" + r,
		anonID2:   "anon2-" + label + "-" + r,
		email:     "Ada.Lovelace." + r + "@Example.COM",
		name:      "Ada Lovelace " + r,
		plan:      "plan-" + r,
		groupID:   "grp-" + label + "-" + r,
		groupName: "Analytical Engines " + r,
		ip:        fmt.Sprintf("203.0.%d.%d", 1+rand.IntN(250), 1+rand.IntN(250)),
	}
}

// personal lists every personal value of p, in the forms it may be stored in.
func (p person) personal() []string {
	return []string{p.userID, p.anonID, p.anonID2, p.email, strings.ToLower(p.email), p.name, p.plan, p.groupID, p.groupName, p.ip}
}

// wantEvent is a message a client sends and the event it must become.
type wantEvent struct {
	MessageID, Type, Event                 string
	UserID, AnonymousID, PreviousID, Group string
	Properties, Traits                     map[string]any
	IP                                     string // context.ip sent on the message
}

// clientFlow is the sequence every client test sends: identify (user id,
// anonymous id, traits with e-mail), track with only a second anonymous id,
// track with the user id, alias of the second anonymous id to the user id,
// and group with traits.
func clientFlow(label string, p person) []wantEvent {
	id := label + "-" + randomHex(8)
	return []wantEvent{
		{MessageID: id + "-identify", Type: "identify", UserID: p.userID, AnonymousID: p.anonID, IP: p.ip,
			Traits: map[string]any{"email": p.email, "name": p.name, "plan": p.plan, "logins": 3.0}},
		{MessageID: id + "-track-anon", Type: "track", Event: "Product Viewed", AnonymousID: p.anonID2,
			Properties: map[string]any{"sku": "AE-1843", "price": 12.5, "tags": []any{"engine", "brass"}}},
		{MessageID: id + "-track-user", Type: "track", Event: "Order Completed", UserID: p.userID,
			Properties: map[string]any{"order_id": "o-" + id, "total": 99.0, "currency": "EUR"}},
		{MessageID: id + "-alias", Type: "alias", UserID: p.userID, PreviousID: p.anonID2},
		{MessageID: id + "-group", Type: "group", UserID: p.userID, Group: p.groupID,
			Traits: map[string]any{"name": p.groupName, "employees": 12.0}},
	}
}

// clientLog collects what a client library logs, for failure messages.
type clientLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *clientLog) Logf(format string, args ...any) { l.add("info: "+format, args...) }
func (l *clientLog) Errorf(format string, args ...any) {
	l.add("error: "+format, args...)
}
func (l *clientLog) add(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}
func (l *clientLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// delivery counts the client's callbacks.
type delivery struct {
	mu       sync.Mutex
	ok       int
	failures []string
}

func (d *delivery) success() { d.mu.Lock(); d.ok++; d.mu.Unlock() }

// wait waits until the client reported n messages as succeeded or
// failed (its callbacks), failing t after timeout.
func (d *delivery) wait(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	done := func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.ok+len(d.failures) >= n
	}
	testenv.Poll(t, timeout, fmt.Sprintf("the client's callbacks for %d messages", n), done)
}
func (d *delivery) failure(err error) {
	d.mu.Lock()
	d.failures = append(d.failures, err.Error())
	d.mu.Unlock()
}

type segmentCallback struct{ d *delivery }

func (c segmentCallback) Success(segment.Message)              { c.d.success() }
func (c segmentCallback) Failure(_ segment.Message, err error) { c.d.failure(err) }

type rudderCallback struct{ d *delivery }

func (c rudderCallback) Success(rudder.Message)              { c.d.success() }
func (c rudderCallback) Failure(_ rudder.Message, err error) { c.d.failure(err) }

// recordingTransport notes how a client library sends its requests.
type recordingTransport struct {
	mu       sync.Mutex
	requests []string // "METHOD path auth-scheme content-encoding"
}

func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	scheme, _, _ := strings.Cut(req.Header.Get("Authorization"), " ")
	rt.mu.Lock()
	rt.requests = append(rt.requests, strings.Join([]string{req.Method, req.URL.Path, scheme, req.Header.Get("Content-Encoding")}, " "))
	rt.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

// checkRequests wants every request the client made to be want.
func (rt *recordingTransport) checkRequests(t *testing.T, client, want string) {
	t.Helper()
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if len(rt.requests) == 0 {
		t.Errorf("%s client made no request", client)
	}
	for _, r := range rt.requests {
		if strings.TrimSpace(r) != want {
			t.Errorf("%s client sent %q, want %q", client, r, want)
		}
	}
}

// sendWithSegment sends the flow with the Segment Go client and closes it;
// retry, if given, is the client's wait between attempts (default 10ms).
func sendWithSegment(t *testing.T, srv *testServer, writeKey string, flow []wantEvent, retry ...time.Duration) {
	t.Helper()
	wait := 10 * time.Millisecond
	if len(retry) > 0 {
		wait = retry[0]
	}
	d, logs, rt := &delivery{}, &clientLog{}, &recordingTransport{}
	c, err := segment.NewWithConfig(writeKey, segment.Config{
		Endpoint:   srv.URL,
		Transport:  rt,
		BatchSize:  2,
		Interval:   20 * time.Millisecond,
		Verbose:    false,
		Logger:     logs,
		Callback:   segmentCallback{d},
		RetryAfter: func(int) time.Duration { return wait },
	})
	if err != nil {
		t.Fatalf("segment.NewWithConfig: %v", err)
	}
	for _, w := range flow {
		var ctx *segment.Context
		if w.IP != "" {
			ctx = &segment.Context{IP: net.ParseIP(w.IP)}
		}
		var m segment.Message
		switch w.Type {
		case "identify":
			m = segment.Identify{MessageId: w.MessageID, UserId: w.UserID, AnonymousId: w.AnonymousID, Traits: w.Traits, Context: ctx}
		case "track":
			m = segment.Track{MessageId: w.MessageID, UserId: w.UserID, AnonymousId: w.AnonymousID, Event: w.Event, Properties: w.Properties, Context: ctx}
		case "alias":
			m = segment.Alias{MessageId: w.MessageID, UserId: w.UserID, PreviousId: w.PreviousID, Context: ctx}
		case "group":
			m = segment.Group{MessageId: w.MessageID, UserId: w.UserID, AnonymousId: w.AnonymousID, GroupId: w.Group, Traits: w.Traits, Context: ctx}
		default:
			t.Fatalf("no Segment message for type %q", w.Type)
		}
		if err := c.Enqueue(m); err != nil {
			t.Fatalf("segment Enqueue(%s): %v", w.MessageID, err)
		}
	}
	if len(retry) > 0 {
		// The client gives up its retries when closed: let them run.
		d.wait(t, len(flow), 30*time.Second)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("segment Close: %v", err)
	}
	checkDelivered(t, "segment", d, len(flow), logs)
	rt.checkRequests(t, "segment", "POST /v1/batch Basic")
}

// sendWithRudder sends the flow with the RudderStack Go client (gzip on,
// as by default) and closes it.
func sendWithRudder(t *testing.T, srv *testServer, writeKey string, flow []wantEvent, retry ...time.Duration) {
	t.Helper()
	wait := 10 * time.Millisecond
	if len(retry) > 0 {
		wait = retry[0]
	}
	d, logs, rt := &delivery{}, &clientLog{}, &recordingTransport{}
	c, err := rudder.NewWithConfig(writeKey, rudder.Config{
		DataPlaneUrl:   srv.URL,
		Transport:      rt,
		NoProxySupport: true,
		BatchSize:      2,
		Interval:       20 * time.Millisecond,
		Verbose:        false,
		Logger:         logs,
		Callback:       rudderCallback{d},
		RetryAfter:     func(int) time.Duration { return wait },
	})
	if err != nil {
		t.Fatalf("rudder.NewWithConfig: %v", err)
	}
	for _, w := range flow {
		var ctx *rudder.Context
		if w.IP != "" {
			ctx = &rudder.Context{IP: net.ParseIP(w.IP)}
		}
		var m rudder.Message
		switch w.Type {
		case "identify":
			m = rudder.Identify{MessageId: w.MessageID, UserId: w.UserID, AnonymousId: w.AnonymousID, Traits: w.Traits, Context: ctx}
		case "track":
			m = rudder.Track{MessageId: w.MessageID, UserId: w.UserID, AnonymousId: w.AnonymousID, Event: w.Event, Properties: w.Properties, Context: ctx}
		case "alias":
			m = rudder.Alias{MessageId: w.MessageID, UserId: w.UserID, PreviousId: w.PreviousID, Context: ctx}
		case "group":
			m = rudder.Group{MessageId: w.MessageID, UserId: w.UserID, AnonymousId: w.AnonymousID, GroupId: w.Group, Traits: w.Traits, Context: ctx}
		default:
			t.Fatalf("no RudderStack message for type %q", w.Type)
		}
		if err := c.Enqueue(m); err != nil {
			t.Fatalf("rudder Enqueue(%s): %v", w.MessageID, err)
		}
	}
	if len(retry) > 0 {
		d.wait(t, len(flow), 30*time.Second)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("rudder Close: %v", err)
	}
	checkDelivered(t, "rudderstack", d, len(flow), logs)
	rt.checkRequests(t, "rudderstack", "POST /v1/batch Basic gzip")
}

func checkDelivered(t *testing.T, client string, d *delivery, want int, logs *clientLog) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ok != want || len(d.failures) > 0 {
		t.Fatalf("%s client: %d of %d messages delivered, failures %q\nclient log:\n%s", client, d.ok, want, d.failures, logs)
	}
}

// checkFlow reads the subject of the flow back through the management API
// and checks everything the client sent is there: one subject for every
// identifier, traits, the group, every event with its content, and the
// library context.
func checkFlow(t *testing.T, srv *testServer, secretKey string, p person, flow []wantEvent, library, version string) {
	t.Helper()
	prof := srv.findProfile(t, secretKey, "user_id", p.userID)
	for _, lk := range []struct{ typ, value string }{
		{"anonymous_id", p.anonID},
		{"anonymous_id", p.anonID2}, // linked by the alias
		{"email", p.email},
		{"email", strings.ToLower(p.email)},
		{"email", "  " + strings.ToUpper(p.email) + " "},
	} {
		got := srv.findProfile(t, secretKey, lk.typ, lk.value)
		if got.SubjectID != prof.SubjectID {
			t.Errorf("lookup by %s %q: subject %s, want %s (the subject of user_id)", lk.typ, lk.value, got.SubjectID, prof.SubjectID)
		}
	}

	ids := prof.Identifiers
	if !slices.Contains(ids["user_id"], p.userID) {
		t.Errorf("identifiers.user_id = %q, want it to contain %q", ids["user_id"], p.userID)
	}
	for _, a := range []string{p.anonID, p.anonID2} {
		if !slices.Contains(ids["anonymous_id"], a) {
			t.Errorf("identifiers.anonymous_id = %q, want it to contain %q", ids["anonymous_id"], a)
		}
	}
	if want := []string{strings.ToLower(p.email)}; !slices.Equal(ids["email"], want) {
		t.Errorf("identifiers.email = %q, want %q", ids["email"], want)
	}

	var identify, group wantEvent
	for _, w := range flow {
		switch w.Type {
		case "identify":
			identify = w
		case "group":
			group = w
		}
	}
	for k, v := range identify.Traits {
		want := mustJSON(t, v)
		if got, ok := prof.Traits[k]; !ok || !jsonEqual(got, want) {
			t.Errorf("trait %q = %s, want %s", k, got, want)
		}
	}
	if len(prof.Groups) != 1 {
		t.Errorf("groups = %+v, want exactly group %q", prof.Groups, group.Group)
	} else {
		g := prof.Groups[0]
		if g.GroupID != group.Group {
			t.Errorf("group_id = %q, want %q", g.GroupID, group.Group)
		}
		if want := mustJSON(t, group.Traits); !jsonEqual(g.Traits, want) {
			t.Errorf("group traits = %s, want %s", g.Traits, want)
		}
		if g.UpdatedAt.IsZero() {
			t.Errorf("group updated_at is zero")
		}
	}
	if prof.FirstSeen.IsZero() || prof.LastSeen.Before(prof.FirstSeen) {
		t.Errorf("first_seen %v, last_seen %v: want first_seen set and last_seen not before it", prof.FirstSeen, prof.LastSeen)
	}

	// A page size of 2 makes the listing cross pages.
	events := byMessageID(t, srv.events(t, secretKey, prof.SubjectID, 2))
	if len(events) != len(flow) {
		t.Errorf("subject has %d events, want %d", len(events), len(flow))
	}
	for _, w := range flow {
		e, ok := events[w.MessageID]
		if !ok {
			t.Errorf("event %s (%s) missing", w.MessageID, w.Type)
			continue
		}
		checkEvent(t, e, w, library, version)
	}
}

func checkEvent(t *testing.T, e event, w wantEvent, library, version string) {
	t.Helper()
	check := func(field, got, want string) {
		if got != want {
			t.Errorf("event %s: %s = %q, want %q", w.MessageID, field, got, want)
		}
	}
	check("type", e.Type, w.Type)
	check("event", e.Event, w.Event)
	check("user_id", e.UserID, w.UserID)
	check("previous_id", e.PreviousID, w.PreviousID)
	check("group_id", e.GroupID, w.Group)
	if w.AnonymousID != "" {
		check("anonymous_id", e.AnonymousID, w.AnonymousID)
	}
	if w.Properties != nil {
		if want := mustJSON(t, w.Properties); !jsonEqual(e.Properties, want) {
			t.Errorf("event %s: properties = %s, want %s", w.MessageID, e.Properties, want)
		}
	}
	if w.Traits != nil {
		if want := mustJSON(t, w.Traits); !jsonEqual(e.Traits, want) {
			t.Errorf("event %s: traits = %s, want %s", w.MessageID, e.Traits, want)
		}
	}
	if e.Timestamp.IsZero() || e.ReceivedAt.IsZero() {
		t.Errorf("event %s: timestamp %v, received_at %v; want both set", w.MessageID, e.Timestamp, e.ReceivedAt)
	}
	if d := e.Timestamp.Sub(e.ReceivedAt); d < -time.Minute || d > time.Minute {
		t.Errorf("event %s: timestamp %v is %v from received_at %v; want the client's time, corrected for skew", w.MessageID, e.Timestamp, d, e.ReceivedAt)
	}
	ctx := decodeObject(t, "event "+w.MessageID+" context", e.Context)
	lib, _ := ctx["library"].(map[string]any)
	if lib["name"] != library || lib["version"] != version {
		t.Errorf("event %s: context.library = %v, want name %q version %q", w.MessageID, ctx["library"], library, version)
	}
	if w.IP != "" && ctx["ip"] != storedIP(w.IP) {
		t.Errorf("event %s: context.ip = %v, want %q (the message's own context, merged with the library's, truncated)", w.MessageID, ctx["ip"], storedIP(w.IP))
	}
}

func TestSegmentGoClient(t *testing.T) {
	t.Parallel()
	srv := startServer(t, newServerConfig(t))
	tn := srv.createTenant(t, "segment-client")
	p := newPerson("seg")
	flow := clientFlow("seg", p)
	sendWithSegment(t, srv, tn.WriteKey, flow)
	checkFlow(t, srv, tn.SecretKey, p, flow, "analytics-go", segment.Version)
}

func TestRudderStackGoClient(t *testing.T) {
	t.Parallel()
	srv := startServer(t, newServerConfig(t))
	tn := srv.createTenant(t, "rudderstack-client")
	p := newPerson("rs")
	flow := clientFlow("rs", p)
	sendWithRudder(t, srv, tn.WriteKey, flow)
	checkFlow(t, srv, tn.SecretKey, p, flow, "analytics-go", rudder.Version)
}

// TestBatchContextMergedIntoEvents checks that a batch-level context, as
// the Segment Go client sends it (library and a default context), reaches
// every event, shallow-merged under the message's own context members,
// which win.
func TestBatchContextMergedIntoEvents(t *testing.T) {
	t.Parallel()
	srv := startServer(t, newServerConfig(t))
	tn := srv.createTenant(t, "batch-context")
	p := newPerson("ctx")
	body := mustJSON(t, map[string]any{
		"messageId": "batch-" + randomHex(4),
		"sentAt":    time.Now().UTC().Format(time.RFC3339Nano),
		"context": map[string]any{
			"library": map[string]any{"name": "analytics-go", "version": "3.0.0"},
			"app":     map[string]any{"name": "from-batch"},
			"locale":  "en-GB",
		},
		"batch": []any{
			map[string]any{"type": "track", "messageId": "ctx-1-" + p.userID, "userId": p.userID, "event": "A"},
			map[string]any{"type": "track", "messageId": "ctx-2-" + p.userID, "userId": p.userID, "event": "B",
				"context": map[string]any{"app": map[string]any{"name": "from-message"}, "ip": p.ip}},
		},
	})
	if res := srv.ingest(t, tn.WriteKey, "/v1/batch", body); res.Accepted != 2 {
		t.Fatalf("accepted %d, want 2: %+v", res.Accepted, res)
	}
	prof := srv.findProfile(t, tn.SecretKey, "user_id", p.userID)
	events := byMessageID(t, srv.events(t, tn.SecretKey, prof.SubjectID, 0))
	want := map[string]map[string]any{
		"ctx-1-" + p.userID: {"library": map[string]any{"name": "analytics-go", "version": "3.0.0"}, "app": map[string]any{"name": "from-batch"}, "locale": "en-GB"},
		"ctx-2-" + p.userID: {"library": map[string]any{"name": "analytics-go", "version": "3.0.0"}, "app": map[string]any{"name": "from-message"}, "locale": "en-GB", "ip": storedIP(p.ip)},
	}
	for id, w := range want {
		e, ok := events[id]
		if !ok {
			t.Errorf("event %s missing", id)
			continue
		}
		if !jsonEqual(e.Context, mustJSON(t, w)) {
			t.Errorf("event %s: context = %s, want %s", id, e.Context, mustJSON(t, w))
		}
	}
}
