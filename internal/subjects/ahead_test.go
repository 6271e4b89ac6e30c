package subjects_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/postgres"
	"github.com/custos-dev/custos/internal/subjects"
)

// countingStore counts a pipeline's reads of links and profiles on a
// shared store: one at a time, or many at once.
type countingStore struct {
	*postgres.Store
	single, many atomic.Int64
}

func (c *countingStore) Subject(ctx context.Context, t custos.TenantID, h custos.IdentifierHash) (custos.SubjectID, error) {
	c.single.Add(1)
	return c.Store.Subject(ctx, t, h)
}

func (c *countingStore) Profile(ctx context.Context, t custos.TenantID, s custos.SubjectID) ([]byte, error) {
	c.single.Add(1)
	return c.Store.Profile(ctx, t, s)
}

func (c *countingStore) Subjects(ctx context.Context, t custos.TenantID, hs []custos.IdentifierHash) (map[custos.IdentifierHash]custos.SubjectID, error) {
	c.many.Add(1)
	return c.Store.Subjects(ctx, t, hs)
}

func (c *countingStore) Profiles(ctx context.Context, t custos.TenantID, ss []custos.SubjectID) (map[custos.SubjectID][]byte, error) {
	c.many.Add(1)
	return c.Store.Profiles(ctx, t, ss)
}

// TestReadAheadOneReadPerBatch: on a shared store, a request of
// identifies and tracks from known people, on a node whose caches are
// empty, reads their links and profiles in one read each, not one per
// message (each a round trip that every message behind waits for), and
// stores what it would have stored reading them one by one.
func TestReadAheadOneReadPerBatch(t *testing.T) {
	d := newSharedDB(t)
	ctx := context.Background()
	a, _ := d.open(t, subjects.Options{})
	const people = 50
	var first []custos.Message
	for i := range people {
		m := msg(custos.Identify, fmt.Sprintf("u%d", i), fmt.Sprintf("a%d", i), 0)
		m.Traits = []byte(`{"plan":"free"}`)
		first = append(first, m, msg(custos.Track, "", fmt.Sprintf("a%d", i), 0))
	}
	if _, err := a.pipe.Ingest(ctx, d.ten, first); err != nil {
		t.Fatal(err)
	}

	cs := &countingStore{}
	b, _ := d.openWrapped(t, subjects.Options{}, func(st *postgres.Store) custos.DataStore {
		cs.Store = st
		return cs
	})
	var batch []custos.Message
	for i := range people {
		m := msg(custos.Identify, fmt.Sprintf("u%d", i), "", time.Minute)
		m.Traits = []byte(fmt.Sprintf(`{"plan":"paid-%d"}`, i))
		batch = append(batch, m, msg(custos.Track, "", fmt.Sprintf("a%d", i), time.Minute))
	}
	res, err := b.pipe.Ingest(ctx, d.ten, batch)
	if err != nil || res.Stored != 2*people {
		t.Fatalf("Ingest = %+v, %v; want %d stored", res, err, 2*people)
	}
	if single, many := cs.single.Load(), cs.many.Load(); single != 0 || many != 2 {
		t.Errorf("the batch read links and profiles %d times one by one and %d times many at once; want 0 and 2", single, many)
	}
	for i := range people {
		s := findOn(t, b, d.ten, custos.UserID, fmt.Sprintf("u%d", i))
		if an := findOn(t, b, d.ten, custos.AnonymousID, fmt.Sprintf("a%d", i)); an != s {
			t.Errorf("a%d is subject %s, u%d is %s: one person split in two", i, an, i, s)
		}
		p, err := b.rd.Profile(ctx, d.ten, s)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf(`"paid-%d"`, i); string(p.Traits["plan"]) != want {
			t.Errorf("u%d's plan = %s, want %s", i, p.Traits["plan"], want)
		}
		if n := countEvents(t, b, d.ten, s); n != 4 {
			t.Errorf("u%d has %d events, want 4", i, n)
		}
	}
}
