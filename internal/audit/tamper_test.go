package audit_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
)

// tamperFixture is a closed store holding three chains, the first of them
// checkpointed at its head.
type tamperFixture struct {
	dir        string
	a, b       custos.TenantID
	n          uint64 // entries in chain a
	checkpoint audit.Checkpoint
	pub        ed25519.PublicKey
	heads      map[custos.TenantID]string
	lens       map[custos.TenantID]uint64
}

func newTamperFixture(t *testing.T) tamperFixture {
	t.Helper()
	f := tamperFixture{
		dir: t.TempDir(), a: custos.NewTenantID(), b: custos.NewTenantID(), n: 12,
		heads: map[custos.TenantID]string{}, lens: map[custos.TenantID]uint64{},
	}
	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	f.pub = pub
	st, closeStore := openStore(t, f.dir)
	l := audit.New(st, newClock().Now)
	for i := range int(f.n) {
		for _, c := range []struct {
			tn    custos.TenantID
			every int
		}{{f.a, 1}, {f.b, 2}, {custos.OperatorChain, 3}} {
			if i%c.every != 0 {
				continue
			}
			e, err := l.Record(t.Context(), c.tn, entry(i))
			if err != nil {
				t.Fatal(err)
			}
			f.heads[c.tn], f.lens[c.tn] = e.Hash, e.Seq
		}
	}
	if f.checkpoint, err = l.Checkpoint(t.Context(), f.a, key); err != nil {
		t.Fatal(err)
	}
	closeStore()
	return f
}

// copyDir returns a fresh copy of the fixture's store directory.
func (f tamperFixture) copyDir(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "store")
	if err := os.CopyFS(dst, os.DirFS(f.dir)); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestTamperingDetected changes a stored chain behind Custos's back — with
