package audit_test

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	rawpebble "github.com/cockroachdb/pebble/v2"
	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
	"github.com/custos-dev/custos/internal/pebble"
)

// clock is a test clock that moves a little on every reading. It reports
// local times off UTC, so tests see that entries are stamped in UTC.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2025, 5, 4, 3, 2, 1, 123456789, time.FixedZone("CEST", 2*60*60))}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond + 7)
	return c.t
}

// openStore opens a small Pebble store in dir. closeStore closes it; it
// runs when the test ends if the test did not call it first.
func openStore(tb testing.TB, dir string) (st *pebble.Store, closeStore func()) {
	tb.Helper()
	st, err := pebble.Open(dir, pebble.Options{CacheSize: 4 << 20, MemTableSize: 4 << 20})
	if err != nil {
		tb.Fatalf("Open(%s) = %v, want nil", dir, err)
	}
	var once sync.Once
	closeStore = func() {
		once.Do(func() {
			if err := st.Close(); err != nil {
				tb.Errorf("Close(%s) = %v, want nil", dir, err)
			}
		})
	}
	tb.Cleanup(closeStore)
	return st, closeStore
}

// entry is the i-th made-up audit entry of a test.
func entry(i int) audit.Entry {
	return audit.Entry{
		Actor:     fmt.Sprintf("key:%04x", i%7),
		Action:    []string{"subject.access", "subject.erase", "subject.rectify", "consent.withdraw"}[i%4],
		Subject:   fmt.Sprintf("%064x", i*7919),
		RequestID: fmt.Sprintf("req-%d", i),
		Details:   map[string]any{"n": i, "traits": []string{"email", "plan"}},
	}
}

// record appends n made-up entries to chain t and returns them as stored.
func record(t *testing.T, l *audit.Log, tn custos.TenantID, n int) []custos.AuditEntry {
	t.Helper()
	var out []custos.AuditEntry
	for i := range n {
		e, err := l.Record(t.Context(), tn, entry(i))
		if err != nil {
			t.Fatalf("Record(%s, entry %d) = %v, want nil", tn, i, err)
		}
		out = append(out, e)
	}
	return out
}

// wantClean verifies chain t of st and fails unless it is intact with
// exactly n entries and the given head.
func wantClean(t *testing.T, st custos.AuditStore, tn custos.TenantID, n uint64, head string) {
	t.Helper()
	checked, gotHead, brk, err := audit.VerifyStore(t.Context(), st, tn)
	if err != nil || brk != nil || checked != n || gotHead != head {
		t.Fatalf("VerifyStore(%s) = %d, %s, %+v, %v; want %d, %s, no break, nil", tn, checked, gotHead, brk, err, n, head)
	}
}

// rawKey is the key of an audit entry as internal/pebble lays it out:
// 0x03 <tenant> <seq, 8 bytes big-endian>. Tests tamper with it directly.
func rawKey(tn custos.TenantID, seq uint64) []byte {
	k := append([]byte{0x03}, tn[:]...)
	return binary.BigEndian.AppendUint64(k, seq)
}

// tamper opens the closed store in dir with Pebble itself, so the change
// bypasses every Custos API, and runs fn on it.
func tamper(t *testing.T, dir string, fn func(db *rawDB)) {
	t.Helper()
	db, err := rawpebble.Open(dir, &rawpebble.Options{Logger: quietLogger{}})
	if err != nil {
		t.Fatalf("open %s with Pebble: %v", dir, err)
	}
	fn(&rawDB{t: t, db: db})
	if err := db.Close(); err != nil {
		t.Fatalf("close raw Pebble: %v", err)
	}
}

// quietLogger keeps Pebble's start-up chatter out of test output.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)           {}
func (quietLogger) Errorf(string, ...any)          {}
func (quietLogger) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }

// rawDB edits stored audit entries under their keys.
type rawDB struct {
	t  *testing.T
	db *rawpebble.DB
}

func (r *rawDB) raw(tn custos.TenantID, seq uint64) []byte {
	r.t.Helper()
	v, closer, err := r.db.Get(rawKey(tn, seq))
	if err != nil {
		r.t.Fatalf("raw get entry %d: %v", seq, err)
	}
	defer closer.Close()
	return append([]byte(nil), v...)
}

func (r *rawDB) setRaw(tn custos.TenantID, seq uint64, v []byte) {
	r.t.Helper()
	if err := r.db.Set(rawKey(tn, seq), v, rawpebble.Sync); err != nil {
		r.t.Fatalf("raw set entry %d: %v", seq, err)
	}
}

func (r *rawDB) get(tn custos.TenantID, seq uint64) custos.AuditEntry {
	r.t.Helper()
	var e custos.AuditEntry
	if err := json.Unmarshal(r.raw(tn, seq), &e); err != nil {
		r.t.Fatalf("decode entry %d: %v", seq, err)
	}
	return e
}

func (r *rawDB) put(tn custos.TenantID, seq uint64, e custos.AuditEntry) {
	r.t.Helper()
	v, err := json.Marshal(e)
	if err != nil {
		r.t.Fatal(err)
	}
	r.setRaw(tn, seq, v)
}

// edit changes entry seq in place.
func (r *rawDB) edit(tn custos.TenantID, seq uint64, fn func(*custos.AuditEntry)) {
	r.t.Helper()
	e := r.get(tn, seq)
	fn(&e)
	r.put(tn, seq, e)
}

func (r *rawDB) delete(tn custos.TenantID, seqs ...uint64) {
	r.t.Helper()
	for _, seq := range seqs {
		if err := r.db.Delete(rawKey(tn, seq), rawpebble.Sync); err != nil {
			r.t.Fatalf("raw delete entry %d: %v", seq, err)
		}
	}
}

// swap exchanges the stored values of entries i and j.
func (r *rawDB) swap(tn custos.TenantID, i, j uint64) {
	r.t.Helper()
	vi, vj := r.raw(tn, i), r.raw(tn, j)
	r.setRaw(tn, i, vj)
	r.setRaw(tn, j, vi)
}
