package subjects_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/postgres"
	"github.com/custos-dev/custos/internal/subjects"
)

// applyLog records the Applies a pipeline makes on a shared store.
type applyLog struct {
	*postgres.Store
	mu    sync.Mutex
	calls [][]*custos.Write
}

func (l *applyLog) Apply(ctx context.Context, ws []*custos.Write) (func() error, error) {
	l.mu.Lock()
	l.calls = append(l.calls, ws)
	l.mu.Unlock()
	return l.Store.Apply(ctx, ws)
}

// eventSubjects returns the subjects of an Apply's events.
func eventSubjects(ws []*custos.Write) map[custos.SubjectID]bool {
	out := map[custos.SubjectID]bool{}
	for _, w := range ws {
		for _, e := range w.Events {
			out[e.Subject] = true
		}
	}
	return out
}

func splitNode(t *testing.T, d sharedDB) (node, *applyLog) {
	t.Helper()
	log := &applyLog{}
	n, _ := d.openWrapped(t, subjects.Options{}, func(st *postgres.Store) custos.DataStore {
		log.Store = st
		return log
	})
	return n, log
}

// TestLargeGroupAppliedInParts: on a shared store a large group of new
// people's messages is applied as two concurrent Applies, each holding
// the records of its own subjects only, and everything is stored: each
// person one subject with all their events.
func TestLargeGroupAppliedInParts(t *testing.T) {
	d := newSharedDB(t)
	a, log := splitNode(t, d)
	const people = 200
	var batch []custos.Message
	for i := range people {
		m := msg(custos.Identify, fmt.Sprintf("u%d", i), fmt.Sprintf("a%d", i), 0)
		m.Traits = []byte(`{"plan":"free"}`)
		batch = append(batch, m, msg(custos.Track, "", fmt.Sprintf("a%d", i), time.Second))
	}
	// The tenant's first messages record the categories of data it sends,
	// a tenant-wide record: that group is applied whole.
	if _, err := a.pipe.Ingest(context.Background(), d.ten, batch[:2]); err != nil {
		t.Fatal(err)
	}
	log.calls = nil
	batch = batch[2:]
	res, err := a.pipe.Ingest(context.Background(), d.ten, batch)
	if err != nil || res.Stored != len(batch) {
		t.Fatalf("Ingest = %+v, %v; want %d stored", res, err, len(batch))
	}
	if len(log.calls) != 2 {
		t.Fatalf("the group was applied in %d Applies, want 2", len(log.calls))
	}
	first, second := eventSubjects(log.calls[0]), eventSubjects(log.calls[1])
	for s := range first {
		if second[s] {
			t.Errorf("subject %s has events in both parts", s)
		}
	}
	if len(first)+len(second) != people-1 || len(first) == 0 || len(second) == 0 {
		t.Errorf("parts hold %d and %d subjects' events, want %d in all, some in each", len(first), len(second), people-1)
	}
	for i := range people {
		s := findOn(t, a, d.ten, custos.UserID, fmt.Sprintf("u%d", i))
		if an := findOn(t, a, d.ten, custos.AnonymousID, fmt.Sprintf("a%d", i)); an != s {
			t.Errorf("u%d is subject %s and a%d is %s", i, s, i, an)
		}
		if n := countEvents(t, a, d.ten, s); n != 2 {
			t.Errorf("u%d has %d events, want 2", i, n)
		}
	}
}

// TestPartRefusedGroupComposedAgain: another node stored one message of
// a large group first. The part holding it is refused, the other part is
// stored; the writer composes the group again, and the client is told
// exactly what happened — every message stored but that one, a
// duplicate — while each is stored once.
func TestPartRefusedGroupComposedAgain(t *testing.T) {
	d := newSharedDB(t)
	a, log := splitNode(t, d)
	b, _ := d.open(t, subjects.Options{})
	ctx := context.Background()
	const people = 200
	// The people, and a track so that the categories of data tracks
	// show are recorded (a tenant-wide record is applied whole).
	first := []custos.Message{msg(custos.Track, "u0", "", 0)}
	for i := range people {
		first = append(first, msg(custos.Identify, fmt.Sprintf("u%d", i), "", 0))
	}
	if _, err := a.pipe.Ingest(ctx, d.ten, first); err != nil {
		t.Fatal(err)
	}
	var batch []custos.Message
	for i := range people {
		batch = append(batch, msg(custos.Track, fmt.Sprintf("u%d", i), "", time.Second))
	}
	if res, err := b.pipe.Ingest(ctx, d.ten, batch[7:8]); err != nil || res.Stored != 1 {
		t.Fatalf("node B: Ingest = %+v, %v; want 1 stored", res, err)
	}
	log.calls = nil
	res, err := a.pipe.Ingest(ctx, d.ten, batch)
	if err != nil || res.Stored != people-1 || res.Duplicates != 1 {
		t.Fatalf("node A: Ingest = %+v, %v; want %d stored and 1 duplicate", res, err, people-1)
	}
	if a.retries.Load() != 1 || len(log.calls) != 3 {
		t.Errorf("node A composed the group again %d times in %d Applies; want once, 2 parts then 1", a.retries.Load(), len(log.calls))
	}
	for i := range people {
		s := findOn(t, a, d.ten, custos.UserID, fmt.Sprintf("u%d", i))
		want := 2
		if i == 0 {
			want = 3
		}
		if n := countEvents(t, a, d.ten, s); n != want {
			t.Errorf("u%d has %d events, want %d", i, n, want)
		}
	}
}

func findOn(t *testing.T, n node, ten custos.TenantID, typ custos.IdentifierType, v string) custos.SubjectID {
	t.Helper()
	s, err := n.rd.Find(context.Background(), ten, custos.Identifier{Type: typ, Value: v})
	if err != nil {
		t.Fatalf("find %s %q: %v", typ, v, err)
	}
	return s
}

func countEvents(t *testing.T, n node, ten custos.TenantID, s custos.SubjectID) int {
	t.Helper()
	count := 0
	if err := n.rd.EachEvent(context.Background(), ten, s, func(custos.Event) error { count++; return nil }); err != nil {
		t.Fatal(err)
	}
	return count
}