// Pebble itself, on a closed store — and checks that verification names
// the first broken entry and why.
func TestTamperingDetected(t *testing.T) {
	f := newTamperFixture(t)
	a := f.a
	signed := f.checkpoint.Time.UTC().Format(time.RFC3339)
	tests := []struct {
		name   string
		tamper func(db *rawDB)
		// What the chain alone shows, and what it shows against the
		// checkpoint of its original head (nil: the same).
		want, wantAgainst *audit.Break
		wantChecked       uint64
	}{
		{
			name:        "untouched",
			tamper:      func(db *rawDB) {},
			wantChecked: 12,
		},
		{
			name:        "action edited",
			tamper:      func(db *rawDB) { db.edit(a, 5, func(e *custos.AuditEntry) { e.Action = "subject.export" }) },
			want:        &audit.Break{Seq: 5, Reason: "entry 5 was changed: its hash does not match its content"},
			wantChecked: 4,
		},
		{
			name:        "details edited",
			tamper:      func(db *rawDB) { db.edit(a, 7, func(e *custos.AuditEntry) { e.Details = []byte(`{"n":700}`) }) },
			want:        &audit.Break{Seq: 7, Reason: "entry 7 was changed: its hash does not match its content"},
			wantChecked: 6,
		},
		{
			name: "time edited",
			tamper: func(db *rawDB) {
				db.edit(a, 3, func(e *custos.AuditEntry) { e.Time = e.Time.Add(-time.Hour) })
			},
			want:        &audit.Break{Seq: 3, Reason: "entry 3 was changed: its hash does not match its content"},
			wantChecked: 2,
		},
		{
			name: "raw bytes edited",
			tamper: func(db *rawDB) {
				v := db.raw(a, 9)
				db.setRaw(a, 9, []byte(strings.Replace(string(v), `"req-8"`, `"req-X"`, 1)))
			},
			want:        &audit.Break{Seq: 9, Reason: "entry 9 was changed: its hash does not match its content"},
			wantChecked: 8,
		},
		{
			name: "edited with its own hash recomputed",
			tamper: func(db *rawDB) {
				db.edit(a, 5, func(e *custos.AuditEntry) { e.Action = "subject.export"; e.Hash = audit.Hash(*e) })
			},
			want:        &audit.Break{Seq: 6, Reason: "entry 6 does not follow entry 5: prev_hash differs"},
			wantChecked: 5,
		},
		{
			name: "first entry re-rooted",
			tamper: func(db *rawDB) {
				db.edit(a, 1, func(e *custos.AuditEntry) { e.PrevHash = strings.Repeat("f", 64); e.Hash = audit.Hash(*e) })
			},
			want:        &audit.Break{Seq: 1, Reason: "entry 1 does not start the chain: its prev_hash is not the genesis hash"},
			wantChecked: 0,
		},
		{
			name:        "entry deleted",
			tamper:      func(db *rawDB) { db.delete(a, 8) },
			want:        &audit.Break{Seq: 8, Reason: "entry 8 is missing: sequence jumps from 7 to 9"},
			wantChecked: 7,
		},
		{
			name:        "first entry deleted",
			tamper:      func(db *rawDB) { db.delete(a, 1) },
			want:        &audit.Break{Seq: 1, Reason: "entry 1 is missing: the chain starts at entry 2"},
			wantChecked: 0,
		},
		{
			name:        "several entries deleted",
			tamper:      func(db *rawDB) { db.delete(a, 4, 5, 6) },
			want:        &audit.Break{Seq: 4, Reason: "entries 4 to 6 are missing: sequence jumps from 3 to 7"},
			wantChecked: 3,
		},
		{
			name:        "entries swapped",
			tamper:      func(db *rawDB) { db.swap(a, 4, 5) },
			want:        &audit.Break{Seq: 4, Reason: "entry 4 is out of order: it comes after entry 5"},
			wantChecked: 3,
		},
		{
			name:        "last entries swapped",
			tamper:      func(db *rawDB) { db.swap(a, 11, 12) },
			want:        &audit.Break{Seq: 11, Reason: "entry 11 is out of order: it comes after entry 12"},
			wantChecked: 10,
		},
		{
			name: "entries swapped and renumbered",
			tamper: func(db *rawDB) {
				db.swap(a, 4, 5)
				for _, seq := range []uint64{4, 5} {
					db.edit(a, seq, func(e *custos.AuditEntry) { e.Seq = seq; e.Hash = audit.Hash(*e) })
				}
			},
			want:        &audit.Break{Seq: 4, Reason: "entry 4 does not follow entry 3: prev_hash differs"},
			wantChecked: 3,
		},
		{
			name:        "entry replaced by a copy of its predecessor",
			tamper:      func(db *rawDB) { db.setRaw(a, 4, db.raw(a, 3)) },
			want:        &audit.Break{Seq: 4, Reason: "entry 4 is missing: entry 3 appears again in its place"},
			wantChecked: 3,
		},
		{
			name:        "tail truncated",
			tamper:      func(db *rawDB) { db.delete(a, 10, 11, 12) },
			wantChecked: 9,
			wantAgainst: &audit.Break{Seq: 10, Reason: "entries 10 to 12 are missing: the chain ends at entry 9, but the checkpoint signed at " + signed + " covers entry 12"},
		},
		{
			name:        "last entry truncated",
			tamper:      func(db *rawDB) { db.delete(a, 12) },
			wantChecked: 11,
			wantAgainst: &audit.Break{Seq: 12, Reason: "entry 12 is missing: the chain ends at entry 11, but the checkpoint signed at " + signed + " covers entry 12"},
		},
		{
			name: "whole chain deleted",
			tamper: func(db *rawDB) {
				for seq := uint64(1); seq <= 12; seq++ {
					db.delete(a, seq)
				}
			},
			wantChecked: 0,
			wantAgainst: &audit.Break{Seq: 1, Reason: "entries 1 to 12 are missing: the chain is empty, but the checkpoint signed at " + signed + " covers entry 12"},
		},
		{
			name: "rewritten from entry 6 with every hash recomputed",
			tamper: func(db *rawDB) {
				prev := db.get(a, 5).Hash
				for seq := uint64(6); seq <= 12; seq++ {
					db.edit(a, seq, func(e *custos.AuditEntry) {
						e.Action, e.PrevHash = "subject.export", prev
						e.Hash = audit.Hash(*e)
						prev = e.Hash
					})
				}
			},
			wantChecked: 12,
			wantAgainst: &audit.Break{Seq: 12, Reason: "entry 12 does not match the checkpoint signed at " + signed + ": the chain up to it was rewritten"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := f.copyDir(t)
			tamper(t, dir, tc.tamper)
			st, _ := openStore(t, dir)

			checked, _, brk, err := audit.VerifyStore(t.Context(), st, a)
			if err != nil {
				t.Fatalf("VerifyStore = %v, want nil", err)
			}
			if !sameBreak(brk, tc.want) || checked != tc.wantChecked {
				t.Errorf("VerifyStore = checked %d, break %s; want checked %d, break %s", checked, fmtBreak(brk), tc.wantChecked, fmtBreak(tc.want))
			}

			wantAgainst := tc.wantAgainst
			if wantAgainst == nil {
				wantAgainst = tc.want
			}
			_, _, brk, err = audit.VerifyStoreAgainst(t.Context(), st, a, f.checkpoint, f.pub)
			if err != nil {
				t.Fatalf("VerifyStoreAgainst = %v, want nil", err)
			}
			if !sameBreak(brk, wantAgainst) {
				t.Errorf("VerifyStoreAgainst = %s; want %s", fmtBreak(brk), fmtBreak(wantAgainst))
			}

			// The other chains in the same store are untouched.
			for _, tn := range []custos.TenantID{f.b, custos.OperatorChain} {
				wantClean(t, st, tn, f.lens[tn], f.heads[tn])
			}
		})
	}
}

func sameBreak(got, want *audit.Break) bool {
	if got == nil || want == nil {
		return got == want
	}
	return *got == *want
}

func fmtBreak(b *audit.Break) string {
	if b == nil {
		return "none"
	}
	return fmt.Sprintf("{%d %q}", b.Seq, b.Reason)
}

// TestVerifyStopsAtReadError: an error reading the chain ends the walk
// and is returned with what was verified so far; it is not a break.
func TestVerifyStopsAtReadError(t *testing.T) {
	st, _ := openStore(t, t.TempDir())
	tn := custos.NewTenantID()
	es := record(t, audit.New(st, newClock().Now), tn, 3)
	readErr := errors.New("disk on fire")
	entries := func(yield func(custos.AuditEntry, error) bool) {
		for _, e := range es[:2] {
			if !yield(e, nil) {
				return
			}
		}
		yield(custos.AuditEntry{}, readErr)
	}
	checked, head, brk, err := audit.Verify(entries)
	if !errors.Is(err, readErr) || brk != nil || checked != 2 || head != es[1].Hash {
		t.Errorf("Verify = %d, %s, %+v, %v; want 2, %s, no break, %v", checked, head, brk, err, es[1].Hash, readErr)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, _, _, err := audit.VerifyStore(ctx, st, tn); !errors.Is(err, context.Canceled) {
		t.Errorf("VerifyStore with a cancelled context = %v, want %v", err, context.Canceled)
	}
}
