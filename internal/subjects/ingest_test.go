package subjects_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/keyring"
	"github.com/custos-dev/custos/internal/pebble"
	"github.com/custos-dev/custos/internal/subjects"
	"github.com/custos-dev/custos/internal/testenv"
)

// env is a pipeline over a real store and key store in a temp dir.
type env struct {
	// filterFile, if set, is where the duplicate filter is saved on an
	// orderly close; crash makes the next close skip saving it.
	filterFile string
	crash      bool
	rebuilds   int
	dir        string
	master     []byte
	store      *pebble.Store
	keys       *pebble.KeyStore
	ring       *keyring.Ring
	pipe       *subjects.Pipeline
	rd         *subjects.Reader
	tenant     custos.TenantID
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{dir: t.TempDir(), master: make([]byte, 32), tenant: custos.NewTenantID()}
	rand.Read(e.master)
	e.open(t)
	if err := e.ring.CreateTenant(context.Background(), e.tenant); err != nil {
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
	// The clock stands just after the messages' times, as in production
	// where messages are received now.
	clock := func() time.Time { return t0.Add(time.Hour) }
	onRebuild := func(_ int, done bool) {
		if done {
			e.rebuilds++
		}
	}
	if e.pipe, err = subjects.New(ctx, e.store, e.ring, subjects.Options{Now: clock, FilterFile: e.filterFile, OnRebuild: onRebuild}); err != nil {
		t.Fatal(err)
	}
	e.rd = subjects.NewReader(e.store, e.ring)
	t.Cleanup(func() { e.close(t) })
}

func (e *env) close(t *testing.T) {
	t.Helper()
	if e.pipe == nil {
		return
	}
	e.pipe.Close()
	if !e.crash {
		if err := e.pipe.SaveFilter(); err != nil {
			t.Error(err)
		}
	}
	e.crash = false
	if err := e.store.Close(); err != nil {
		t.Error(err)
	}
	if err := e.keys.Close(); err != nil {
		t.Error(err)
	}
	e.pipe = nil
}

func (e *env) reopen(t *testing.T) {
	t.Helper()
	e.close(t)
	e.open(t)
}

func (e *env) ingest(t *testing.T, msgs ...custos.Message) subjects.Result {
	t.Helper()
	res, err := e.pipe.Ingest(context.Background(), e.tenant, msgs)
	if err != nil {
		t.Fatalf("ingest: %v", err)
	}
	return res
}

func (e *env) find(t *testing.T, typ custos.IdentifierType, v string) custos.SubjectID {
	t.Helper()
	s, err := e.rd.Find(context.Background(), e.tenant, custos.Identifier{Type: typ, Value: v})
	if err != nil {
		t.Fatalf("find %s %q: %v", typ, v, err)
	}
	return s
}

func (e *env) events(t *testing.T, s custos.SubjectID) []custos.Event {
	t.Helper()
	var all []custos.Event
	err := e.rd.EachEvent(context.Background(), e.tenant, s, func(ev custos.Event) error {
		all = append(all, ev)
		return nil
	})
	if err != nil {
		t.Fatalf("events of %s: %v", s, err)
	}
	return all
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// msgSeq numbers the messages msg makes; tests call it from several
// goroutines.
var msgSeq atomic.Int64

func msg(typ custos.MessageType, user, anon string, at time.Duration) custos.Message {
	return custos.Message{
		Type: typ, MessageID: fmt.Sprintf("m-%d", msgSeq.Add(1)), UserID: user, AnonymousID: anon,
		Event: "Clicked", Timestamp: t0.Add(at), ReceivedAt: t0.Add(at),
		Properties: []byte(`{"n":1}`), Context: []byte(`{"ip":"192.0.2.1"}`),
	}
}

func messageIDs(evs []custos.Event) []string {
	var ids []string
	for _, e := range evs {
		ids = append(ids, e.MessageID)
	}
	slices.Sort(ids)
	return ids
}

func TestIdentifyLinksIdentifiers(t *testing.T) {
	e := newEnv(t)
	id := msg(custos.Identify, "u1", "a1", 0)
	id.Traits = []byte(`{"email":"Ann@Example.com","name":"Ann"}`)
	id.Email = custos.NormalizeEmail("Ann@Example.com")
	id.DeviceIDs = []string{"idfa-1"}
	tr := msg(custos.Track, "", "a1", time.Second)
	e.ingest(t, id, tr)

	s := e.find(t, custos.UserID, "u1")
	for _, c := range []struct {
		typ custos.IdentifierType
		v   string
	}{{custos.AnonymousID, "a1"}, {custos.Email, "ANN@example.com "}, {custos.DeviceID, "idfa-1"}} {
		if got := e.find(t, c.typ, c.v); got != s {
			t.Errorf("find %s %q = %s, want %s", c.typ, c.v, got, s)
		}
	}
	p, err := e.rd.Profile(context.Background(), e.tenant, s)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(p.Traits["name"]); got != `"Ann"` {
		t.Errorf("trait name = %s, want \"Ann\"", got)
	}
	if got, want := p.Identifiers["email"], []string{"ann@example.com"}; !slices.Equal(got, want) {
		t.Errorf("emails = %v, want %v", got, want)
	}
	if !p.FirstSeen.Equal(t0) || !p.LastSeen.Equal(t0.Add(time.Second)) {
		t.Errorf("first/last seen = %v/%v, want %v/%v", p.FirstSeen, p.LastSeen, t0, t0.Add(time.Second))
	}
	if got, want := messageIDs(e.events(t, s)), messageIDs([]custos.Event{{MessageID: id.MessageID}, {MessageID: tr.MessageID}}); !slices.Equal(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
}

func TestMergeMovesEverythingAndShredsTheOtherKey(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// Two visitors that turn out to be one person.
	a := msg(custos.Track, "", "anon-a", 0)
	b := msg(custos.Track, "u1", "anon-b", time.Second)
	e.ingest(t, a)
	e.ingest(t, b)
	sa, sb := e.find(t, custos.AnonymousID, "anon-a"), e.find(t, custos.UserID, "u1")
	if sa == sb {
		t.Fatal("two unrelated visitors share a subject before the merge")
	}
	link := msg(custos.Identify, "u1", "anon-a", 2*time.Second)
	link.Traits = []byte(`{"plan":"pro"}`)
	e.ingest(t, link)

	for _, c := range []struct {
		typ custos.IdentifierType
		v   string
	}{{custos.AnonymousID, "anon-a"}, {custos.AnonymousID, "anon-b"}, {custos.UserID, "u1"}} {
		if got := e.find(t, c.typ, c.v); got != sb {
			t.Errorf("after merge, find %s %q = %s, want the user's subject %s", c.typ, c.v, got, sb)
		}
	}
	want := []string{a.MessageID, b.MessageID, link.MessageID}
	slices.Sort(want)
	if got := messageIDs(e.events(t, sb)); !slices.Equal(got, want) {
		t.Errorf("events after merge = %v, want %v", got, want)
	}
	p, err := e.rd.Profile(ctx, e.tenant, sb)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.Identifiers["anonymous_id"], []string{"anon-a", "anon-b"}; !sameSet(got, want) {
		t.Errorf("anonymous ids = %v, want %v", got, want)
	}
	// The absorbed subject's key is destroyed once the merge is durable.
	var keyErr error
	testenv.Poll(t, 5*time.Second, "the merged subject's key shredded", func() bool {
		_, _, keyErr = e.ring.SubjectKey(ctx, e.tenant, sa, false)
		return errors.Is(keyErr, custos.ErrShredded)
	}, func() string { return fmt.Sprintf("SubjectKey err = %v", keyErr) })
	if _, err := e.rd.Profile(ctx, e.tenant, sa); custos.ErrorCode(err) != custos.NotFound {
		t.Errorf("profile of merged subject: err = %v, want NotFound", err)
	}
}

func TestSharedDeviceDoesNotFuseTwoUsers(t *testing.T) {
	e := newEnv(t)
	m1 := msg(custos.Track, "alice", "", 0)
	m1.DeviceIDs = []string{"shared-tablet"}
	m2 := msg(custos.Track, "bob", "", time.Second)
	m2.DeviceIDs = []string{"shared-tablet"}
	e.ingest(t, m1, m2)
	if a, b := e.find(t, custos.UserID, "alice"), e.find(t, custos.UserID, "bob"); a == b {
		t.Fatalf("alice and bob share subject %s through a device id", a)
	}
	bob := e.find(t, custos.UserID, "bob")
	if got := messageIDs(e.events(t, bob)); !slices.Equal(got, []string{m2.MessageID}) {
		t.Errorf("bob's events = %v, want only %s", got, m2.MessageID)
	}
}

func TestAliasMergesPreviousID(t *testing.T) {
	e := newEnv(t)
	e.ingest(t, msg(custos.Track, "", "old-anon", 0))
	e.ingest(t, msg(custos.Track, "new-user", "", time.Second))
	al := msg(custos.Alias, "new-user", "", 2*time.Second)
	al.PreviousID = "old-anon"
	e.ingest(t, al)
	if a, b := e.find(t, custos.AnonymousID, "old-anon"), e.find(t, custos.UserID, "new-user"); a != b {
		t.Fatalf("alias did not merge: %s vs %s", a, b)
	}
	if got := len(e.events(t, e.find(t, custos.UserID, "new-user"))); got != 3 {
		t.Errorf("events after alias = %d, want 3", got)
	}
}

func TestRetriedMessagesAreStoredOnce(t *testing.T) {
	e := newEnv(t)
	batch := []custos.Message{msg(custos.Track, "u1", "", 0), msg(custos.Track, "u1", "", time.Second)}
	if got := e.ingest(t, batch...); got.Stored != 2 || got.Duplicates != 0 {
		t.Fatalf("first send = %+v, want 2 stored", got)
	}
	if got := e.ingest(t, batch...); got.Stored != 0 || got.Duplicates != 2 {
		t.Errorf("retry = %+v, want 2 duplicates", got)
	}
	twice := msg(custos.Track, "u1", "", 2*time.Second)
	if got := e.ingest(t, twice, twice); got.Stored != 1 || got.Duplicates != 1 {
		t.Errorf("same message twice in one call = %+v, want 1 stored, 1 duplicate", got)
	}
	// The in-memory filter is rebuilt from the store after a restart.
	e.reopen(t)
	if got := e.ingest(t, batch...); got.Duplicates != 2 {
		t.Errorf("retry after restart = %+v, want 2 duplicates", got)
	}
	if got := len(e.events(t, e.find(t, custos.UserID, "u1"))); got != 3 {
		t.Errorf("events = %d, want 3", got)
	}
}

func TestNewestTraitWins(t *testing.T) {
	e := newEnv(t)
	newer := msg(custos.Identify, "u1", "", 10*time.Second)
	newer.Traits = []byte(`{"plan":"pro","city":"Lyon"}`)
	older := msg(custos.Identify, "u1", "", 5*time.Second)
	older.Traits = []byte(`{"plan":"free","age":40}`)
	e.ingest(t, newer)
	e.ingest(t, older) // arrives late, but happened earlier
	p, err := e.rd.Profile(context.Background(), e.tenant, e.find(t, custos.UserID, "u1"))
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"plan": `"pro"`, "city": `"Lyon"`, "age": `40`} {
		if got := string(p.Traits[k]); got != want {
			t.Errorf("trait %s = %s, want %s", k, got, want)
		}
	}
}

func TestGroupMembership(t *testing.T) {
	e := newEnv(t)
	g := msg(custos.Group, "u1", "", 0)
	g.GroupID = "acme"
	g.Traits = []byte(`{"employees":50}`)
	e.ingest(t, g)
	p, err := e.rd.Profile(context.Background(), e.tenant, e.find(t, custos.UserID, "u1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Groups) != 1 || p.Groups[0].GroupID != "acme" || string(p.Groups[0].Traits) != `{"employees":50}` {
		t.Errorf("groups = %+v, want acme with employees 50", p.Groups)
	}
}

func TestEventsPageInTimestampOrder(t *testing.T) {
	e := newEnv(t)
	var msgs []custos.Message
	for i := 9; i >= 0; i-- { // sent newest first
		msgs = append(msgs, msg(custos.Track, "u1", "", time.Duration(i)*time.Minute))
	}
	e.ingest(t, msgs...)
	s := e.find(t, custos.UserID, "u1")
	var got []custos.Event
	cursor := ""
	for page := 0; ; page++ {
		evs, next, err := e.rd.Events(context.Background(), e.tenant, s, cursor, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) > 3 {
			t.Fatalf("page %d has %d events, limit 3", page, len(evs))
		}
		got = append(got, evs...)
		if next == "" {
			break
		}
		cursor = next
	}
	if len(got) != 10 {
		t.Fatalf("paged %d events, want 10", len(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i].Timestamp.Before(got[i-1].Timestamp) {
			t.Errorf("event %d at %v before event %d at %v", i, got[i].Timestamp, i-1, got[i-1].Timestamp)
		}
	}
	if _, _, err := e.rd.Events(context.Background(), e.tenant, s, "not-a-cursor", 3); custos.ErrorCode(err) != custos.Invalid {
		t.Errorf("bad cursor: err = %v, want Invalid", err)
	}
}

func TestEventRoundTripKeepsEveryField(t *testing.T) {
	e := newEnv(t)
	m := custos.Message{
		Type: custos.Page, MessageID: "mid-\"quoted\"-ü", UserID: "u\n1", AnonymousID: "a1",
		Name: "Home", Properties: []byte(`{"path":"/","nested":{"a":[1,2]}}`),
		Context: []byte(`{"ip":"192.0.2.9"}`), Timestamp: t0.Add(123 * time.Nanosecond), ReceivedAt: t0.Add(time.Second),
	}
	e.ingest(t, m)
	evs := e.events(t, e.find(t, custos.UserID, "u\n1"))
	if len(evs) != 1 {
		t.Fatalf("events = %d, want 1", len(evs))
	}
	got := evs[0]
	if got.MessageID != m.MessageID || got.Type != m.Type || got.Name != m.Name || got.UserID != m.UserID ||
		got.AnonymousID != m.AnonymousID || string(got.Properties) != string(m.Properties) ||
		string(got.Context) != string(m.Context) || !got.Timestamp.Equal(m.Timestamp) || !got.ReceivedAt.Equal(m.ReceivedAt) {
		t.Errorf("round trip = %+v, want the fields of %+v", got, m)
	}
}

func TestErasedSubjectStartsAfresh(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.ingest(t, msg(custos.Track, "u1", "", 0))
	old := e.find(t, custos.UserID, "u1")
	if err := e.ring.Shred(ctx, e.tenant, old); err != nil {
		t.Fatal(err)
	}
	e.ingest(t, msg(custos.Track, "u1", "", time.Second))
	fresh := e.find(t, custos.UserID, "u1")
	if fresh == old {
		t.Fatal("a message for a shredded subject was stored under the destroyed key's subject")
	}
	if got := len(e.events(t, fresh)); got != 1 {
		t.Errorf("events of the new subject = %d, want 1", got)
	}
}

func TestClosedPipelineAsksToRetry(t *testing.T) {
	e := newEnv(t)
	e.pipe.Close()
	_, err := e.pipe.Ingest(context.Background(), e.tenant, []custos.Message{msg(custos.Track, "u1", "", 0)})
	if custos.ErrorCode(err) != custos.Unavailable {
		t.Errorf("ingest after close: err = %v, want Unavailable", err)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestDuplicateFilterSavedOnCloseAndRebuiltAfterACrash(t *testing.T) {
	e := newEnv(t)
	e.filterFile = filepath.Join(e.dir, "dedupe.filter")
	e.reopen(t)
	batch := []custos.Message{msg(custos.Track, "u1", "", 0), msg(custos.Track, "u1", "", time.Second)}
	e.ingest(t, batch...)

	// An orderly stop saves the filter; the next start loads it instead of
	// reading every record.
	before := e.rebuilds
	e.reopen(t)
	if e.rebuilds != before {
		t.Errorf("after an orderly stop the filter was rebuilt (%d rebuilds), want it loaded", e.rebuilds-before)
	}
	if got := e.ingest(t, batch...); got.Duplicates != 2 {
		t.Errorf("retry after a restart with the saved filter = %+v, want 2 duplicates", got)
	}
	// A crash leaves no saved filter (the loaded one was removed): rebuilt.
	e.crash = true
	e.reopen(t)
	if e.rebuilds != before+1 {
		t.Errorf("after a crash: %d rebuilds, want 1", e.rebuilds-before)
	}
	if got := e.ingest(t, batch...); got.Duplicates != 2 {
		t.Errorf("retry after a crash = %+v, want 2 duplicates", got)
	}
}

func TestTornFilterFileIsRebuilt(t *testing.T) {
	e := newEnv(t)
	e.filterFile = filepath.Join(e.dir, "dedupe.filter")
	e.reopen(t)
	batch := []custos.Message{msg(custos.Track, "u1", "", 0)}
	e.ingest(t, batch...)
	e.close(t) // saves the filter
	b, err := os.ReadFile(e.filterFile)
	if err != nil {
		t.Fatal(err)
	}
	// Cut it short, as a crash while writing it (without the rename) could not,
	// but a damaged disk could.
	if err := os.WriteFile(e.filterFile, b[:len(b)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	before := e.rebuilds
	e.open(t)
	if e.rebuilds != before+1 {
		t.Errorf("a torn filter file was trusted (%d rebuilds), want it rebuilt", e.rebuilds-before)
	}
	if got := e.ingest(t, batch...); got.Duplicates != 1 {
		t.Errorf("retry after a torn filter = %+v, want a duplicate", got)
	}
}

// TestMergeCarriesSendRecords checks that a campaign send record of a
// subject merged into another is re-sealed under the survivor's key.
func TestMergeCarriesSendRecords(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.ingest(t, msg(custos.Track, "", "anon-s", 0), msg(custos.Track, "u-s", "", time.Second))
	sa, sb := e.find(t, custos.AnonymousID, "anon-s"), e.find(t, custos.UserID, "u-s")
	at := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	rk := custos.SendRecordKey("cmp_1", at)
	sealed, err := e.ring.Seal(ctx, e.tenant, sa, rk, []byte(`{"campaign_id":"cmp_1"}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.PutSend(ctx, e.tenant, custos.StoredSend{Subject: sa, Time: at, Campaign: "cmp_1", Value: sealed}); err != nil {
		t.Fatal(err)
	}
	e.ingest(t, msg(custos.Identify, "u-s", "anon-s", 2*time.Second))
	var got []custos.StoredSend
	e.store.Sends(ctx, e.tenant, sb, time.Time{}, func(s custos.StoredSend) (bool, error) { got = append(got, s); return true, nil })
	if len(got) != 1 || got[0].Campaign != "cmp_1" || !got[0].Time.Equal(at) {
		t.Fatalf("survivor's send records = %+v, want the merged subject's one", got)
	}
	plain, err := e.ring.Open(ctx, e.tenant, sb, rk, got[0].Value)
	if err != nil || string(plain) != `{"campaign_id":"cmp_1"}` {
		t.Errorf("open the moved record with the survivor's key = %q, %v", plain, err)
	}
}

// TestFullIdentityCacheKeepsTheGroupsLinks: a tenant's identifier cache
// that fills up in the middle of a group does not forget the links the
// group made, which the store does not hold until the group is applied:
// a later message of the group with one of them joins its subject.
func TestFullIdentityCacheKeepsTheGroupsLinks(t *testing.T) {
	e := newEnv(t)
	e.pipe.Close()
	pipe, err := subjects.New(context.Background(), e.store, e.ring, subjects.Options{Now: func() time.Time { return t0.Add(time.Hour) }, IdentityCache: 2})
	if err != nil {
		t.Fatal(err)
	}
	e.pipe = pipe
	e.ingest(t,
		msg(custos.Identify, "u1", "a1", 0),
		msg(custos.Identify, "u2", "a2", time.Second),
		msg(custos.Identify, "u3", "a3", 2*time.Second),
		msg(custos.Track, "", "a1", 3*time.Second),
	)
	u1, a1 := e.find(t, custos.UserID, "u1"), e.find(t, custos.AnonymousID, "a1")
	if u1 != a1 {
		t.Fatalf("a1 is subject %s, u1 is %s: the track joined another subject", a1, u1)
	}
	if n := len(e.events(t, u1)); n != 2 {
		t.Errorf("u1 has %d events, want 2", n)
	}
}
