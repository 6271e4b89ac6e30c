package incident_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/custos-dev/custos"
)

// BenchmarkOpenCount opens an incident over one tenant of 10,000 subjects
// with 10 events each, without and with an event window: the cost is the
// scope count, which reads keys and timestamps and decrypts nothing.
func BenchmarkOpenCount(b *testing.B) {
	e := newEnv(b, nil, nil)
	ten, _ := e.tenant(b, "bench", "")
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const subjects, perSubject = 10000, 10
	var msgs []custos.Message
	for s := range subjects {
		for i := range perSubject {
			msgs = append(msgs, custos.Message{Type: custos.Track, MessageID: fmt.Sprintf("b%d-%d", s, i), UserID: fmt.Sprintf("user-%d", s),
				Event: "Viewed", Timestamp: base.Add(time.Duration(i*24+s%24) * time.Hour), ReceivedAt: base})
		}
		if len(msgs) >= 2000 {
			if _, err := e.pipe.Ingest(context.Background(), ten.ID, msgs); err != nil {
				b.Fatal(err)
			}
			msgs = msgs[:0]
		}
	}
	for _, windowed := range []bool{false, true} {
		b.Run(fmt.Sprintf("windowed=%t", windowed), func(b *testing.B) {
			in := openInput(time.Now(), ten.ID)
			if windowed {
				in.Scope.EventsFrom, in.Scope.EventsTo = base.Add(48*time.Hour), base.Add(72*time.Hour)
			}
			for b.Loop() {
				if _, err := e.inc.Open(context.Background(), in); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(subjects*perSubject)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
