package subjects

import (
	"crypto/rand"
	"encoding/binary"
	"path/filepath"
	"testing"
	"time"

	"github.com/custos-dev/custos"
)

func randomHashes(n int) []custos.MessageHash {
	out := make([]custos.MessageHash, n)
	for i := range out {
		rand.Read(out[i][:])
	}
	return out
}

// TestRecentFilter: every hash added is recognised (no false negatives),
// through one rotation and through a save and load; hashes never added
// are taken for recent ones at about the designed rate (1 %, a little
// more for a blocked filter), not more than 2 %.
func TestRecentFilter(t *testing.T) {
	const n = 200_000
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	f := newRecentFilter(n, time.Hour, now)
	added := randomHashes(n)
	for _, h := range added {
		f.add(h)
	}
	for i, h := range added {
		if !f.mayContain(h) {
			t.Fatalf("hash %d added but not recognised", i)
		}
	}
	false_ := 0
	for _, h := range randomHashes(n) {
		if f.mayContain(h) {
			false_++
		}
	}
	if rate := float64(false_) / n; rate > 0.02 {
		t.Errorf("false-positive rate %.4f with the filter at capacity, want at most 0.02", rate)
	} else {
		t.Logf("false-positive rate at capacity: %.4f", rate)
	}
	path := filepath.Join(t.TempDir(), "filter")
	if err := f.save(path); err != nil {
		t.Fatal(err)
	}
	g := newRecentFilter(n, time.Hour, now)
	if ok, err := g.load(path); err != nil || !ok {
		t.Fatalf("load: %v, %v", ok, err)
	}
	// One window later the next add rotates: the first generation is
	// still consulted.
	clock = clock.Add(time.Hour)
	later := randomHashes(1)[0]
	g.add(later)
	for i, h := range append(added, later) {
		if !g.mayContain(h) {
			t.Fatalf("hash %d not recognised after load and one rotation", i)
		}
	}
	// A second rotation forgets the first generation.
	clock = clock.Add(time.Hour)
	g.add(randomHashes(1)[0])
	still := 0
	for _, h := range added {
		if g.mayContain(h) {
			still++
		}
	}
	if still > n/50 {
		t.Errorf("%d of %d hashes still recognised two windows later", still, n)
	}
}

// BenchmarkRecentFilter: the duplicate check and note of one new message
// against a filter of the default size (20 M messages, two generations
// of 24 MB), as the writer does it for every message.
func BenchmarkRecentFilter(b *testing.B) {
	f := newRecentFilter(20_000_000, 24*time.Hour, time.Now)
	var h custos.MessageHash
	var x uint64
	for range b.N {
		// A new, uniformly spread hash each time (splitmix64).
		for i := 0; i < len(h); i += 8 {
			x += 0x9e3779b97f4a7c15
			z := x
			z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
			z = (z ^ (z >> 27)) * 0x94d049bb133111eb
			binary.LittleEndian.PutUint64(h[i:], z^(z>>31))
		}
		if !f.mayContain(h) {
			f.add(h)
		}
	}
}
