package consent_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/consent"
	"github.com/custos-dev/custos/internal/keyring"
	"github.com/custos-dev/custos/internal/pebble"
	"github.com/custos-dev/custos/internal/subjects"
	"github.com/custos-dev/custos/internal/testenv"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// env is a ledger over a real pipeline, store and key store in a temp dir.
type env struct {
	dir    string
	master []byte
	store  *pebble.Store
	keys   *pebble.KeyStore
	ring   *keyring.Ring
	pipe   *subjects.Pipeline
	ledger *consent.Ledger
	tenant custos.TenantID
	now    time.Time
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{dir: t.TempDir(), master: make([]byte, 32), tenant: custos.NewTenantID(), now: t0}
	rand.Read(e.master)
	e.open(t)
	if err := e.ring.CreateTenant(t.Context(), e.tenant); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) open(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	var err error
	st := testenv.Open(t, e.dir, e.master, pebble.Options{})
	e.store, e.keys, e.ring = st.Store, st.Keys, st.Ring
	clock := func() time.Time { return e.now }
	if e.pipe, err = subjects.New(ctx, e.store, e.ring, subjects.Options{Now: clock}); err != nil {
		t.Fatal(err)
	}
	e.ledger = consent.New(e.pipe, e.store, e.ring, clock)
	t.Cleanup(func() { e.close(t) })
}

func (e *env) close(t *testing.T) {
	if e.pipe == nil {
		return
	}
	e.pipe.Close()
	e.pipe = nil
	if err := e.store.Close(); err != nil {
		t.Error(err)
	}
	if err := e.keys.Close(); err != nil {
		t.Error(err)
	}
}

func (e *env) record(t *testing.T, id custos.Identifier, purpose, channel string, granted bool) custos.SubjectID {
	t.Helper()
	s, err := e.ledger.Record(t.Context(), e.tenant, id, custos.ConsentRecord{Purpose: purpose, Channel: channel, Granted: granted, Source: custos.SourceAPI})
	if err != nil {
		t.Fatalf("Record(%v, %s/%s, %v) = %v", id, purpose, channel, granted, err)
	}
	return s
}

func (e *env) state(t *testing.T, s custos.SubjectID) consent.State {
	t.Helper()
	st, err := e.ledger.State(t.Context(), e.tenant, s)
	if err != nil {
		t.Fatalf("State(%s) = %v", s, err)
	}
	return st
}

func user(v string) custos.Identifier { return custos.Identifier{Type: custos.UserID, Value: v} }

