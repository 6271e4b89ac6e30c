package consent

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/custos-dev/custos"
)

// BenchmarkDecide is the decision alone, on a subject with a realistic
// ledger: grants and withdrawals over three purposes and a few channels.
func BenchmarkDecide(b *testing.B) {
	st := NewState([]custos.ConsentRecord{
		rec("analytics", "", true, 0, 1),
		rec("marketing", "", true, 1, 2),
		rec("marketing", "sms", false, 2, 3),
		rec("marketing", "email", true, 3, 4),
		rec("personalization", "in_app", true, 4, 5),
	})
	var f custos.SubjectFlags
	b.ReportAllocs()
	for b.Loop() {
		if Decide(st, f, false, "marketing", "email") != OK {
			b.Fatal("not OK")
		}
	}
}

// BenchmarkGate is what a campaign send does per recipient: find the
// subject's State, flags and erasure among 1M subjects held in memory,
// then Decide. Recipients come in random order, as an audience walks
// them, so nearly every lookup misses the CPU caches.
func BenchmarkGate(b *testing.B) {
	const n = 1_000_000
	type subject struct {
		st     State
		flags  custos.SubjectFlags
		erased bool
	}
	subjects := make(map[custos.SubjectID]subject, n)
	ids := make([]custos.SubjectID, n)
	rng := rand.New(rand.NewPCG(1, 2))
	channels := []string{"email", "push", "sms", ""}
	for i := range ids {
		id := custos.NewSubjectID()
		ids[i] = id
		var s subject
		// 70% have some marketing record, a few are flagged or erased.
		if rng.IntN(10) < 7 {
			s.st = NewState([]custos.ConsentRecord{
				rec("analytics", "", true, 0, 1),
				rec("marketing", channels[rng.IntN(len(channels))], rng.IntN(4) > 0, 1, 2),
			})
		}
		switch rng.IntN(100) {
		case 0:
			s.flags.Suppressed = true
		case 1:
			s.flags.ObjectedAt = time.Unix(1, 0)
		case 2:
			s.erased = true
		}
		subjects[id] = s
	}
	order := rng.Perm(n)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	var sent int
	for b.Loop() {
		s := subjects[ids[order[i]]]
		if Decide(s.st, s.flags, s.erased, "marketing", "email") == OK {
			sent++
		}
		if i++; i == n {
			i = 0
		}
	}
	if sent == 0 {
		b.Fatal("no recipient eligible")
	}
}
