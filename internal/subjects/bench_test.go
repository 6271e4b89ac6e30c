package subjects_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/keyring"
	"github.com/custos-dev/custos/internal/pebble"
	"github.com/custos-dev/custos/internal/segment"
	"github.com/custos-dev/custos/internal/subjects"
)

// trackTemplate is a ~535-byte track event like the Segment Go client sends.
const trackTemplate = `{"type":"track","messageId":"bench-%d-%d","userId":"user-%d","anonymousId":"anon-%d","event":"Product Viewed","properties":{"product_id":"sku-48213","name":"Merino Wool Sweater","category":"Apparel","price":89.95,"currency":"EUR","url":"https://shop.example.com/p/sku-48213"},"context":{"ip":"203.0.113.42","userAgent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15","locale":"de-DE","page":{"path":"/p/sku-48213"}},"timestamp":"2026-11-28T13:00:00.123Z"}`

// BenchmarkPipeline measures the ingest path from a decoded-on-the-spot
// 100-event batch to a durable, acknowledged write, with and without
// encryption, so the ratio shows what encryption costs. The machine drifts
// (the first store of a run pays for the page cache), so run the two modes
// alternately and compare medians:
//
//	go test -c -o /tmp/subjects.test ./internal/subjects/
//	for i in 1 2 3; do for m in plaintext sealed; do
//	  /tmp/subjects.test -test.run '^$' -test.bench "Pipeline/$m" -test.benchtime 4000x; done; done
func BenchmarkPipeline(b *testing.B) {
	for _, mode := range []struct {
		name      string
		plaintext bool
	}{{"sealed", false}, {"plaintext", true}} {
		b.Run(mode.name, func(b *testing.B) {
			ctx := context.Background()
			dir := b.TempDir()
			keys, err := pebble.OpenKeyStore(filepath.Join(dir, "keys"))
			if err != nil {
				b.Fatal(err)
			}
			defer keys.Close()
			master := make([]byte, 32)
			rand.Read(master)
			ring, err := keyring.New(ctx, keys, master, keyring.Options{InsecurePlaintext: mode.plaintext})
			if err != nil {
				b.Fatal(err)
			}
			store, err := pebble.Open(filepath.Join(dir, "store"), pebble.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			pipe, err := subjects.New(ctx, store, ring, subjects.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer pipe.Close()
			tenant := custos.NewTenantID()
			if err := ring.CreateTenant(ctx, tenant); err != nil {
				b.Fatal(err)
			}
			const batch, users = 100, 10000
			var seq atomic.Int64
			b.SetParallelism(8) // 16 senders on 2 cores
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				buf := make([]byte, 0, 64<<10)
				for pb.Next() {
					n := seq.Add(1)
					buf = append(buf[:0], `{"batch":[`...)
					for i := range batch {
						if i > 0 {
							buf = append(buf, ',')
						}
						u := (int(n)*batch + i) % users
						buf = fmt.Appendf(buf, trackTemplate, n, i, u, u)
					}
					buf = append(buf, `],"sentAt":"2026-11-28T13:00:01Z"}`...)
					dec, err := segment.Decode(buf, segment.Kind{Batch: true}, time.Now(), segment.DefaultLimits)
					if err != nil {
						b.Error(err)
						return
					}
					res, err := pipe.Ingest(ctx, tenant, dec.Messages)
					if err != nil || res.Stored != batch {
						b.Errorf("ingest: %+v, %v", res, err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*batch)/time.Since(start).Seconds(), "events/s")
		})
	}
}
