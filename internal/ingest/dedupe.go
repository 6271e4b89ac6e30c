package ingest

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io/fs"
	"math"
	"os"
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

// filterMagic starts a saved filter file, with the format version.
const filterMagic = "custos-dedupe-filter-1\n"

// save writes the filter to path atomically (temporary file, sync, rename).
func (f *recentFilter) save(path string) error {
	tmp := path + ".tmp"
	file, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(file, 1<<20)
	w.WriteString(filterMagic)
	var hdr [32]byte
	binary.LittleEndian.PutUint64(hdr[0:], f.bits)
	binary.LittleEndian.PutUint64(hdr[8:], uint64(f.curN))
	binary.LittleEndian.PutUint64(hdr[16:], uint64(f.curStart.UnixNano()))
	binary.LittleEndian.PutUint64(hdr[24:], uint64(f.capacity))
	w.Write(hdr[:])
	var word [8]byte
	for _, gen := range [][]uint64{f.cur, f.old} {
		for _, v := range gen {
			binary.LittleEndian.PutUint64(word[:], v)
			w.Write(word[:])
		}
	}
	if err := w.Flush(); err != nil {
		file.Close()
		return err
	}
	if err := file.Sync(); err != nil {
		file.Close()
		return err
	}
	if err := file.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// load reads a filter saved by save, if it was made with the same size.
func (f *recentFilter) load(path string) (bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	want := len(filterMagic) + 32 + 2*len(f.cur)*8
	if len(b) != want || string(b[:len(filterMagic)]) != filterMagic {
		return false, nil // another size or version: rebuild instead
	}
	b = b[len(filterMagic):]
	if binary.LittleEndian.Uint64(b[0:]) != f.bits || binary.LittleEndian.Uint64(b[24:]) != uint64(f.capacity) {
		return false, nil
	}
	f.curN = int(binary.LittleEndian.Uint64(b[8:]))
	f.curStart = time.Unix(0, int64(binary.LittleEndian.Uint64(b[16:])))
	b = b[32:]
	for _, gen := range [][]uint64{f.cur, f.old} {
		for i := range gen {
			gen[i] = binary.LittleEndian.Uint64(b[:8])
			b = b[8:]
		}
	}
	return true, nil
}

// rebuildFilter fills the filter from the store's deduplication records
// received within the window.
func (w *writer) rebuildFilter(ctx context.Context) error {
	opts := w.p.opts
	since := opts.Now().Add(-opts.DedupeWindow)
	n := 0
	err := w.p.store.EachSeen(ctx, func(_ custos.TenantID, s custos.Seen) error {
		if !s.Time.Before(since) {
			w.recent.add(s.ID)
		}
		if n++; n%1_000_000 == 0 && opts.OnRebuild != nil {
			opts.OnRebuild(n, false)
		}
		return nil
	})
	if opts.OnRebuild != nil {
		opts.OnRebuild(n, true)
	}
	return err
}
