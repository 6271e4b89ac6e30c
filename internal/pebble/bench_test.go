package pebble_test

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/pebble"
)

var benchStored = flag.Int("bench-stored", 200_000, "events stored before BenchmarkApplyOneEvent measures")

// BenchmarkApplyOneEvent guards the store's share of the one-event-per-
// request path: 16 senders each apply a write of one sealed event and its
// deduplication record, as the ingest writer does for a lone message, and
// wait until it is durable; concurrent writes share WAL syncs. The store
// first holds -bench-stored events of 10,000 subjects spread over 30 days,
// so that the cost of a store that is not empty shows. It reports events/s
// and the p99 wait for durability.
//
//	go test -run '^$' -bench ApplyOneEvent -benchtime 20000x ./internal/pebble/ -args -bench-stored 1000000
func BenchmarkApplyOneEvent(b *testing.B) {
	ctx := context.Background()
	st, err := pebble.Open(b.TempDir(), pebble.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	tn := custos.NewTenantID()
	subjects := make([]custos.SubjectID, 10_000)
	for i := range subjects {
		subjects[i] = custos.NewSubjectID()
	}
	value := make([]byte, 600)
	rand.Read(value)
	now := time.Now()
	event := func(i int, at time.Time) (custos.StoredEvent, custos.Seen) {
		var id custos.MessageHash
		rand.Read(id[:])
		s := subjects[i%len(subjects)]
		return custos.StoredEvent{Subject: s, Time: at, ID: id, Value: value}, custos.Seen{ID: id, Subject: s, Time: at}
	}
	for done := 0; done < *benchStored; done += 5000 {
		w := &custos.Write{Tenant: tn}
		for i := range min(5000, *benchStored-done) {
			e, sn := event(done+i, now.Add(-time.Duration(i%30)*24*time.Hour))
			w.Events, w.Seen = append(w.Events, e), append(w.Seen, sn)
		}
		wait, err := st.Apply(ctx, []*custos.Write{w})
		if err != nil {
			b.Fatal(err)
		}
		if err := wait(); err != nil {
			b.Fatal(err)
		}
	}
	if err := st.CompactAll(ctx); err != nil {
		b.Fatal(err)
	}
	const senders = 16
	var (
		mu    sync.Mutex
		waits []time.Duration
		next  int
	)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			var mine []time.Duration
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= b.N {
					break
				}
				e, sn := event(i, time.Now())
				t0 := time.Now()
				wait, err := st.Apply(ctx, []*custos.Write{{Tenant: tn, Events: []custos.StoredEvent{e}, Seen: []custos.Seen{sn}}})
				if err == nil {
					err = wait()
				}
				if err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			waits = append(waits, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	el := time.Since(start)
	slices.Sort(waits)
	if len(waits) > 0 {
		b.ReportMetric(float64(len(waits))/el.Seconds(), "events/s")
		b.ReportMetric(float64(waits[len(waits)*99/100].Microseconds())/1000, "p99-ms")
	}
}

// BenchmarkCreateSessionBelow guards the count of a sign-in limit on the
// embedded store: one client address takes and forgets an attempt while
// 50,000 other addresses hold attempts under the same tenant (as every
// address does under custos.OperatorChain). The count reads that
// holder's attempts only, not the 50,000.
//
//	go test -run '^$' -bench CreateSessionBelow ./internal/pebble/
func BenchmarkCreateSessionBelow(b *testing.B) {
	ctx := context.Background()
	st, err := pebble.Open(b.TempDir(), pebble.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	attempt := func(holder string) *custos.Session {
		s := &custos.Session{Tenant: custos.OperatorChain, Kind: custos.SessionAttempt, Holder: holder, Created: now, Expires: now.Add(15 * time.Minute)}
		rand.Read(s.Hash[:])
		return s
	}
	for i := range 50_000 {
		if err := st.CreateSession(ctx, attempt(fmt.Sprintf("signin-address:%d", i))); err != nil {
			b.Fatalf("attempt %d: %v", i, err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		s := attempt("signin-address:mine")
		if ok, err := st.CreateSessionBelow(ctx, s, 10, now); !ok || err != nil {
			b.Fatalf("CreateSessionBelow = %v, %v", ok, err)
		}
		if err := st.DeleteSession(ctx, s.Tenant, s.Kind, s.Hash); err != nil {
			b.Fatal(err)
		}
	}
}
