package rights_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
	"github.com/custos-dev/custos/internal/keyring"
	"github.com/custos-dev/custos/internal/pebble"
	"github.com/custos-dev/custos/internal/rights"
	"github.com/custos-dev/custos/internal/subjects"
	"github.com/custos-dev/custos/internal/testenv"
)

// clock is an injected, settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

type env struct {
	dir    string
	master []byte
	clock  *clock
	store  *pebble.Store
	keys   *pebble.KeyStore
	pipe   *subjects.Pipeline
	rd     *subjects.Reader
	ring   *keyring.Ring
	eng    *rights.Engine
	// signing is the node key that signs certificates.
	signing ed25519.PrivateKey
	tenant  custos.TenantID
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{dir: t.TempDir(), master: make([]byte, 32), tenant: custos.NewTenantID(),
		clock: &clock{t: time.Date(2026, 1, 31, 9, 30, 0, 0, time.UTC)}}
	rand.Read(e.master)
	_, e.signing, _ = ed25519.GenerateKey(rand.Reader)
	e.open(t)
	return e
}

func (e *env) open(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	var err error
	st := testenv.Open(t, e.dir, e.master, pebble.Options{Now: e.clock.now})
	e.store, e.keys, e.ring = st.Store, st.Keys, st.Ring
	ring := e.ring
	if err := ring.CreateTenant(ctx, e.tenant); err != nil {
		t.Fatal(err)
	}
	if e.pipe, err = subjects.New(ctx, e.store, ring, subjects.Options{Now: e.clock.now}); err != nil {
		t.Fatal(err)
	}
	e.rd = subjects.NewReader(e.store, ring)
	e.eng = rights.New(rights.Deps{Store: e.store, Gate: e.pipe, Subjects: e.rd, Keys: ring,
		Audit: audit.New(e.store, e.clock.now), SigningKey: e.signing, Region: "eu", Now: e.clock.now})
	t.Cleanup(func() { e.close(t) })
}

func (e *env) close(t *testing.T) {
	if e.pipe == nil {
		return
	}
	e.pipe.Close()
	e.store.Close()
	e.keys.Close()
	e.pipe = nil
}

var seq int

func track(user, anon string) custos.Message {
	seq++
	return custos.Message{Type: custos.Track, MessageID: fmt.Sprintf("m%d", seq), UserID: user, AnonymousID: anon,
		Event: "Clicked", Timestamp: time.Date(2026, 1, 31, 9, 0, 0, seq, time.UTC), ReceivedAt: time.Date(2026, 1, 31, 9, 0, 0, 0, time.UTC)}
}