func TestRecordHistoryState(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	// A person never seen before: recording creates the subject.
	s := e.record(t, user("u1"), "marketing", "", true)
	e.now = e.now.Add(time.Minute)
	s2, err := e.ledger.Record(ctx, e.tenant, user("u1"), custos.ConsentRecord{
		Purpose: "marketing", Channel: "email", Granted: false, Source: custos.SourceAPI,
		NoticeVersion: "v3", IP: "203.0.113.77", UserAgent: "Mozilla/5.0", Proof: []byte(`{"form":"prefs"}`),
	})
	if err != nil || s2 != s {
		t.Fatalf("second Record = %s, %v; want the same subject %s", s2, err, s)
	}
	h, err := e.ledger.History(ctx, e.tenant, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2 {
		t.Fatalf("History = %d records, want 2", len(h))
	}
	if h[0].Granted != true || h[0].Channel != "" || !h[0].Time.Equal(t0) || h[0].Subject != s {
		t.Errorf("first record = %+v, want the grant on every channel at %v for %s", h[0], t0, s)
	}
	w := h[1]
	if w.Granted || w.Channel != "email" || w.NoticeVersion != "v3" || w.IP != "203.0.113.0" || w.UserAgent != "Mozilla/5.0" || string(w.Proof) != `{"form":"prefs"}` {
		t.Errorf("second record = %+v, want the e-mail withdrawal with notice v3, IP truncated to 203.0.113.0, user agent and proof", w)
	}
	if h[1].Seq <= h[0].Seq && h[1].Time.Equal(h[0].Time) {
		t.Errorf("records out of order: %+v", h)
	}
	st := e.state(t, s)
	if got := consent.Decide(st, custos.SubjectFlags{}, false, "marketing", "email"); got != consent.Withdrawn {
		t.Errorf("Decide(marketing, email) = %q, want withdrawn", got)
	}
	if got := consent.Decide(st, custos.SubjectFlags{}, false, "marketing", "push"); got != consent.OK {
		t.Errorf("Decide(marketing, push) = %q, want OK", got)
	}

	// The ledger survives a restart, and new records still come later.
	e.close(t)
	e.open(t)
	e.now = e.now.Add(time.Minute)
	if err := e.ledger.RecordSubject(ctx, e.tenant, s, custos.ConsentRecord{Purpose: "marketing", Channel: "", Granted: false, Source: custos.SourceUnsubscribe}); err != nil {
		t.Fatal(err)
	}
	st = e.state(t, s)
	if got := consent.Decide(st, custos.SubjectFlags{}, false, "marketing", "push"); got != consent.Withdrawn {
		t.Errorf("after the unsubscribe link, Decide(marketing, push) = %q, want withdrawn", got)
	}
	if h, _ := e.ledger.History(ctx, e.tenant, s); len(h) != 3 || h[2].Source != custos.SourceUnsubscribe {
		t.Errorf("History after restart = %+v, want 3 records ending with the unsubscribe", h)
	}
}

func TestRecordSubjectUnknown(t *testing.T) {
	e := newEnv(t)
	err := e.ledger.RecordSubject(t.Context(), e.tenant, custos.NewSubjectID(), custos.ConsentRecord{Purpose: "marketing", Source: custos.SourceUnsubscribe})
	if custos.ErrorCode(err) != custos.NotFound {
		t.Errorf("RecordSubject(unknown subject) = %v, want NotFound", err)
	}
	if _, err := e.ledger.State(t.Context(), e.tenant, custos.NewSubjectID()); custos.ErrorCode(err) != custos.NotFound {
		t.Errorf("State(unknown subject) = %v, want NotFound", err)
	}
	if _, err := e.ledger.Record(t.Context(), e.tenant, user("u"), custos.ConsentRecord{Purpose: "marketing", Source: "web"}); custos.ErrorCode(err) != custos.Invalid {
		t.Errorf("Record(source web) = %v, want Invalid", err)
	}
}

func TestMergeCarriesConsentToSurvivor(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	// An anonymous visitor grants marketing e-mail; a logged-in user grants
	// push. Then one message shows they are one person.
	anon := custos.Identifier{Type: custos.AnonymousID, Value: "anon-1"}
	sa := e.record(t, anon, "marketing", "email", true)
	e.now = e.now.Add(time.Second)
	su := e.record(t, user("u1"), "marketing", "push", true)
	if sa == su {
		t.Fatal("two identifiers share a subject before the merge")
	}
	link := custos.Message{Type: custos.Identify, MessageID: "link", UserID: "u1", AnonymousID: "anon-1", Timestamp: e.now, ReceivedAt: e.now, Traits: []byte(`{"plan":"pro"}`)}
	if _, err := e.pipe.Ingest(ctx, e.tenant, []custos.Message{link}); err != nil {
		t.Fatal(err)
	}
	survivor, err := subjects.NewReader(e.store, e.ring).Find(ctx, e.tenant, anon)
	if err != nil {
		t.Fatal(err)
	}
	loser := sa
	if survivor == sa {
		loser = su
	}
	st := e.state(t, survivor)
	for _, ch := range []string{"email", "push"} {
		if got := consent.Decide(st, custos.SubjectFlags{}, false, "marketing", ch); got != consent.OK {
			t.Errorf("survivor: Decide(marketing, %s) = %q, want OK (carried over by the merge)", ch, got)
		}
	}
	if h, err := e.ledger.History(ctx, e.tenant, survivor); err != nil || len(h) != 2 {
		t.Errorf("survivor History = %d records, %v; want 2", len(h), err)
	}
	// The merged-away subject's records are gone with it.
	n := 0
	e.store.Consents(ctx, e.tenant, loser, func(custos.StoredConsent) (bool, error) { n++; return true, nil })
	if n != 0 {
		t.Errorf("merged-away subject still has %d consent records in the store", n)
	}
	// Its key is destroyed once the merge is durable.
	var histErr error
	testenv.Poll(t, 5*time.Second, "History(merged-away subject) NotFound", func() bool {
		_, histErr = e.ledger.History(ctx, e.tenant, loser)
		return custos.ErrorCode(histErr) == custos.NotFound
	}, func() string { return fmt.Sprintf("err = %v", histErr) })

	// A withdrawal naming the merged-away subject (an unsubscribe link
	// sent before the merge) reaches the survivor.
	e.now = e.now.Add(time.Second)
	if err := e.ledger.RecordSubject(ctx, e.tenant, loser, custos.ConsentRecord{Purpose: "marketing", Channel: "email", Granted: false, Source: custos.SourceUnsubscribe}); err != nil {
		t.Fatalf("RecordSubject(merged-away subject) = %v, want the survivor to take it", err)
	}
	if got := consent.Decide(e.state(t, survivor), custos.SubjectFlags{}, false, "marketing", "email"); got != consent.Withdrawn {
		t.Errorf("survivor after a withdrawal through the merged-away id: Decide(marketing, email) = %q, want withdrawn", got)
	}
	if got := consent.Decide(e.state(t, survivor), custos.SubjectFlags{}, false, "marketing", "push"); got != consent.OK {
		t.Errorf("survivor: Decide(marketing, push) = %q, want still OK", got)
	}
}

func TestEraseDeletesLedger(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	s := e.record(t, user("u1"), "marketing", "", true)
	counts, err := e.pipe.DeleteSubject(ctx, e.tenant, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if counts["consent_records"] != 1 {
		t.Errorf("DeleteSubject counts = %v, want consent_records 1", counts)
	}
	n := 0
	e.store.Consents(ctx, e.tenant, s, func(custos.StoredConsent) (bool, error) { n++; return true, nil })
	if n != 0 {
		t.Errorf("erased subject still has %d consent records", n)
	}
	if err := e.ring.Shred(ctx, e.tenant, s); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ledger.State(ctx, e.tenant, s); !errors.Is(err, custos.ErrNotFound) && custos.ErrorCode(err) != custos.NotFound {
		t.Errorf("State(erased) = %v, want NotFound", err)
	}
}

func TestConcurrentRecordsAllKept(t *testing.T) {
	e := newEnv(t)
	s := e.record(t, user("u1"), "analytics", "", true)
	errs := make(chan error, 20)
	for i := range 20 {
		go func() {
			_, err := e.ledger.Record(context.Background(), e.tenant, user("u1"), custos.ConsentRecord{Purpose: "marketing", Channel: custos.Channels[i%len(custos.Channels)], Granted: i%2 == 0, Source: custos.SourceAPI, NoticeVersion: fmt.Sprint(i)})
			errs <- err
		}()
	}
	for range 20 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if h, err := e.ledger.History(t.Context(), e.tenant, s); err != nil || len(h) != 21 {
		t.Errorf("History = %d records, %v; want 21 (records at the same instant are all kept)", len(h), err)
	}
}

// TestLastActivity checks that the last grant or withdrawal is a subject's
// consent activity (what keeps a profile through the retention sweep),
// and that an unknown subject has none rather than an error.
func TestLastActivity(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	s := e.record(t, user("u1"), "marketing", "", true)
	first := e.now
	e.now = e.now.Add(48 * time.Hour)
	e.record(t, user("u1"), "marketing", "email", false)
	got, err := e.ledger.LastActivity(ctx, e.tenant, s)
	if err != nil || !got.Equal(e.now) {
		t.Errorf("LastActivity = %v, %v; want the withdrawal's time %v (not the grant's %v)", got, err, e.now, first)
	}
	if got, err := e.ledger.LastActivity(ctx, e.tenant, custos.NewSubjectID()); err != nil || !got.IsZero() {
		t.Errorf("LastActivity(unknown subject) = %v, %v; want zero, nil", got, err)
	}
}
