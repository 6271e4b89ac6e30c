package pebble_test

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/pebble"
)

// auditOpen opens a small store in dir; closeStore closes it, and runs
// when the test ends if the test did not call it first.
func auditOpen(t *testing.T, dir string) (st *pebble.Store, closeStore func()) {
	t.Helper()
	st, err := pebble.Open(dir, pebble.Options{CacheSize: 4 << 20, MemTableSize: 4 << 20})
	if err != nil {
		t.Fatalf("Open(%s) = %v, want nil", dir, err)
	}
	var once sync.Once
	closeStore = func() {
		once.Do(func() {
			if err := st.Close(); err != nil {
				t.Errorf("Close(%s) = %v, want nil", dir, err)
			}
		})
	}
	t.Cleanup(closeStore)
	return st, closeStore
}

// auditEntry is entry seq of a made-up chain; the store does not check
// hashes, so any strings do.
func auditEntry(t custos.TenantID, seq uint64) custos.AuditEntry {
	return custos.AuditEntry{
		Seq:       seq,
		Time:      time.Date(2025, 3, 1, 12, 0, 0, int(seq)*1001, time.UTC),
		Actor:     "key:" + t.String()[:8],
		Action:    "subject.erase",
		Subject:   fmt.Sprintf("pseudonym-%d", seq),
		RequestID: fmt.Sprintf("req-%d", seq),
		Details:   json.RawMessage(fmt.Sprintf(`{"n":%d,"tenant":"%s"}`, seq, t)),
		PrevHash:  fmt.Sprintf("prev-%d", seq),
		Hash:      fmt.Sprintf("hash-%d", seq),
	}
}

func mustAppendAudit(t *testing.T, st *pebble.Store, tn custos.TenantID, seqs ...uint64) []custos.AuditEntry {
	t.Helper()
	var out []custos.AuditEntry
	for _, seq := range seqs {
		e := auditEntry(tn, seq)
		if err := st.AppendAudit(t.Context(), tn, &e); err != nil {
			t.Fatalf("AppendAudit(%s, %d) = %v, want nil", tn, seq, err)
		}
		out = append(out, e)
	}
	return out
}

func seqRange(from, to uint64) []uint64 {
	var s []uint64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

// sameEntries compares entries field by field, times as instants.
func sameEntries(t *testing.T, what string, got, want []custos.AuditEntry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d entries, want %d", what, len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if !g.Time.Equal(w.Time) {
			t.Errorf("%s: entry %d time = %v, want %v", what, i, g.Time, w.Time)
		}
		g.Time, w.Time = time.Time{}, time.Time{}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s: entry %d = %+v, want %+v", what, i, g, w)
		}
	}
}

func TestAuditEmptyChain(t *testing.T) {
	st, _ := auditOpen(t, t.TempDir())
	tn := custos.NewTenantID()
	if e, ok, err := st.LastAudit(t.Context(), tn); err != nil || ok {
		t.Fatalf("LastAudit(empty) = %+v, %v, %v; want ok false, nil", e, ok, err)
	}
	if got, err := st.AuditEntries(t.Context(), tn, 0, 10); err != nil || len(got) != 0 {
		t.Fatalf("AuditEntries(empty) = %v, %v; want none", got, err)
	}
}

func TestAuditEntriesPages(t *testing.T) {
	st, _ := auditOpen(t, t.TempDir())
	a, b := custos.NewTenantID(), custos.NewTenantID()
	// Chains lie side by side in key order, OperatorChain (all zeros)
	// first: a page must stop at its chain's end.
	wantA := mustAppendAudit(t, st, a, seqRange(1, 7)...)
	wantB := mustAppendAudit(t, st, b, seqRange(1, 3)...)
	wantOp := mustAppendAudit(t, st, custos.OperatorChain, seqRange(1, 2)...)

	tests := []struct {
		tenant   custos.TenantID
		after    uint64
		limit    int
		chain    []custos.AuditEntry
		from, to int // the slice of chain wanted
	}{
		{a, 0, 100, wantA, 0, 7},
		{a, 0, 3, wantA, 0, 3},
		{a, 3, 3, wantA, 3, 6},
		{a, 6, 3, wantA, 6, 7},
		{a, 7, 3, wantA, 7, 7},
		{a, 100, 3, wantA, 7, 7},
		{a, math.MaxUint64, 3, wantA, 7, 7},
		{b, 0, 100, wantB, 0, 3},
		{b, 2, 1, wantB, 2, 3},
		{custos.OperatorChain, 0, 100, wantOp, 0, 2},
		{custos.NewTenantID(), 0, 100, nil, 0, 0},
	}
	for _, tc := range tests {
		name := fmt.Sprintf("%s/after=%d/limit=%d", tc.tenant.String()[:6], tc.after, tc.limit)
		t.Run(name, func(t *testing.T) {
			got, err := st.AuditEntries(t.Context(), tc.tenant, tc.after, tc.limit)
			if err != nil {
				t.Fatalf("AuditEntries = %v, want nil", err)
			}
			sameEntries(t, name, got, tc.chain[tc.from:tc.to])
		})
	}

	for _, c := range []struct {
		tenant custos.TenantID
		want   custos.AuditEntry
	}{{a, wantA[6]}, {b, wantB[2]}, {custos.OperatorChain, wantOp[1]}} {
		got, ok, err := st.LastAudit(t.Context(), c.tenant)
		if err != nil || !ok {
			t.Fatalf("LastAudit(%s) = %v, %v; want an entry", c.tenant, ok, err)
		}
		sameEntries(t, "LastAudit "+c.tenant.String(), []custos.AuditEntry{got}, []custos.AuditEntry{c.want})
	}
}

