package audit_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
)

func TestRecordAndVerifyChains(t *testing.T) {
	dir := t.TempDir()
	st, closeStore := openStore(t, dir)
	clk := newClock()
	l := audit.New(st, clk.Now)
	a, b := custos.NewTenantID(), custos.NewTenantID()
	chains := []custos.TenantID{a, b, custos.OperatorChain}

	// Interleave the chains: each must stay independent of the others.
	recorded := map[custos.TenantID][]custos.AuditEntry{}
	for i := range 12 {
		for _, tn := range chains {
			e, err := l.Record(t.Context(), tn, entry(i))
			if err != nil {
				t.Fatalf("Record(%s, %d) = %v", tn, i, err)
			}
			recorded[tn] = append(recorded[tn], e)
		}
	}

	for _, tn := range chains {
		es := recorded[tn]
		for i, e := range es {
			prev := audit.Genesis
			if i > 0 {
				prev = es[i-1].Hash
			}
			if e.Seq != uint64(i+1) || e.PrevHash != prev || e.Hash != audit.Hash(e) {
				t.Errorf("chain %s entry %d: seq %d, prev_hash %s, hash %s; want seq %d, prev_hash %s, hash %s",
					tn, i, e.Seq, e.PrevHash, e.Hash, i+1, prev, audit.Hash(e))
			}
			if e.Time.Location() != time.UTC {
				t.Errorf("chain %s entry %d: time %v, want UTC", tn, i, e.Time)
			}
		}
		wantClean(t, st, tn, uint64(len(es)), es[len(es)-1].Hash)
		stored, err := st.AuditEntries(t.Context(), tn, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		for i := range stored {
			if got, want := stored[i], es[i]; !got.Time.Equal(want.Time) || got.Hash != want.Hash || string(got.Details) != string(want.Details) {
				t.Errorf("chain %s stored entry %d = %+v, want %+v", tn, i+1, got, want)
			}
		}
	}

	// After a restart the chains verify and continue where they stopped.
	closeStore()
	st, _ = openStore(t, dir)
	l = audit.New(st, clk.Now)
	for _, tn := range chains {
		es := recorded[tn]
		wantClean(t, st, tn, uint64(len(es)), es[len(es)-1].Hash)
		e, err := l.Record(t.Context(), tn, entry(99))
		if err != nil {
			t.Fatal(err)
		}
		if e.Seq != uint64(len(es)+1) || e.PrevHash != es[len(es)-1].Hash {
			t.Errorf("chain %s after reopen: seq %d prev_hash %s, want seq %d prev_hash %s", tn, e.Seq, e.PrevHash, len(es)+1, es[len(es)-1].Hash)
		}
		wantClean(t, st, tn, uint64(len(es)+1), e.Hash)
	}
}

func TestRecordDetails(t *testing.T) {
	dir := t.TempDir()
	st, closeStore := openStore(t, dir)
	l := audit.New(st, newClock().Now)
	tn := custos.NewTenantID()
	var nilMap map[string]int
	tests := []struct {
		name    string
		details any
		want    string // the stored raw JSON
	}{
		{"none", nil, ""},
		{"typed nil", nilMap, ""},
		{"json null", json.RawMessage("null"), ""},
		{"map", map[string]any{"traits": []string{"plan", "email"}, "count": 2}, `{"count":2,"traits":["plan","email"]}`},
		{"raw JSON is compacted", json.RawMessage(" { \"a\" : [1, 2] }\n"), `{"a":[1,2]}`},
		{"HTML is escaped as JSON encoders do", map[string]string{"reason": "<a&b>"}, `{"reason":"\u003ca\u0026b\u003e"}`},
		{"non-ASCII", map[string]string{"region": "Zürich ✓"}, `{"region":"Zürich ✓"}`},
		{"struct", struct {
			Purpose string `json:"purpose"`
		}{"marketing"}, `{"purpose":"marketing"}`},
	}
	for _, tc := range tests {
		e, err := l.Record(t.Context(), tn, audit.Entry{Actor: "op", Action: "test." + tc.name, Details: tc.details})
		if err != nil {
			t.Fatalf("%s: Record = %v", tc.name, err)
		}
		if string(e.Details) != tc.want {
			t.Errorf("%s: details %s, want %s", tc.name, e.Details, tc.want)
		}
	}
	// Whatever the JSON form, the hash holds once stored and read back.
	closeStore()
	st, _ = openStore(t, dir)
	last, _, err := st.LastAudit(t.Context(), tn)
	if err != nil {
		t.Fatal(err)
	}
	wantClean(t, st, tn, uint64(len(tests)), last.Hash)
}

func TestRecordRejects(t *testing.T) {
	st, _ := openStore(t, t.TempDir())
	l := audit.New(st, newClock().Now)
	tn := custos.NewTenantID()
	tests := []struct {
		name string
		e    audit.Entry
	}{
		{"no actor", audit.Entry{Action: "subject.erase"}},
		{"no action", audit.Entry{Actor: "op"}},
		{"actor not UTF-8", audit.Entry{Actor: "op\xff", Action: "a"}},
		{"subject not UTF-8", audit.Entry{Actor: "op", Action: "a", Subject: "\xc3"}},
		{"request id not UTF-8", audit.Entry{Actor: "op", Action: "a", RequestID: "\x80"}},
		{"details not JSON", audit.Entry{Actor: "op", Action: "a", Details: make(chan int)}},
		{"raw details not JSON", audit.Entry{Actor: "op", Action: "a", Details: json.RawMessage("{")}},
	}
	for _, tc := range tests {
		_, err := l.Record(t.Context(), tn, tc.e)
		if got := custos.ErrorCode(err); err == nil || got != custos.Invalid {
			t.Errorf("Record(%s) = %v (code %s), want code %s", tc.name, err, got, custos.Invalid)
		}
	}
	if _, ok, err := st.LastAudit(t.Context(), tn); ok || err != nil {
		t.Errorf("LastAudit after rejected records = %v, %v; want an empty chain", ok, err)
	}
}

// TestRecordConcurrent has many goroutines record on one chain through one
// Log, and through two Logs on one store — as two nodes would, where only
// the store's Conflict keeps them apart. Every chain must come out gap-free
// and intact.
func TestRecordConcurrent(t *testing.T) {
	st, _ := openStore(t, t.TempDir())
	clk := newClock()
	tests := []struct {
		name          string
		logs          []*audit.Log
		goroutines, n int
	}{
		{"one log", []*audit.Log{audit.New(st, clk.Now)}, 12, 5},
		{"two logs", []*audit.Log{audit.New(st, clk.Now), audit.New(st, clk.Now)}, 6, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tn := custos.NewTenantID()
			var (
				wg   sync.WaitGroup
				mu   sync.Mutex
				seqs = map[uint64]string{}
			)
			for _, l := range tc.logs {
				for g := range tc.goroutines {
					wg.Go(func() {
						for i := range tc.n {
							e := entry(i)
							e.RequestID = fmt.Sprintf("g%d-%d", g, i)
							got, err := l.Record(t.Context(), tn, e)
							if err != nil {
								t.Errorf("Record(%s) = %v", e.RequestID, err)
								return
							}
							mu.Lock()
							if other, dup := seqs[got.Seq]; dup {
								t.Errorf("seq %d given to both %s and %s", got.Seq, other, e.RequestID)
							}
							seqs[got.Seq] = e.RequestID
							mu.Unlock()
						}
					})
				}
			}
			wg.Wait()
			want := uint64(len(tc.logs) * tc.goroutines * tc.n)
			last, _, err := st.LastAudit(t.Context(), tn)
			if err != nil {
				t.Fatal(err)
			}
			wantClean(t, st, tn, want, last.Hash)
			if uint64(len(seqs)) != want {
				t.Errorf("got %d distinct seqs, want %d", len(seqs), want)
			}
		})
	}
}

