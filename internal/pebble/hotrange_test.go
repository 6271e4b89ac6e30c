package pebble

import (
	"encoding/binary"
	"flag"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

var (
	hotEvents     = flag.Int("hotrange-events", 4_000_000, "events BenchmarkHotRange writes per layout")
	hotGeneration = flag.Int("hotrange-generation-mib", 256, "MiB of events per generation in BenchmarkHotRange's generation layout")
	hotSeen       = flag.Bool("hotrange-seen", true, "write a deduplication record with each event in BenchmarkHotRange")
)

// BenchmarkHotRange measures what the layout of today's events costs in
// compactions, to judge a candidate layout before building it (see "Not
// done" in docs/benchmarks-storage.md). It writes -hotrange-events events
// of 600 random bytes, all dated today, for 100,000 subjects in arrival
// order, each with a deduplication record at a random key (unless
// -hotrange-seen=false), in writes of 1,000 events, with the store's
// Pebble options:
//
//   - day: the current layout, today's events ordered by subject
//     (0x10 ^day tenant subject time message), so every flush spans
//     today's whole range;
//   - generation: a generation after the day, moved on after each
//     -hotrange-generation-mib of events (0x10 ^day ^generation tenant
//     subject …), so that a flush spans only the current generation.
//
// It reports the events written per second (compactions that fall behind
// stall the writes, as they would ingestion) and the write amplification
// and bytes compacted per byte written, when the writes end and again
// once compactions have settled.
//
//	go test -run '^$' -bench HotRange -benchtime 1x ./internal/pebble/ -args -hotrange-events 4000000
func BenchmarkHotRange(b *testing.B) {
	for _, layout := range []string{"day", "generation"} {
		b.Run(layout, func(b *testing.B) {
			for range b.N {
				hotRange(b, layout == "generation")
			}
		})
	}
}

func hotRange(b *testing.B, generations bool) {
	db, err := pebble.Open(b.TempDir(), dbOptions(Options{}))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	r := rand.New(rand.NewPCG(1, 2))
	values := make([]byte, 1<<20)
	for i := range values {
		values[i] = byte(r.Uint32())
	}
	const valueLen = 600
	var tenant [16]byte
	subjects := make([][16]byte, 100_000)
	for i := range subjects {
		binary.BigEndian.PutUint64(subjects[i][:], r.Uint64())
		binary.BigEndian.PutUint64(subjects[i][8:], r.Uint64())
	}
	genBytes := *hotGeneration << 20
	start := time.Now()
	now := start.UnixMicro()
	var written, gen int
	key := make([]byte, 0, 80)
	for n := 0; n < *hotEvents; {
		batch := db.NewBatch()
		for range 1000 {
			key = append(key[:0], 0x10, 0, 0, 0, 1) // the event prefix and today, as ^day
			if generations {
				key = binary.BigEndian.AppendUint32(key, ^uint32(gen))
			}
			key = append(key, tenant[:]...)
			key = append(key, subjects[r.IntN(len(subjects))][:]...)
			key = binary.BigEndian.AppendUint64(key, uint64(now+int64(n)))
			key = binary.BigEndian.AppendUint64(key, r.Uint64())
			key = binary.BigEndian.AppendUint64(key, r.Uint64())
			off := r.IntN(len(values) - valueLen)
			if err := batch.Set(key, values[off:off+valueLen], nil); err != nil {
				b.Fatal(err)
			}
			n++
			if written += valueLen; written >= genBytes {
				written, gen = 0, gen+1
			}
			if !*hotSeen {
				continue
			}
			// The deduplication record: a message hash, the subject and time.
			key = append(key[:0], 0x02)
			key = append(key, tenant[:]...)
			key = append(key, 'm')
			key = binary.BigEndian.AppendUint64(key, r.Uint64())
			key = binary.BigEndian.AppendUint64(key, r.Uint64())
			if err := batch.Set(key, values[off:off+24], nil); err != nil {
				b.Fatal(err)
			}
		}
		if err := batch.Commit(pebble.NoSync); err != nil {
			b.Fatal(err)
		}
		batch.Close()
	}
	writing := time.Since(start)
	report := func(when string) {
		tot := db.Metrics().Total()
		in := float64(tot.TableBytesIn)
		b.Logf("%s: %s: write amplification %.2f, compacted %.2f bytes per byte written",
			when, time.Since(start).Round(time.Second), tot.WriteAmp(), float64(tot.TableBytesCompacted)/in)
	}
	report("writes done")
	b.ReportMetric(float64(*hotEvents)/writing.Seconds(), "events/s")
	// Settled: no compaction running for five seconds in a row (the
	// estimated debt need not reach zero), or three minutes.
	for idle, deadline := 0, time.Now().Add(3*time.Minute); idle < 5 && time.Now().Before(deadline); time.Sleep(time.Second) {
		if db.Metrics().Compact.NumInProgress == 0 {
			idle++
		} else {
			idle = 0
		}
	}
	report("settled")
	tot := db.Metrics().Total()
	b.ReportMetric(tot.WriteAmp(), "write-amp")
	b.ReportMetric(float64(tot.TableBytesCompacted)/float64(tot.TableBytesIn), "compacted/written")
}
