package ingest

import (
	"encoding/binary"
	"math"
	"time"

	"github.com/custos-dev/custos"
)

// recentFilter is an in-memory Bloom filter over the hashes of recently
// stored messages, so that the duplicate check of a new message — almost
// every message — costs no read of the store. A hit is confirmed in the
// store. Two generations rotate: a message is recognised for at least
// Window after it was stored, as long as fewer than Capacity messages
// arrive in one Window (past that, generations rotate sooner; the store
// still holds every record, and the filter is rebuilt from it at start).
type recentFilter struct {
	capacity int
	window   time.Duration
	bits     uint64 // per generation
	k        int
	cur, old []uint64
	curN     int
	curStart time.Time
	now      func() time.Time
}

func newRecentFilter(capacity int, window time.Duration, now func() time.Time) *recentFilter {
	// Optimal size for a 1% false-positive rate: m = -n ln p / (ln 2)^2.
	m := uint64(math.Ceil(-float64(capacity) * math.Log(0.01) / (math.Ln2 * math.Ln2)))
	m = (m + 63) &^ 63
	return &recentFilter{
		capacity: capacity, window: window, bits: m, k: 7,
		cur: make([]uint64, m/64), old: make([]uint64, m/64),
		curStart: now(), now: now,
	}
}

// positions derives the bit positions from the message hash, which is
// already a keyed hash and so uniformly distributed.
func (f *recentFilter) position(id custos.MessageHash, i int) (word uint64, mask uint64) {
	h1 := binary.LittleEndian.Uint64(id[0:8])
	h2 := binary.LittleEndian.Uint64(id[8:16]) | 1
	p := (h1 + uint64(i)*h2) % f.bits
	return p / 64, 1 << (p % 64)
}

func (f *recentFilter) mayContain(id custos.MessageHash) bool {
	return f.test(f.cur, id) || f.test(f.old, id)
}

func (f *recentFilter) test(gen []uint64, id custos.MessageHash) bool {
	for i := range f.k {
		w, m := f.position(id, i)
		if gen[w]&m == 0 {
			return false
		}
	}
	return true
}

func (f *recentFilter) add(id custos.MessageHash) {
	if f.curN >= f.capacity || f.now().Sub(f.curStart) >= f.window {
		f.rotate()
	}
	for i := range f.k {
		w, m := f.position(id, i)
		f.cur[w] |= m
	}
	f.curN++
}

func (f *recentFilter) rotate() {
	f.old, f.cur = f.cur, f.old
	clear(f.cur)
	f.curN = 0
	f.curStart = f.now()
}

// Bytes is the memory the filter holds.
func (f *recentFilter) Bytes() int { return 2 * len(f.cur) * 8 }
