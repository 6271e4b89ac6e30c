package segment

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"testing"
	"time"
)

// trackEvent is a track call as analytics-go sends it, with a context
// of its own: 535 bytes.
const trackEvent = `{"type":"track","messageId":"8c4b5b3e-6f1d-4a8e-9c57-%08d","userId":"user-%06d","event":"Order Completed","timestamp":"2024-05-01T12:34:56.789012345Z","context":{"ip":"203.0.113.42","library":{"name":"analytics-go","version":"3.3.0"}},"properties":{"order_id":"50314b8e9bcf000000000000","total":27.5,"revenue":25,"shipping":3,"tax":12,"discount":2.5,"coupon":"hasbros","currency":"USD","products":[{"product_id":"507f1f77bcf86cd799439011","sku":"45790-32","name":"Monopoly","price":19,"quantity":1}]},"integrations":{"All":true}}`

// batchBody returns an analytics-go batch of n track events.
func batchBody(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"messageId":"2f6ea5c4-9f3c-4d6f-8a38-000000000000","sentAt":"2024-05-01T12:34:57.123456789Z","batch":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, trackEvent, i, i)
	}
	b.WriteString(`],"context":{"library":{"name":"analytics-go","version":"3.3.0"}}}`)
	return b.Bytes()
}

func BenchmarkDecodeBatch100(b *testing.B) {
	body := batchBody(100)
	received := time.Date(2024, 5, 1, 12, 34, 58, 0, time.UTC)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		batch, err := Decode(body, Kind{Batch: true}, received, DefaultLimits)
		if err != nil || len(batch.Messages) != 100 {
			b.Fatalf("Decode: %v, %d messages", err, len(batch.Messages))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/event")
}

func BenchmarkReadBodyGzip(b *testing.B) {
	body := batchBody(100)
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write(body)
	zw.Close()
	compressed := zb.Bytes()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		got, err := ReadBody(bytes.NewReader(compressed), "gzip", DefaultLimits)
		if err != nil || len(got) != len(body) {
			b.Fatalf("ReadBody: %v, %d bytes", err, len(got))
		}
	}
}
