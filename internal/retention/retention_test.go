package retention

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
	"github.com/custos-dev/custos/internal/keyring"
	"github.com/custos-dev/custos/internal/pebble"
	"github.com/custos-dev/custos/internal/subjects"
)

var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

type env struct {
	store  *pebble.Store
	ring   *keyring.Ring
	pipe   *subjects.Pipeline
	rd     *subjects.Reader
	audit  *audit.Log
	tenant *custos.Tenant
	now    time.Time
	seq    int
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	e := &env{tenant: &custos.Tenant{ID: custos.NewTenantID(), Name: "r", Region: "eu"}, now: t0.AddDate(0, 0, 400)}
	keys, err := pebble.OpenKeyStore(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	master := make([]byte, 32)
	rand.Read(master)
	if e.ring, err = keyring.New(ctx, keys, master, keyring.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := e.ring.CreateTenant(ctx, e.tenant.ID); err != nil {
		t.Fatal(err)
	}
	if e.store, err = pebble.Open(filepath.Join(dir, "store"), pebble.Options{}); err != nil {
		t.Fatal(err)
	}
	if e.pipe, err = subjects.New(ctx, e.store, e.ring, subjects.Options{Now: func() time.Time { return e.now }}); err != nil {
		t.Fatal(err)
	}
	e.rd = subjects.NewReader(e.store, e.ring)
	e.audit = audit.New(e.store, func() time.Time { return e.now })
	t.Cleanup(func() { e.pipe.Close(); e.store.Close(); keys.Close() })
	return e
}

func (e *env) sweeper(batch int) *Sweeper {
	return New(Options{Store: e.store, Expirer: e.pipe, Audit: e.audit, BatchSize: batch,
		Tenants:  func() []*custos.Tenant { return []*custos.Tenant{e.tenant} },
		Activity: []Activity{RequestActivity(e.store)},
		Now:      func() time.Time { return e.now }})
}

// events ingests one track event per offset (days after t0) for anon.
func (e *env) events(t *testing.T, anon string, days ...int) {
	t.Helper()
	var msgs []custos.Message
	for _, d := range days {
		e.seq++
		at := t0.AddDate(0, 0, d)
		msgs = append(msgs, custos.Message{Type: custos.Track, MessageID: fmt.Sprintf("m-%d", e.seq), AnonymousID: anon,
			Event: "Clicked", Timestamp: at, ReceivedAt: at})
	}
	if res, err := e.pipe.Ingest(context.Background(), e.tenant.ID, msgs); err != nil || res.Stored != len(msgs) {
		t.Fatalf("ingest %s: %+v, %v", anon, res, err)
	}
}

func (e *env) subject(t *testing.T, anon string) (custos.SubjectID, bool) {
	t.Helper()
	s, err := e.rd.Find(context.Background(), e.tenant.ID, custos.Identifier{Type: custos.AnonymousID, Value: anon})
	if custos.ErrorCode(err) == custos.NotFound {
		return s, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return s, true
}

func (e *env) eventDays(t *testing.T, s custos.SubjectID) []int {
	t.Helper()
	var days []int
	err := e.rd.EachEvent(context.Background(), e.tenant.ID, s, func(ev custos.Event) error {
		days = append(days, int(ev.Timestamp.Sub(t0)/(24*time.Hour)))
		return nil
	})
	if err != nil && custos.ErrorCode(err) != custos.NotFound {
		t.Fatal(err)
	}
	return days
}

func (e *env) sweepEntries(t *testing.T) []map[string]any {
	t.Helper()
	entries, err := e.store.AuditEntries(context.Background(), e.tenant.ID, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, en := range entries {
		if en.Action == "retention.sweep" {
			var d map[string]any
			if err := json.Unmarshal(en.Details, &d); err != nil {
				t.Fatalf("details of audit entry %d %s: %v", en.Seq, en.Details, err)
			}
			out = append(out, d)
		}
	}
	return out
}

// TestSweep checks a sweep with an injected clock, 400 days after the
// first events and the default retention of 395 days: old events go,
// recent ones stay; a subject left with nothing is removed entirely
// (profile, identifiers, key) unless a recent request or a standing
// suppression keeps its profile; one audit entry counts what went.
func TestSweep(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.events(t, "old", 0, 1)
	e.events(t, "mixed", 0, 399)
	e.events(t, "requested", 2)
	e.events(t, "suppressed", 3)
	e.events(t, "recent", 398)
	req, _ := e.subject(t, "requested")
	if err := e.store.PutRequest(ctx, &custos.Request{ID: "req_1", Tenant: e.tenant.ID, Type: custos.Access, Status: custos.Completed, IdentityType: custos.AnonymousID,
		Subject: req, ReceivedAt: t0.AddDate(0, 0, 100), UpdatedAt: t0.AddDate(0, 0, 100)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pipe.SetFlags(ctx, e.tenant.ID, custos.Identifier{Type: custos.AnonymousID, Value: "suppressed"}, func(f *custos.SubjectFlags) { f.Suppressed = true }); err != nil {
		t.Fatal(err)
	}
	old, _ := e.subject(t, "old")

	res, err := e.sweeper(2).Sweep(ctx, e.tenant)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Result{Cutoff: t0.AddDate(0, 0, 5), Events: 5, Profiles: 1, Visited: 5, FullWalk: true}); res != want {
		t.Errorf("sweep = %+v, want %+v", res, want)
	}
	if _, ok := e.subject(t, "old"); ok {
		t.Errorf("the subject left with no events is still found by its identifier")
	}
	if _, err := e.store.Profile(ctx, e.tenant.ID, old); !errors.Is(err, custos.ErrNotFound) {
		t.Errorf("profile of the removed subject: %v, want ErrNotFound", err)
	}
	if _, _, err := e.ring.SubjectKey(ctx, e.tenant.ID, old, false); !errors.Is(err, custos.ErrShredded) {
		t.Errorf("key of the removed subject: %v, want it shredded", err)
	}
	for anon, want := range map[string][]int{"mixed": {399}, "requested": nil, "suppressed": nil, "recent": {398}} {
		s, ok := e.subject(t, anon)
		if !ok {
			t.Errorf("subject %s was removed; want its profile kept", anon)
			continue
		}
		if got := e.eventDays(t, s); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("events of %s after the sweep: days %v, want %v", anon, got, want)
		}
	}
	entries := e.sweepEntries(t)
	if len(entries) != 1 || entries[0]["events_removed"] != 5.0 || entries[0]["profiles_removed"] != 1.0 || entries[0]["retention_days"] != 395.0 {
		t.Errorf("audit entries of the sweep = %v, want one with 5 events, 1 profile, 395 days", entries)
	}
	// The identifier of the removed subject starts a new one.
	e.events(t, "old", 400)
	if s, ok := e.subject(t, "old"); !ok || s == old || fmt.Sprint(e.eventDays(t, s)) != "[400]" {
		t.Errorf("a new event of the removed subject's identifier: subject %v (found %v), want a new subject with one event", s, ok)
	}
	// A second sweep finds nothing more, and, the day's full walk done,
	// visits no subject: none had events dropped.
	if res, err := e.sweeper(2).Sweep(ctx, e.tenant); err != nil || res.Events != 0 || res.Profiles != 0 || res.Resumed || res.FullWalk || res.Visited != 0 {
		t.Errorf("second sweep = %+v, %v; want nothing removed, nobody visited", res, err)
	}
}

// TestSweepResumes interrupts a sweep after its first batch of subjects,
// as a crash would — after the events before the cutoff were dropped —
// and checks that the next sweep resumes after it with the same cutoff,
// walks only the rest, and reports the totals once.
func TestSweepResumes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for i := range 5 {
		e.events(t, fmt.Sprintf("s%d", i), 0, 10+i)
	}
	sw := e.sweeper(2)
	calls := 0
	sw.afterBatch = func() error {
		if calls++; calls == 2 { // the drop, then one batch of subjects
			return errors.New("crash")
		}
		return nil
	}
	if _, err := sw.Sweep(ctx, e.tenant); err == nil {
		t.Fatal("the interrupted sweep reported success")
	}
	b, err := e.store.RetentionProgress(ctx, e.tenant.ID)
	if err != nil {
		t.Fatal(err)
	}
	var pr progress
	if err := json.Unmarshal(b, &pr); err != nil {
		t.Fatalf("retention progress %s: %v", b, err)
	}
	if pr.Done || !pr.Dropped || pr.Events != 5 || pr.After == (custos.SubjectID{}) {
		t.Errorf("progress after one batch = %+v, want the 5 old events dropped, subjects walked from after the first batch, not done", pr)
	}
	if len(e.sweepEntries(t)) != 0 {
		t.Errorf("an interrupted sweep left an audit entry")
	}
	// A later clock must not move the cutoff of the resumed sweep.
	e.now = e.now.AddDate(0, 0, 30)
	batches := 0
	sw = e.sweeper(2)
	sw.afterBatch = func() error { batches++; return nil }
	res, err := sw.Sweep(ctx, e.tenant)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Result{Cutoff: t0.AddDate(0, 0, 5), Events: 5, Profiles: 0, Resumed: true, Visited: 5, FullWalk: true}); res != want || batches != 2 {
		t.Errorf("resumed sweep = %+v in %d batches, want %+v in 2", res, batches, want)
	}
	for i := range 5 {
		s, _ := e.subject(t, fmt.Sprintf("s%d", i))
		if got := e.eventDays(t, s); fmt.Sprint(got) != fmt.Sprint([]int{10 + i}) {
			t.Errorf("events of s%d = %v, want only day %d", i, got, 10+i)
		}
	}
	if entries := e.sweepEntries(t); len(entries) != 1 || entries[0]["events_removed"] != 5.0 || entries[0]["resumed"] != true {
		t.Errorf("audit entries = %v, want one of the whole sweep, resumed", entries)
	}
}

// TestDropInBoundedWrites: the drop of expired events writes at most
// MaxEvents deletions at a time, even inside one day holding more, and
// goes on until nothing before the cutoff is left.
func TestDropInBoundedWrites(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for i := range 4 {
		e.events(t, fmt.Sprintf("s%d", i), 0, 0, 1, 399) // three expired, two on one day
	}
	cutoff := t0.AddDate(0, 0, 5)
	total, calls := 0, 0
	for more := true; more; calls++ {
		if calls > 20 {
			t.Fatalf("the drop did not end after %d batches", calls)
		}
		res, err := e.pipe.Expire(ctx, e.tenant.ID, subjects.Expiry{Before: cutoff, MaxEvents: 3})
		if err != nil {
			t.Fatal(err)
		}
		if res.Events > 3 {
			t.Errorf("batch %d deleted %d events, want at most 3", calls+1, res.Events)
		}
		total, more = total+res.Events, res.More
	}
	if total != 12 {
		t.Errorf("the drop deleted %d events in %d batches, want 12", total, calls)
	}
	for i := range 4 {
		s, ok := e.subject(t, fmt.Sprintf("s%d", i))
		if got := e.eventDays(t, s); !ok || fmt.Sprint(got) != "[399]" {
			t.Errorf("events of s%d after the drop: days %v (found %v), want [399]", i, got, ok)
		}
	}
}

// lookedAt is an Expirer that records the subjects each batch hands the
// writer.
type lookedAt struct {
	Expirer
	subjects []custos.SubjectID
}

func (l *lookedAt) Expire(ctx context.Context, t custos.TenantID, e subjects.Expiry) (subjects.ExpiryResult, error) {
	l.subjects = append(l.subjects, e.Subjects...)
	return l.Expirer.Expire(ctx, t, e)
}

// TestSweepLeavesRecentSubjectsAlone: the writer, which ingestion waits
// for, is asked to look only at subjects with something to expire or to
// remove; a subject whose events all fall within the period is not
// handed to it.
func TestSweepLeavesRecentSubjectsAlone(t *testing.T) {
	e := newEnv(t)
	e.events(t, "old", 0)
	e.events(t, "mixed", 0, 399)
	e.events(t, "recent", 398, 399)
	// An event dated before the cutoff that arrives after the day drop.
	late := &lookedAt{Expirer: e.pipe}
	sw := e.sweeper(10)
	sw.o.Expirer = late
	sw.afterBatch = func() error {
		if late.subjects == nil {
			e.events(t, "late", 1, 398)
		}
		return nil
	}
	ids := map[string]custos.SubjectID{}
	for _, anon := range []string{"old", "mixed", "recent"} {
		ids[anon], _ = e.subject(t, anon)
	}
	if _, err := sw.Sweep(t.Context(), e.tenant); err != nil {
		t.Fatal(err)
	}
	ids["late"], _ = e.subject(t, "late")
	looked := map[custos.SubjectID]bool{}
	for _, s := range late.subjects {
		looked[s] = true
	}
	for anon, want := range map[string]bool{"old": true, "mixed": false, "recent": false, "late": true} {
		if looked[ids[anon]] != want {
			t.Errorf("subject %s handed to the writer = %v, want %v", anon, looked[ids[anon]], want)
		}
	}
	if _, ok := e.subject(t, "old"); ok {
		t.Errorf("the subject left with no events is still found after the sweep")
	}
	if s, _ := e.subject(t, "late"); fmt.Sprint(e.eventDays(t, s)) != "[398]" {
		t.Errorf("events of the late subject after the sweep: days %v, want [398]", e.eventDays(t, s))
	}
}

// countingStore counts the profiles a sweep walks through EachProfile.
type countingStore struct {
	Store
	walked int
}

func (c *countingStore) EachProfile(ctx context.Context, t custos.TenantID, after custos.SubjectID, fn func(custos.StoredProfile) (bool, error)) error {
	return c.Store.EachProfile(ctx, t, after, func(p custos.StoredProfile) (bool, error) {
		c.walked++
		return fn(p)
	})
}

// TestTargetedWalk: after the day's full walk, an hourly sweep visits only
// the subjects whose events it dropped — not every subject of the tenant
// — and removes those left with nothing; a subject kept for its activity
// is removed by the next full walk, a day later, once that activity is
// older than the period; a sweep resumed after a crash walks everyone,
// since the list of subjects was in memory.
func TestTargetedWalk(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cs := &countingStore{Store: e.store}
	sweep := func() Result {
		t.Helper()
		sw := e.sweeper(2)
		sw.o.Store = cs
		cs.walked = 0
		res, err := sw.Sweep(ctx, e.tenant)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	for i := range 6 {
		e.events(t, fmt.Sprintf("recent%d", i), 399)
	}
	e.events(t, "active", 1)
	active, _ := e.subject(t, "active")
	// Its request is 30 minutes inside the period at the first sweep.
	recentAt := e.now.AddDate(0, 0, -395).Add(30 * time.Minute)
	if err := e.store.PutRequest(ctx, &custos.Request{ID: "req_a", Tenant: e.tenant.ID, Type: custos.Access, Status: custos.Completed, IdentityType: custos.AnonymousID,
		Subject: active, ReceivedAt: recentAt, UpdatedAt: recentAt}); err != nil {
		t.Fatal(err)
	}
	if res := sweep(); !res.FullWalk || res.Visited != 7 || cs.walked != 7 || res.Profiles != 0 {
		t.Fatalf("first sweep = %+v, %d profiles walked; want a full walk of the 7 subjects, none removed", res, cs.walked)
	}
	// An hour later: two subjects' old events arrive late; only they are
	// visited, and both are removed. The active subject's request has
	// aged out meanwhile, but it had no events to drop: it waits for the
	// full walk.
	e.now = e.now.Add(time.Hour)
	e.events(t, "late1", 2)
	e.events(t, "late2", 3, 4)
	res := sweep()
	if res.FullWalk || res.Visited != 2 || cs.walked != 0 || res.Profiles != 2 || res.Events != 3 {
		t.Errorf("hourly sweep = %+v, %d profiles walked; want the 2 subjects of the 3 dropped events visited and removed, no walk", res, cs.walked)
	}
	for _, anon := range []string{"late1", "late2"} {
		if _, ok := e.subject(t, anon); ok {
			t.Errorf("subject %s, left with nothing, is still found", anon)
		}
	}
	if _, ok := e.subject(t, "active"); !ok {
		t.Fatal("the active subject went before a full walk")
	}
	// A day after the first: the full walk removes it.
	e.now = e.now.Add(24 * time.Hour)
	if res := sweep(); !res.FullWalk || res.Visited != 7 || cs.walked != 7 || res.Profiles != 1 {
		t.Errorf("next day's sweep = %+v, %d walked; want a full walk of 7 removing the subject whose activity aged out", res, cs.walked)
	}
	if _, ok := e.subject(t, "active"); ok {
		t.Error("the subject whose activity aged out is still found after the full walk")
	}
	// A targeted sweep interrupted after its drop resumes as a full walk.
	e.now = e.now.Add(time.Hour)
	e.events(t, "late3", 2)
	sw := e.sweeper(2)
	sw.o.Store = cs
	calls := 0
	sw.afterBatch = func() error {
		if calls++; calls == 1 {
			return errors.New("crash")
		}
		return nil
	}
	if _, err := sw.Sweep(ctx, e.tenant); err == nil {
		t.Fatal("the interrupted sweep reported success")
	}
	if res := sweep(); !res.Resumed || !res.FullWalk || res.Profiles != 1 || res.Events != 1 {
		t.Errorf("resumed sweep = %+v, want a full walk removing the late subject", res)
	}
	if _, ok := e.subject(t, "late3"); ok {
		t.Error("the late subject of the interrupted sweep is still found")
	}
}

// dayCountingStore counts the day-index and event-span reads of a sweep
// on a store that indexes events by day.
type dayCountingStore struct {
	*pebble.Store
	days, spans int
}

func (c *dayCountingStore) EventDays(ctx context.Context, t custos.TenantID, s custos.SubjectID) ([]time.Time, error) {
	c.days++
	return c.Store.EventDays(ctx, t, s)
}

func (c *dayCountingStore) EventSpan(ctx context.Context, t custos.TenantID, s custos.SubjectID) (time.Time, time.Time, bool, error) {
	c.spans++
	return c.Store.EventSpan(ctx, t, s)
}

// TestFullWalkReadsDays: on a store with a day index, a full walk reads
// the events' span only of subjects with events on or before the
// cutoff's day; the others are judged from their days alone, with the
// same outcome: subjects with recent events stay, one left with no
// events goes, and one whose only event falls on the cutoff's day but
// not before the cutoff stays.
func TestFullWalkReadsDays(t *testing.T) {
	e := newEnv(t)
	for i := range 5 {
		e.events(t, fmt.Sprintf("recent%d", i), 390, 399)
	}
	e.events(t, "old", 0)
	// The cutoff is 395 days before now: day 5 at the time of day, the
	// time of this event.
	e.events(t, "edge", 5)
	cs := &dayCountingStore{Store: e.store}
	sw := e.sweeper(3)
	sw.o.Store = cs
	res, err := sw.Sweep(t.Context(), e.tenant)
	if err != nil {
		t.Fatal(err)
	}
	if !res.FullWalk || res.Visited != 7 || res.Profiles != 1 || res.Events != 1 {
		t.Errorf("sweep = %+v, want a full walk of 7 removing the old subject's event and profile", res)
	}
	if cs.days != 7 || cs.spans != 1 {
		t.Errorf("the walk read the days of %d subjects and the event span of %d; want the days of all 7 and the span of the one with an event on the cutoff's day", cs.days, cs.spans)
	}
	if _, ok := e.subject(t, "old"); ok {
		t.Error("the subject left with no events is still found")
	}
	for _, anon := range []string{"recent0", "recent4", "edge"} {
		if _, ok := e.subject(t, anon); !ok {
			t.Errorf("subject %s, with an event within the period, was removed", anon)
		}
	}
}
