package pebble_test

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/pebble"
	"github.com/custos-dev/custos/internal/storetest"
)

// openStore opens a store in dir, turning a panic into an error so that one
// broken Open fails the tests that call it rather than the whole binary.
func openStore(dir string) (st *pebble.Store, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("open panicked: %v", p)
		}
	}()
	return pebble.Open(dir, pebble.Options{})
}

// mustOpen opens a store in dir and closes it when the test ends.
func mustOpen(tb testing.TB, dir string) *pebble.Store {
	tb.Helper()
	st, err := openStore(dir)
	if err != nil {
		tb.Fatalf("Open(%s) = %v, want nil", dir, err)
	}
	tb.Cleanup(func() {
		if err := st.Close(); err != nil {
			tb.Errorf("Close(%s) = %v, want nil", dir, err)
		}
	})
	return st
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) custos.Store { return mustOpen(t, t.TempDir()) })
}

// TestStoreShared runs the two-handle cases with the one handle a
// process may hold on a Pebble store, given twice.
func TestStoreShared(t *testing.T) {
	storetest.RunShared(t, func(t *testing.T) (custos.Store, custos.Store) {
		st := mustOpen(t, t.TempDir())
		return st, st
	})
}

// durabilityFixture is one tenant's worth of every kind of record.
type durabilityFixture struct {
	tenant  *custos.Tenant
	subject custos.SubjectID
	events  []custos.StoredEvent // in contract order
	profile []byte
	link    custos.IdentifierHash
	seen    custos.Seen
	gone    custos.SubjectID // deleted before the restart
}

func writeFixture(t *testing.T, st custos.Store) durabilityFixture {
	t.Helper()
	ctx := t.Context()
	f := durabilityFixture{
		tenant:  &custos.Tenant{ID: custos.NewTenantID(), Name: "Durable AG", Region: "eu", CreatedAt: time.Date(2024, 1, 2, 3, 4, 5, 6000, time.UTC)},
		subject: custos.NewSubjectID(),
		profile: []byte("sealed profile"),
		gone:    custos.NewSubjectID(),
	}
	rand.Read(f.tenant.WriteKeyHash[:])
	rand.Read(f.link[:])
	for i, tm := range []time.Time{time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC), time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)} {
		var id custos.MessageHash
		rand.Read(id[:])
		f.events = append(f.events, custos.StoredEvent{Subject: f.subject, Time: tm, ID: id, Value: []byte{byte(i), 0xff, 0x00}})
	}
	f.seen = custos.Seen{ID: f.events[1].ID, Subject: f.subject, Time: f.events[1].Time}
	if err := st.CreateTenant(ctx, f.tenant); err != nil {
		t.Fatalf("CreateTenant = %v, want nil", err)
	}
	ws := []*custos.Write{
		{
			Tenant: f.tenant.ID, Events: f.events,
			Profiles: []custos.StoredProfile{{Subject: f.subject, Value: f.profile}, {Subject: f.gone, Value: []byte("doomed")}},
			Links:    []custos.Link{{Hash: f.link, Subject: f.subject}},
			Seen:     []custos.Seen{f.seen},
		},
		{Tenant: f.tenant.ID, DeleteSubjects: []custos.SubjectID{f.gone}},
	}
	wait, err := st.Apply(ctx, ws)
	if err != nil {
		t.Fatalf("Apply = %v, want nil", err)
	}
	if err := wait(); err != nil {
		t.Fatalf("wait() = %v, want nil", err)
	}
	return f
}

