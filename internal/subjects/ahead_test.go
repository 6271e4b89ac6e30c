package subjects_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/subjects"
)

// countingStore counts the writer's reads of links and profiles: one at a
// time, or many at once.
type countingStore struct {
	custos.DataStore
	single, many atomic.Int64
}

func (c *countingStore) Subject(ctx context.Context, t custos.TenantID, h custos.IdentifierHash) (custos.SubjectID, error) {
	c.single.Add(1)
	return c.DataStore.Subject(ctx, t, h)
}

func (c *countingStore) Profile(ctx context.Context, t custos.TenantID, s custos.SubjectID) ([]byte, error) {
	c.single.Add(1)
	return c.DataStore.Profile(ctx, t, s)
}

func (c *countingStore) Subjects(ctx context.Context, t custos.TenantID, hs []custos.IdentifierHash) (map[custos.IdentifierHash]custos.SubjectID, error) {
	c.many.Add(1)
	return c.DataStore.Subjects(ctx, t, hs)
}

func (c *countingStore) Profiles(ctx context.Context, t custos.TenantID, ss []custos.SubjectID) (map[custos.SubjectID][]byte, error) {
	c.many.Add(1)
	return c.DataStore.Profiles(ctx, t, ss)
}

// TestReadAheadOneReadPerBatch: a request of identifies and tracks from
// known people, on a writer whose caches are empty, reads their links and
// profiles in one read each, not one per message (on a database, one
// round trip each that every message behind waits for), and stores what
// it would have stored reading them one by one.
func TestReadAheadOneReadPerBatch(t *testing.T) {
	e := newEnv(t)
	const people = 50
	var first []custos.Message
	for i := range people {
		m := msg(custos.Identify, fmt.Sprintf("u%d", i), fmt.Sprintf("a%d", i), 0)
		m.Traits = []byte(`{"plan":"free"}`)
		first = append(first, m)
	}
	e.ingest(t, first...)
	e.pipe.Close()

	cs := &countingStore{DataStore: e.store}
	pipe, err := subjects.New(context.Background(), cs, e.ring, subjects.Options{Now: func() time.Time { return t0.Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	e.pipe = pipe
	var batch []custos.Message
	for i := range people {
		m := msg(custos.Identify, fmt.Sprintf("u%d", i), "", time.Minute)
		m.Traits = []byte(fmt.Sprintf(`{"plan":"paid-%d"}`, i))
		batch = append(batch, m, msg(custos.Track, "", fmt.Sprintf("a%d", i), time.Minute))
	}
	res, err := pipe.Ingest(context.Background(), e.tenant, batch)
	if err != nil || res.Stored != 2*people {
		t.Fatalf("Ingest = %+v, %v; want %d stored", res, err, 2*people)
	}
	if single, many := cs.single.Load(), cs.many.Load(); single != 0 || many != 2 {
		t.Errorf("the batch read links and profiles %d times one by one and %d times many at once; want 0 and 2", single, many)
	}
	for i := range people {
		s := e.find(t, custos.UserID, fmt.Sprintf("u%d", i))
		if a := e.find(t, custos.AnonymousID, fmt.Sprintf("a%d", i)); a != s {
			t.Errorf("a%d is subject %s, u%d is %s: one person split in two", i, a, i, s)
		}
		p, err := e.rd.Profile(context.Background(), e.tenant, s)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf(`"paid-%d"`, i); string(p.Traits["plan"]) != want {
			t.Errorf("u%d's plan = %s, want %s", i, p.Traits["plan"], want)
		}
		if n := len(e.events(t, s)); n != 3 {
			t.Errorf("u%d has %d events, want 3", i, n)
		}
	}
}