func (e *env) ingest(t *testing.T, msgs ...custos.Message) subjects.Result {
	t.Helper()
	res, err := e.pipe.Ingest(context.Background(), e.tenant, msgs)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (e *env) request(t *testing.T, typ custos.RequestType, idType custos.IdentifierType, v string) *custos.Request {
	t.Helper()
	r, err := e.eng.Create(context.Background(), e.tenant, rights.Input{Type: typ, Identity: custos.Identifier{Type: idType, Value: v}, Source: "api", Actor: "test"})
	if err != nil {
		t.Fatalf("%s %s %q: %v", typ, idType, v, err)
	}
	return r
}

func TestSuppressionHoldsForEveryLinkedIdentifier(t *testing.T) {
	e := newEnv(t)
	e.ingest(t, track("u1", "a1"))
	r := e.request(t, custos.Suppress, custos.UserID, "u1")
	if r.Status != custos.Completed {
		t.Fatalf("suppress request status %s, want completed before the answer", r.Status)
	}
	for _, c := range []struct {
		name string
		msg  custos.Message
	}{
		{"by user id", track("u1", "")},
		{"by the old anonymous id alone", track("", "a1")},
		{"a new anonymous id identified as the user", track("u1", "a-new")},
		{"that new anonymous id alone, later", track("", "a-new")},
		{"an unknown user id with the suppressed anonymous id", track("u-other", "a1")},
	} {
		if res := e.ingest(t, c.msg); res.Stored != 0 || res.Suppressed != 1 {
			t.Errorf("%s: %+v, want it dropped as suppressed", c.name, res)
		}
	}
	// Unsuppressing lets new events in again.
	e.request(t, custos.Unsuppress, custos.AnonymousID, "a-new")
	if res := e.ingest(t, track("u1", "")); res.Stored != 1 {
		t.Errorf("after unsuppress: %+v, want stored", res)
	}
}

func TestSuppressionBeforeFirstEventAndAcrossRestart(t *testing.T) {
	e := newEnv(t)
	e.request(t, custos.Suppress, custos.Email, "Never.Seen@Example.com")
	e.close(t)
	e.open(t) // the gate is loaded from the store
	m := track("", "a9")
	m.Email = "never.seen@example.com"
	if res := e.ingest(t, m); res.Suppressed != 1 {
		t.Errorf("first event of a subject suppressed in advance, after restart: %+v, want suppressed", res)
	}
}

func TestRestrictionKeepsDataAndDropsNewEvents(t *testing.T) {
	e := newEnv(t)
	e.ingest(t, track("u1", ""), track("u1", ""))
	r := e.request(t, custos.Restrict, custos.UserID, "u1")
	if res := e.ingest(t, track("u1", "")); res.Restricted != 1 || res.Stored != 0 {
		t.Errorf("after restrict: %+v, want dropped as restricted", res)
	}
	n := 0
	if err := e.rd.EachEvent(context.Background(), e.tenant, r.Subject, func(custos.Event) error { n++; return nil }); err != nil || n != 2 {
		t.Errorf("stored events of the restricted subject = %d (%v), want the 2 from before", n, err)
	}
	e.request(t, custos.Unrestrict, custos.UserID, "u1")
	if res := e.ingest(t, track("u1", "")); res.Stored != 1 {
		t.Errorf("after unrestrict: %+v, want stored", res)
	}
}

func TestObjectionIsRecordedAndKeepsItsTime(t *testing.T) {
	e := newEnv(t)
	e.ingest(t, track("u1", ""))
	first := e.clock.now()
	r := e.request(t, custos.Object, custos.UserID, "u1")
	e.clock.set(first.Add(time.Hour))
	e.request(t, custos.Object, custos.UserID, "u1")
	f, err := e.pipe.Flags(context.Background(), e.tenant, r.Subject)
	if err != nil || !f.ObjectedAt.Equal(first) {
		t.Errorf("flags = %+v (%v), want objected at %v (the first objection)", f, err, first)
	}
	if res := e.ingest(t, track("u1", "")); res.Stored != 1 {
		t.Errorf("an objection to marketing does not stop collection: %+v, want stored", res)
	}
}

func TestMergeCarriesSuppression(t *testing.T) {
	e := newEnv(t)
	e.ingest(t, track("", "anon-x"))
	e.request(t, custos.Suppress, custos.AnonymousID, "anon-x")
	e.ingest(t, track("u7", "anon-y")) // another subject, not suppressed
	// The user logs in on the suppressed device: the subjects merge.
	if res := e.ingest(t, track("u7", "anon-x")); res.Suppressed != 1 {
		t.Errorf("linking message: %+v, want suppressed", res)
	}
	if res := e.ingest(t, track("", "anon-y")); res.Suppressed != 1 {
		t.Errorf("after the merge, the other device's id: %+v, want suppressed", res)
	}
}

func TestDeadlinesAndRequestLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.request(t, custos.Object, custos.UserID, "u1")
	// Received 31 Jan 2026: one calendar month is 28 Feb 2026.
	if want := time.Date(2026, 2, 28, 9, 30, 0, 0, time.UTC); !r.DueAt.Equal(want) || !r.OriginalDueAt.Equal(want) {
		t.Errorf("due_at = %v, want %v", r.DueAt, want)
	}
	if _, err := e.eng.Cancel(ctx, e.tenant, r.ID, "test"); custos.ErrorCode(err) != custos.Conflict {
		t.Errorf("cancel a completed request: err = %v, want Conflict", err)
	}
	if _, err := e.eng.Extend(ctx, e.tenant, r.ID, 1, "complex", "test"); custos.ErrorCode(err) != custos.Conflict {
		t.Errorf("extend a completed request: err = %v, want Conflict", err)
	}
	if _, err := e.eng.Get(ctx, custos.NewTenantID(), r.ID); custos.ErrorCode(err) != custos.NotFound {
		t.Errorf("another tenant gets the request: err = %v, want NotFound", err)
	}
	for _, c := range []struct {
		in   rights.Input
		code custos.Code
	}{
		{rights.Input{Type: "forget", Identity: custos.Identifier{Type: custos.UserID, Value: "u"}}, custos.Invalid},
		{rights.Input{Type: custos.Suppress}, custos.Invalid},
		{rights.Input{Type: custos.Suppress, Identity: custos.Identifier{Type: custos.UserID, Value: " "}}, custos.Invalid},
		{rights.Input{Type: custos.Rectify, Identity: custos.Identifier{Type: custos.UserID, Value: "u"}}, custos.Invalid},
	} {
		if _, err := e.eng.Create(ctx, e.tenant, c.in); custos.ErrorCode(err) != c.code {
			t.Errorf("Create(%+v): err = %v, want %s", c.in, err, c.code)
		}
	}
	e.clock.set(e.clock.now().Add(time.Minute))
	e.request(t, custos.Suppress, custos.UserID, "u2")
	list, err := e.eng.List(ctx, e.tenant, rights.Filter{Type: custos.Suppress})
	if err != nil || len(list) != 1 || list[0].Type != custos.Suppress {
		t.Errorf("List(type=suppress) = %v (%v), want the one suppress request", list, err)
	}
	all, _ := e.eng.List(ctx, e.tenant, rights.Filter{})
	if len(all) != 2 || all[0].Type != custos.Suppress {
		t.Errorf("List() = %v, want 2 requests, newest first", all)
	}
	// Each request's steps are in the audit chain, under its id.
	entries, err := e.store.AuditEntries(ctx, e.tenant, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, en := range entries {
		if en.RequestID == r.ID {
			actions = append(actions, en.Action)
		}
	}
	if !slices.Equal(actions, []string{"request.received", "request.completed"}) {
		t.Errorf("audit of request %s = %v, want received then completed", r.ID, actions)
	}
}
