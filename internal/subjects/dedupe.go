package subjects

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"math"
	"os"
	"time"
	"unsafe"

	"github.com/custos-dev/custos"
)

// recentFilter is an in-memory Bloom filter over the hashes of recently
// stored messages, so that the duplicate check of a new message — almost
// every message — costs no read of the store. A hit is confirmed in the
// store. Two generations rotate: a message is recognised for at least
// Window after it was stored, as long as fewer than Capacity messages
// arrive in one Window (past that, generations rotate sooner; the store
// still holds every record, and the filter is rebuilt from it at start).
//
// The filter is blocked: a message's k bits all lie in one 512-bit block,
// one cache line, chosen by the message hash. A plain Bloom filter of this
// size (tens of megabytes) spreads them over k cache lines, and the misses
// cost more than anything else in the writer's duplicate check; a block
// costs one, for a false-positive rate of about 1.2 % instead of 1 %.
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

// blockWords is the 64-bit words of one block: 512 bits, a cache line.
const blockWords = 8

func newRecentFilter(capacity int, window time.Duration, now func() time.Time) *recentFilter {
	// Size for a 1% false-positive rate of a plain filter, m = -n ln p /
	// (ln 2)^2, in whole blocks.
	m := uint64(math.Ceil(-float64(capacity) * math.Log(0.01) / (math.Ln2 * math.Ln2)))
	m = (m + 64*blockWords - 1) &^ (64*blockWords - 1)
	return &recentFilter{
		capacity: capacity, window: window, bits: m, k: 7,
		cur: make([]uint64, m/64), old: make([]uint64, m/64),
		curStart: now(), now: now,
	}
}

// block returns the words of gen that hold id's bits, and the k bit
// positions within them (9 bits each, from the second half of the hash;
// the message hash is a keyed hash, so uniformly distributed).
func (f *recentFilter) block(gen []uint64, id custos.MessageHash) (b []uint64, bits uint64) {
	n := f.bits / (64 * blockWords)
	i := binary.LittleEndian.Uint64(id[0:8]) % n * blockWords
	return gen[i : i+blockWords : i+blockWords], binary.LittleEndian.Uint64(id[8:16])
}

func (f *recentFilter) mayContain(id custos.MessageHash) bool {
	return f.test(f.cur, id) || f.test(f.old, id)
}

func (f *recentFilter) test(gen []uint64, id custos.MessageHash) bool {
	b, bits := f.block(gen, id)
	for range f.k {
		p := bits & 511
		if b[p/64]&(1<<(p%64)) == 0 {
			return false
		}
		bits >>= 9
	}
	return true
}

func (f *recentFilter) add(id custos.MessageHash) {
	if f.curN >= f.capacity || f.now().Sub(f.curStart) >= f.window {
		f.rotate()
	}
	b, bits := f.block(f.cur, id)
	for range f.k {
		p := bits & 511
		b[p/64] |= 1 << (p % 64)
		bits >>= 9
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

// filterMagic starts a saved filter file, with the format version (3:
// blocked; a file of an earlier version is not loaded, and the filter is
// rebuilt from the store).
const filterMagic = "custos-dedupe-filter-3\n"

// words views a generation as bytes, in the machine's byte order, so that
// saving and loading 48 MB is one copy rather than a loop over words. The
// header records the byte order; a file from another order is rebuilt.
func words(gen []uint64) []byte {
	if len(gen) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&gen[0])), len(gen)*8)
}

// filterHeader is the fixed part after the magic: bits, curN, curStart,
// capacity, and an endianness marker.
func (f *recentFilter) header() []byte {
	h := make([]byte, 0, 40)
	h = binary.LittleEndian.AppendUint64(h, f.bits)
	h = binary.LittleEndian.AppendUint64(h, uint64(f.curN))
	h = binary.LittleEndian.AppendUint64(h, uint64(f.curStart.UnixNano()))
	h = binary.LittleEndian.AppendUint64(h, uint64(f.capacity))
	return binary.NativeEndian.AppendUint64(h, 0x0102030405060708)
}

// save writes the filter to path atomically (temporary file, sync, rename).
func (f *recentFilter) save(path string) error {
	tmp := path + ".tmp"
	file, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	for _, b := range [][]byte{[]byte(filterMagic), f.header(), words(f.cur), words(f.old)} {
		if _, err := file.Write(b); err != nil {
			file.Close()
			return err
		}
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

// load reads a filter saved by save, if it was made with the same size
// and byte order; false means it must be rebuilt.
func (f *recentFilter) load(path string) (bool, error) {
	file, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer file.Close()
	want := f.header()
	got := make([]byte, len(filterMagic)+len(want))
	if _, err := io.ReadFull(file, got); err != nil || string(got[:len(filterMagic)]) != filterMagic {
		return false, nil
	}
	got = got[len(filterMagic):]
	// bits, capacity and byte order must match; curN and curStart are read.
	if string(got[0:8]) != string(want[0:8]) || string(got[24:40]) != string(want[24:40]) {
		return false, nil
	}
	for _, gen := range [][]uint64{f.cur, f.old} {
		if _, err := io.ReadFull(file, words(gen)); err != nil {
			clear(f.cur) // a torn file must not leave stray bits
			clear(f.old)
			return false, nil
		}
	}
	f.curN = int(binary.LittleEndian.Uint64(got[8:]))
	f.curStart = time.Unix(0, int64(binary.LittleEndian.Uint64(got[16:])))
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