func checkFixture(t *testing.T, st custos.Store, f durabilityFixture) {
	t.Helper()
	ctx := t.Context()
	ten, err := st.Tenant(ctx, f.tenant.ID)
	if err != nil || ten.Name != f.tenant.Name || ten.WriteKeyHash != f.tenant.WriteKeyHash || !ten.CreatedAt.Equal(f.tenant.CreatedAt) {
		t.Errorf("Tenant(%s) after reopen = %+v, %v; want %+v", f.tenant.ID, ten, err, f.tenant)
	}
	var got []custos.StoredEvent
	err = st.Events(ctx, f.tenant.ID, f.subject, nil, func(e custos.StoredEvent) (bool, error) {
		got = append(got, e)
		return true, nil
	})
	if err != nil || len(got) != len(f.events) {
		t.Fatalf("Events after reopen = %d events, %v; want %d, nil", len(got), err, len(f.events))
	}
	for i, e := range got {
		w := f.events[i]
		if e.Subject != w.Subject || !e.Time.Equal(w.Time) || e.ID != w.ID || string(e.Value) != string(w.Value) {
			t.Errorf("Events after reopen [%d] = %+v, want %+v", i, e, w)
		}
	}
	if p, err := st.Profile(ctx, f.tenant.ID, f.subject); err != nil || string(p) != string(f.profile) {
		t.Errorf("Profile after reopen = %q, %v; want %q, nil", p, err, f.profile)
	}
	if _, err := st.Profile(ctx, f.tenant.ID, f.gone); !errors.Is(err, custos.ErrNotFound) {
		t.Errorf("Profile of subject deleted before reopen = %v, want custos.ErrNotFound", err)
	}
	if s, err := st.Subject(ctx, f.tenant.ID, f.link); err != nil || s != f.subject {
		t.Errorf("Subject after reopen = %s, %v; want %s, nil", s, err, f.subject)
	}
	if sn, err := st.Seen(ctx, f.tenant.ID, f.seen.ID); err != nil || sn.Subject != f.seen.Subject || !sn.Time.Equal(f.seen.Time) {
		t.Errorf("Seen after reopen = %+v, %v; want %+v, nil", sn, err, f.seen)
	}
}

// TestReopen checks that everything applied and waited for is there after
// a clean Close and Open.
func TestReopen(t *testing.T) {
	dir := t.TempDir()
	st, err := openStore(dir)
	if err != nil {
		t.Fatalf("Open(%s) = %v, want nil", dir, err)
	}
	f := writeFixture(t, st)
	if err := st.Close(); err != nil {
		t.Fatalf("Close = %v, want nil", err)
	}
	checkFixture(t, mustOpen(t, dir), f)
}

// TestDurableWithoutClose checks that what wait reported durable survives
// the process dying: it copies the directory of a store that is still
// open, as a crash would leave it, and opens the copy.
func TestDurableWithoutClose(t *testing.T) {
	dir := t.TempDir()
	st := mustOpen(t, dir)
	f := writeFixture(t, st)
	crashed := filepath.Join(t.TempDir(), "crashed")
	if err := os.CopyFS(crashed, os.DirFS(dir)); err != nil {
		t.Fatalf("copy open store directory: %v", err)
	}
	checkFixture(t, mustOpen(t, crashed), f)
}

// benchFixture is a store with one tenant, 50 subjects and a pool of
// incompressible ~600-byte values, like sealed events.
type benchFixture struct {
	st       *pebble.Store
	tenant   custos.TenantID
	subjects []custos.SubjectID
	values   [][]byte
	seq      atomic.Uint64 // makes message hashes unique across goroutines
}

func newBenchFixture(b *testing.B) *benchFixture {
	b.Helper()
	f := &benchFixture{st: mustOpen(b, b.TempDir()), tenant: custos.NewTenantID()}
	if err := f.st.CreateTenant(context.Background(), &custos.Tenant{ID: f.tenant, CreatedAt: time.Now()}); err != nil {
		b.Fatalf("CreateTenant = %v", err)
	}
	for range 50 {
		f.subjects = append(f.subjects, custos.NewSubjectID())
	}
	for range 256 {
		v := make([]byte, 600)
		rand.Read(v)
		f.values = append(f.values, v)
	}
	return f
}

