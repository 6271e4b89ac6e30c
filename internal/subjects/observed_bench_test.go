package subjects

import "testing"

// BenchmarkContextCategories reads a context as the load generator's web
// messages carry it.
func BenchmarkContextCategories(b *testing.B) {
	ctx := []byte(`{"library":{"name":"analytics.js","version":"5.2.0"},"page":{"path":"/products/trail-shoe"},"ip":"203.0.113.0","locale":"de-DE","userAgent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"}`)
	b.ReportAllocs()
	for b.Loop() {
		if ob := contextCategories(ctx); ob.bits != catIP|catUserAgent {
			b.Fatalf("contextCategories = %b", ob.bits)
		}
	}
}
