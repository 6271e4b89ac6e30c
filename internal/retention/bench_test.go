package retention

import (
	"crypto/rand"
	"flag"
	"math/big"
	"testing"
	"time"

	"github.com/custos-dev/custos"
)

var walkSubjects = flag.Int("walk-subjects", 100_000, "subjects stored before BenchmarkFullWalk measures")

// spanOnly hides a store's day index: the sweep reads every subject's
// event span, as on a store without one.
type spanOnly struct{ Store }

// BenchmarkFullWalk measures the daily full walk of a sweep over
// -walk-subjects subjects, each with 10 events on random days of the
// last 30 (so within the period, and none to remove), on the embedded
// store: judged from the day index, then from every subject's event
// span. It reports subjects walked per second.
//
//	go test -run '^$' -bench FullWalk -benchtime 3x ./internal/retention/ -args -walk-subjects 300000
func BenchmarkFullWalk(b *testing.B) {
	e := newEnv(b)
	ctx := b.Context()
	n := *walkSubjects
	value := make([]byte, 600)
	for i := 0; i < n; {
		w := &custos.Write{Tenant: e.tenant.ID}
		for ; i < n && len(w.Events) < 10_000; i++ {
			s := custos.NewSubjectID()
			w.Profiles = append(w.Profiles, custos.StoredProfile{Subject: s, Value: value[:200]})
			for range 10 {
				age, _ := rand.Int(rand.Reader, big.NewInt(int64(30*24*time.Hour)))
				var id custos.MessageHash
				rand.Read(id[:])
				w.Events = append(w.Events, custos.StoredEvent{Subject: s, Time: e.now.Add(-time.Duration(age.Int64())), ID: id, Value: value})
			}
		}
		wait, err := e.store.Apply(ctx, []*custos.Write{w})
		if err == nil {
			err = wait()
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	now := e.now // one clock for both, so that every sweep walks in full
	for _, tc := range []struct {
		name  string
		store Store
	}{{"day-index", e.store}, {"event-span", spanOnly{e.store}}} {
		b.Run(tc.name, func(b *testing.B) {
			sw := e.sweeper(256)
			sw.o.Store = tc.store
			sw.o.FullWalkEvery = time.Nanosecond
			sw.o.Now = func() time.Time { now = now.Add(time.Second); return now }
			for b.Loop() {
				res, err := sw.Sweep(ctx, e.tenant)
				if err != nil {
					b.Fatal(err)
				}
				if !res.FullWalk || res.Visited != n || res.Profiles != 0 {
					b.Fatalf("sweep = %+v, want a full walk of %d subjects removing none", res, n)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "subjects/s")
		})
	}
}
