package subjects

import (
	"runtime"
	"testing"

	"github.com/custos-dev/custos"
)

// BenchmarkGate measures the suppression check made for every ingested
// message, with one million suppressed subjects, and reports the memory the
// gate holds for them.
//
//	go test -run '^$' -bench Gate ./internal/subjects/
func BenchmarkGate(b *testing.B) {
	const n = 1_000_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	w := &writer{flags: make(map[subjectRef]custos.SubjectFlags)}
	t := custos.NewTenantID()
	subjects := make([]custos.SubjectID, 0, 1024)
	for i := range n {
		s := custos.NewSubjectID()
		w.flags[subjectRef{t, s}] = custos.SubjectFlags{Suppressed: true}
		if i < cap(subjects) {
			subjects = append(subjects, s)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	heapMB := float64(after.HeapAlloc-before.HeapAlloc) / (1 << 20)
	misses := make([]custos.SubjectID, len(subjects))
	for i := range misses {
		misses[i] = custos.NewSubjectID()
	}
	b.ResetTimer()
	i := 0
	for b.Loop() {
		// Half hits, half misses, as on a mixed stream.
		s := subjects[i%len(subjects)]
		if i%2 == 1 {
			s = misses[i%len(misses)]
		}
		if got := w.gate(t, s); (got != "") != (i%2 == 0) {
			b.Fatalf("gate(%d) = %q", i, got)
		}
		i++
	}
	b.ReportMetric(heapMB, "MB/1M-suppressed")
}