// write returns a Write of 100 events over the 50 subjects, with a Seen
// record for each.
func (f *benchFixture) write() *custos.Write {
	w := &custos.Write{Tenant: f.tenant, Events: make([]custos.StoredEvent, 100), Seen: make([]custos.Seen, 100)}
	base := time.Now()
	for i := range w.Events {
		n := f.seq.Add(1)
		var id custos.MessageHash
		binary.BigEndian.PutUint64(id[:], n)
		s := f.subjects[i%len(f.subjects)]
		tm := base.Add(time.Duration(i) * time.Millisecond)
		w.Events[i] = custos.StoredEvent{Subject: s, Time: tm, ID: id, Value: f.values[n%uint64(len(f.values))]}
		w.Seen[i] = custos.Seen{ID: id, Subject: s, Time: tm}
	}
	return w
}

func (f *benchFixture) apply(b *testing.B, w *custos.Write) {
	wait, err := f.st.Apply(context.Background(), []*custos.Write{w})
	if err != nil {
		b.Fatalf("Apply = %v", err)
	}
	if err := wait(); err != nil {
		b.Fatalf("wait() = %v", err)
	}
}

// BenchmarkApplyEvents100 measures durable writes of 100 events (~600
// bytes each, over 50 subjects) plus 100 dedup records per Apply, one
// writer at a time and with many writers, whose syncs Pebble shares
// (group commit).
func BenchmarkApplyEvents100(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		f := newBenchFixture(b)
		for b.Loop() {
			f.apply(b, f.write())
		}
		b.ReportMetric(float64(100*b.N)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("parallel", func(b *testing.B) {
		f := newBenchFixture(b)
		b.SetParallelism(8) // 8 writers per CPU: ingest is I/O-bound
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				wait, err := f.st.Apply(context.Background(), []*custos.Write{f.write()})
				if err == nil {
					err = wait()
				}
				if err != nil {
					b.Errorf("Apply = %v", err)
					return
				}
			}
		})
		b.ReportMetric(float64(100*b.N)/b.Elapsed().Seconds(), "events/s")
	})
}

// BenchmarkSeenMiss measures the dedup lookup of a message never seen, the
// common case on ingest, in a store holding 200k dedup records: once while
// they are in the memtable and once after a restart has put them in
// sstables, where the bloom filters answer.
func BenchmarkSeenMiss(b *testing.B) {
	const records = 200_000
	for _, restart := range []bool{false, true} {
		name := "memtable"
		if restart {
			name = "sstable"
		}
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			st, err := openStore(dir)
			if err != nil {
				b.Fatalf("Open(%s) = %v", dir, err)
			}
			ten := custos.NewTenantID()
			s := custos.NewSubjectID()
			now := time.Now()
			for n := 0; n < records; n += 1000 {
				w := &custos.Write{Tenant: ten, Seen: make([]custos.Seen, 1000)}
				for i := range w.Seen {
					rand.Read(w.Seen[i].ID[:])
					w.Seen[i].Subject, w.Seen[i].Time = s, now
				}
				wait, err := st.Apply(context.Background(), []*custos.Write{w})
				if err == nil {
					err = wait()
				}
				if err != nil {
					b.Fatalf("Apply = %v", err)
				}
			}
			if restart {
				if err := st.Close(); err != nil {
					b.Fatalf("Close = %v", err)
				}
				st = mustOpen(b, dir)
			} else {
				b.Cleanup(func() { st.Close() })
			}
			misses := make([]custos.MessageHash, 4096)
			for i := range misses {
				rand.Read(misses[i][:])
			}
			ctx := context.Background()
			i := 0
			for b.Loop() {
				if _, err := st.Seen(ctx, ten, misses[i%len(misses)]); !errors.Is(err, custos.ErrNotFound) {
					b.Fatalf("Seen of an absent hash = %v, want custos.ErrNotFound", err)
				}
				i++
			}
		})
	}
}