// TestRecordRefusesDamagedHead: when the stored head disagrees with the
// keys (here the last two entries were swapped), Record cannot find a free
// sequence number by retrying and must say the chain is damaged rather than
// loop.
func TestRecordRefusesDamagedHead(t *testing.T) {
	dir := t.TempDir()
	st, closeStore := openStore(t, dir)
	tn := custos.NewTenantID()
	record(t, audit.New(st, newClock().Now), tn, 4)
	closeStore()
	tamper(t, dir, func(db *rawDB) { db.swap(tn, 3, 4) })

	st, _ = openStore(t, dir)
	_, err := audit.New(st, newClock().Now).Record(t.Context(), tn, entry(5))
	if got := custos.ErrorCode(err); err == nil || got != custos.Internal {
		t.Fatalf("Record on a damaged chain = %v (code %s), want code %s", err, got, custos.Internal)
	}
	if got, want := custos.ErrorMessage(err), fmt.Sprintf("audit chain %s is damaged: entry 4 exists but the head is entry 3; verify the chain", tn); got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
}

func TestHashCoversEveryField(t *testing.T) {
	base := custos.AuditEntry{
		Seq: 3, Time: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC), Actor: "key:1", Action: "subject.erase",
		Subject: "ab", RequestID: "r1", Details: json.RawMessage(`{"n":1}`), PrevHash: audit.Genesis,
	}
	h := audit.Hash(base)
	if len(h) != 64 {
		t.Fatalf("Hash = %q, want 64 hex characters", h)
	}
	// The same instant in another zone, and the Hash field itself, do not count.
	same := base
	same.Time = base.Time.In(time.FixedZone("X", -5*3600))
	same.Hash = "anything"
	if got := audit.Hash(same); got != h {
		t.Errorf("Hash with the time in another zone and Hash set = %s, want %s", got, h)
	}
	tests := []struct {
		name   string
		change func(*custos.AuditEntry)
	}{
		{"seq", func(e *custos.AuditEntry) { e.Seq++ }},
		{"time", func(e *custos.AuditEntry) { e.Time = e.Time.Add(time.Nanosecond) }},
		{"actor", func(e *custos.AuditEntry) { e.Actor = "key:2" }},
		{"action", func(e *custos.AuditEntry) { e.Action = "subject.access" }},
		{"subject", func(e *custos.AuditEntry) { e.Subject = "ac" }},
		{"request id", func(e *custos.AuditEntry) { e.RequestID = "r2" }},
		{"details", func(e *custos.AuditEntry) { e.Details = json.RawMessage(`{"n":2}`) }},
		{"details spacing", func(e *custos.AuditEntry) { e.Details = json.RawMessage(`{"n": 1}`) }},
		{"prev hash", func(e *custos.AuditEntry) { e.PrevHash = "1" + audit.Genesis[1:] }},
		// Length prefixes: moving bytes between neighbouring fields changes the hash.
		{"actor/action boundary", func(e *custos.AuditEntry) { e.Actor, e.Action = "key:1s", "ubject.erase" }},
		{"subject/request boundary", func(e *custos.AuditEntry) { e.Subject, e.RequestID = "", "abr1" }},
	}
	for _, tc := range tests {
		e := base
		tc.change(&e)
		if audit.Hash(e) == h {
			t.Errorf("changing %s leaves the hash unchanged", tc.name)
		}
	}
}

// fencedStore refuses appends as a shared store refuses the writes of a
// lease holder that was superseded.
type fencedStore struct{ custos.AuditStore }

func (fencedStore) AppendAudit(context.Context, custos.TenantID, *custos.AuditEntry) error {
	return &custos.Error{Code: custos.Conflict, Message: "lease request/r1 has a newer holder", Err: custos.ErrFenced}
}

// TestRecordFencedIsNotDamage: an append refused because its lease has a
// newer holder is reported as that (the caller's work stops), not retried
// and then called damage of the chain.
func TestRecordFencedIsNotDamage(t *testing.T) {
	st, _ := openStore(t, t.TempDir())
	tn := custos.NewTenantID()
	entries := record(t, audit.New(st, newClock().Now), tn, 2)
	_, err := audit.New(fencedStore{st}, newClock().Now).Record(t.Context(), tn, entry(3))
	if !errors.Is(err, custos.ErrFenced) || custos.ErrorCode(err) != custos.Conflict {
		t.Fatalf("Record under a superseded lease = %v, want the fenced refusal", err)
	}
	wantClean(t, st, tn, 2, entries[1].Hash)
}