func TestAuditRejects(t *testing.T) {
	st, _ := auditOpen(t, t.TempDir())
	tn := custos.NewTenantID()
	first := mustAppendAudit(t, st, tn, 1)

	dup := auditEntry(tn, 1)
	dup.Action = "overwrite attempt"
	zero := auditEntry(tn, 0)
	tests := []struct {
		name string
		err  error
		want custos.Code
	}{
		{"existing seq", st.AppendAudit(t.Context(), tn, &dup), custos.Conflict},
		{"seq 0", st.AppendAudit(t.Context(), tn, &zero), custos.Invalid},
		{"limit 0", func() error { _, err := st.AuditEntries(t.Context(), tn, 0, 0); return err }(), custos.Invalid},
		{"limit -1", func() error { _, err := st.AuditEntries(t.Context(), tn, 0, -1); return err }(), custos.Invalid},
	}
	for _, tc := range tests {
		if got := custos.ErrorCode(tc.err); tc.err == nil || got != tc.want {
			t.Errorf("%s: err = %v (code %s), want code %s", tc.name, tc.err, got, tc.want)
		}
	}
	got, err := st.AuditEntries(t.Context(), tn, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	sameEntries(t, "after rejected appends", got, first)
}

func TestAuditSurvivesReopenAndTenantDeletion(t *testing.T) {
	dir := t.TempDir()
	st, closeStore := auditOpen(t, dir)
	tenant := &custos.Tenant{ID: custos.NewTenantID(), Name: "Gone GmbH", Region: "eu"}
	if err := st.CreateTenant(t.Context(), tenant); err != nil {
		t.Fatal(err)
	}
	want := mustAppendAudit(t, st, tenant.ID, seqRange(1, 4)...)
	closeStore()

	st, _ = auditOpen(t, dir)
	got, err := st.AuditEntries(t.Context(), tenant.ID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	sameEntries(t, "after reopen", got, want)

	if err := st.DeleteTenant(t.Context(), tenant.ID); err != nil {
		t.Fatalf("DeleteTenant = %v", err)
	}
	got, err = st.AuditEntries(t.Context(), tenant.ID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	sameEntries(t, "after DeleteTenant", got, want)
	want = append(want, mustAppendAudit(t, st, tenant.ID, 5)...)
	last, ok, err := st.LastAudit(t.Context(), tenant.ID)
	if err != nil || !ok {
		t.Fatalf("LastAudit = %v, %v", ok, err)
	}
	sameEntries(t, "LastAudit after DeleteTenant", []custos.AuditEntry{last}, want[4:])
}

// TestAuditAppendRace has many writers claim the same sequence numbers:
// each number goes to exactly one of them.
func TestAuditAppendRace(t *testing.T) {
	st, _ := auditOpen(t, t.TempDir())
	tn := custos.NewTenantID()
	const writers, seqs = 8, 3
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		wins  = map[uint64][]int{}
		other []error
	)
	for w := range writers {
		wg.Go(func() {
			for seq := uint64(1); seq <= seqs; seq++ {
				e := auditEntry(tn, seq)
				e.Actor = fmt.Sprintf("writer-%d", w)
				err := st.AppendAudit(t.Context(), tn, &e)
				mu.Lock()
				switch {
				case err == nil:
					wins[seq] = append(wins[seq], w)
				case custos.ErrorCode(err) != custos.Conflict:
					other = append(other, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(other) > 0 {
		t.Fatalf("AppendAudit errors other than Conflict: %v", other)
	}
	got, err := st.AuditEntries(t.Context(), tn, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != seqs {
		t.Fatalf("chain has %d entries, want %d", len(got), seqs)
	}
	for _, e := range got {
		w := wins[e.Seq]
		if len(w) != 1 {
			t.Errorf("seq %d was won by writers %v, want exactly one", e.Seq, w)
			continue
		}
		if want := fmt.Sprintf("writer-%d", w[0]); e.Actor != want {
			t.Errorf("seq %d stored actor %q, want the winner %q", e.Seq, e.Actor, want)
		}
	}
}
