package loadgen

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

var testNow = time.Date(2026, 3, 14, 15, 9, 26, 535_000_000, time.UTC)

// batchMessages decodes a batch body and returns its messages as sent.
func batchMessages(t *testing.T, body []byte) []json.RawMessage {
	t.Helper()
	var b struct{ Batch []json.RawMessage }
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatalf("batch does not decode: %v\n%s", err, body)
	}
	return b.Batch
}

func TestTrackMessageSize(t *testing.T) {
	const want, tolerance = 535, 40
	for _, users := range []int{10, 1000, 1_000_000} {
		for _, seed := range []int64{1, 2, 3} {
			t.Run(fmt.Sprintf("users %d seed %d", users, seed), func(t *testing.T) {
				g := newGenerator(seed, users, false)
				var sum, n int
				for b := range uint64(20) {
					body, _ := g.build(nil, b, b*100, 100, testNow)
					for _, m := range batchMessages(t, body) {
						if bytes.HasPrefix(m, []byte(`{"type":"track",`)) {
							sum += len(m)
							n++
						}
					}
				}
				mean := float64(sum) / float64(n)
				t.Logf("mean track message: %.1f bytes over %d", mean, n)
				if mean < want-tolerance || mean > want+tolerance {
					t.Errorf("mean track message %.1f bytes, want %d±%d", mean, want, tolerance)
				}
			})
		}
	}
}

func TestMessagesAreValidJSON(t *testing.T) {
	for _, single := range []bool{false, true} {
		g := newGenerator(9, 1000, single)
		for _, list := range [][]template{g.track, g.identify} {
			for i := range list {
				m := g.appendMessage(nil, &list[i], 12345, appendTimestamp(nil, testNow))
				if !json.Valid(m) {
					t.Errorf("single %v: template %d renders invalid JSON: %s", single, i, m)
				}
			}
		}
	}
}

func TestGeneratorIsReproducible(t *testing.T) {
	a, _ := newGenerator(5, 100, false).build(nil, 3, 300, 100, testNow)
	b, _ := newGenerator(5, 100, false).build(nil, 3, 300, 100, testNow)
	if !bytes.Equal(a, b) {
		t.Error("two generators with seed 5 built different batches")
	}
	c, _ := newGenerator(6, 100, false).build(nil, 3, 300, 100, testNow)
	if bytes.Equal(a, c) {
		t.Error("seeds 5 and 6 built the same batch")
	}
}

func TestMessageIDsAreUnique(t *testing.T) {
	g := newGenerator(1, 1000, false)
	seen := make(map[[uuidLen]byte]bool, 100_000)
	var buf []byte
	for n := range uint64(100_000) {
		buf = appendUUID(buf[:0], mix(n+g.k.message), mix(n+g.k.message2))
		id := [uuidLen]byte(buf)
		if n < 1000 && !uuidShape.Match(buf) {
			t.Fatalf("message %d: id %s is not UUID-shaped", n, buf)
		}
		if seen[id] {
			t.Fatalf("message %d: id %s seen before", n, buf)
		}
		seen[id] = true
	}
}

func TestIdentifyShare(t *testing.T) {
	g := newGenerator(1, 1000, false)
	const n = 100_000
	identifies := 0
	for i := range uint64(n) {
		if g.pick(i).path == "/v1/identify" {
			identifies++
		}
	}
	if lo, hi := n/identifyEvery*9/10, n/identifyEvery*11/10; identifies < lo || identifies > hi {
		t.Errorf("%d identify among %d messages, want %d to %d", identifies, n, lo, hi)
	}
}

func TestSingleMessagesCarryLibraryAndSentAt(t *testing.T) {
	g := newGenerator(1, 1000, true)
	for n := range uint64(100) {
		body, path := g.build(nil, n, n, 1, testNow)
		var m struct {
			Type    string
			SentAt  string `json:"sentAt"`
			Context struct {
				Library struct{ Name, Version string }
			}
		}
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("message %d: %v\n%s", n, err, body)
		}
		if path != "/v1/"+m.Type || m.SentAt != "2026-03-14T15:09:26.535Z" || m.Context.Library.Name != libraryName {
			t.Errorf("message %d to %s: type %s, sentAt %q, library %+v", n, path, m.Type, m.SentAt, m.Context.Library)
		}
	}
}

func TestUserCacheRendersAsWithout(t *testing.T) {
	cached := newGenerator(4, 500, false)
	if cached.userOff == nil {
		t.Fatal("500 users are not cached")
	}
	uncached := newGenerator(4, 500, false)
	uncached.userData, uncached.userOff = nil, nil
	a, _ := cached.build(nil, 0, 0, 1000, testNow)
	b, _ := uncached.build(nil, 0, 0, 1000, testNow)
	if !bytes.Equal(a, b) {
		t.Error("the user cache changes what is rendered")
	}
}

func TestCompileRejectsUnknownPlaceholder(t *testing.T) {
	for _, js := range []string{`{"a":"{{nope}}"}`, `{"a":"{{userId"}`} {
		if _, err := compile("/v1/track", []byte(js)); err == nil {
			t.Errorf("compile(%s) succeeded, want an error", js)
		}
	}
}

// BenchmarkBuildBatch100 measures what the generator costs per request of
// 100 events: it must stay far below what the server spends on them.
func BenchmarkBuildBatch100(b *testing.B) {
	g := newGenerator(1, 10_000, false)
	buf, _ := g.build(nil, 0, 0, 100, testNow)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	var i uint64
	for b.Loop() {
		buf, _ = g.build(buf[:0], i, i*100, 100, time.Now())
		i++
	}
}

// BenchmarkBuildBatch100Gzip adds the compression a --gzip run does.
func BenchmarkBuildBatch100Gzip(b *testing.B) {
	g := newGenerator(1, 10_000, false)
	buf, _ := g.build(nil, 0, 0, 100, testNow)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	var zbuf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	var i uint64
	for b.Loop() {
		buf, _ = g.build(buf[:0], i, i*100, 100, time.Now())
		zbuf.Reset()
		zw.Reset(&zbuf)
		zw.Write(buf)
		zw.Close()
		i++
	}
	b.ReportMetric(float64(zbuf.Len()), "gzip-bytes/op")
}
