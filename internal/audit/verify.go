package audit

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"iter"
	"time"

	"github.com/custos-dev/custos"
)

// Break is the first place where a chain fails verification.
type Break struct {
	// Seq is the first sequence number whose entry is not what the chain
	// requires: changed, missing, out of order or not linked to its
	// predecessor.
	Seq uint64
	// Reason says what is wrong in words an operator can act on, e.g.
	// "entry 7 was changed: its hash does not match its content".
	Reason string
}

// pageSize is how many entries VerifyStore reads at a time.
const pageSize = 1000

// Verify walks a chain, which must start at entry 1, and reports the
// first broken link: a gap or reordering in the sequence, a prev_hash that
// differs from the previous entry's hash, or a hash that differs from the
// entry's content.
//
// checked is how many entries verified before the break (all of them if
// brk is nil), and head is the hash of the last of them — the prev_hash the
// next entry must carry — or Genesis if there is none. err is an error the
// iterator yielded, which ends the walk; a broken chain is not an error.
//
// A chain with its newest entries removed is still a valid chain: see
// VerifyAgainst.
func Verify(entries iter.Seq2[custos.AuditEntry, error]) (checked uint64, head string, brk *Break, err error) {
	w, err := walk(entries, 0)
	return w.checked, w.head, w.brk, err
}

// VerifyStore is Verify over tenant t's chain (custos.OperatorChain for
// operator actions), read from s in pages.
func VerifyStore(ctx context.Context, s custos.AuditStore, t custos.TenantID) (checked uint64, head string, brk *Break, err error) {
	return Verify(pages(ctx, s, t, pageSize))
}

// VerifyAgainst is Verify that also requires the chain to reach the head
// that checkpoint c signed: entry c.Seq must be present, intact, and carry
// the hash c.Hash. That detects what the chain alone cannot — its newest
// entries removed, or the chain rewritten with every hash recomputed. The
// chain may have grown since c was signed.
//
// c's signature is checked against pub first; a checkpoint that does not
// verify is an error, not a break. checked and head are as for Verify.
func VerifyAgainst(entries iter.Seq2[custos.AuditEntry, error], c Checkpoint, pub ed25519.PublicKey) (checked uint64, head string, brk *Break, err error) {
	if err := VerifyCheckpoint(c, pub); err != nil {
		return 0, "", nil, err
	}
	w, err := walk(entries, c.Seq)
	if err != nil {
		return w.checked, w.head, w.brk, err
	}
	return w.checked, w.head, w.against(c), nil
}

// VerifyStoreAgainst is VerifyAgainst over tenant t's chain read from s
// in pages. c must be a checkpoint of that chain.
func VerifyStoreAgainst(ctx context.Context, s custos.AuditStore, t custos.TenantID, c Checkpoint, pub ed25519.PublicKey) (checked uint64, head string, brk *Break, err error) {
	if c.Tenant != t {
		return 0, "", nil, custos.Errorf(custos.Invalid, "the checkpoint is of chain %s, not %s", c.Tenant, t)
	}
	return VerifyAgainst(pages(ctx, s, t, pageSize), c, pub)
}

// pages yields tenant t's chain read from s, size entries at a time.
func pages(ctx context.Context, s custos.AuditStore, t custos.TenantID, size int) iter.Seq2[custos.AuditEntry, error] {
	return func(yield func(custos.AuditEntry, error) bool) {
		var after uint64
		for {
			page, err := s.AuditEntries(ctx, t, after, size)
			if err == nil {
				err = ctx.Err()
			}
			if err != nil {
				yield(custos.AuditEntry{}, fmt.Errorf("read audit chain %s after entry %d: %w", t, after, err))
				return
			}
			for _, e := range page {
				if !yield(e, nil) {
					return
				}
			}
			// A tampered chain can yield a smaller number last; Verify
			// stops at it, but never loop on it regardless.
			if len(page) < size || page[len(page)-1].Seq <= after {
				return
			}
			after = page[len(page)-1].Seq
		}
	}
}

// walker is the state of a walk along a chain.
type walker struct {
	checked uint64
	head    string
	brk     *Break
	// pending is an entry that came before its turn. Whether the one it
	// skipped is missing or merely out of order shows with the next.
	pending *custos.AuditEntry
	// at is a sequence number whose hash to remember, and atHash that hash.
	at     uint64
	atHash string
}

// walk verifies entries and remembers the hash of entry at (Genesis for 0).
func walk(entries iter.Seq2[custos.AuditEntry, error], at uint64) (*walker, error) {
	w := &walker{head: Genesis, at: at}
	if at == 0 {
		w.atHash = Genesis
	}
	for e, err := range entries {
		if err != nil {
			return w, err
		}
		if w.step(e) {
			return w, nil
		}
	}
	if w.pending != nil {
		w.brk = gap(w.checked+1, w.pending.Seq)
	}
	return w, nil
}

// step checks the next entry and reports whether the walk is over.
func (w *walker) step(e custos.AuditEntry) (done bool) {
	want := w.checked + 1
	if p := w.pending; p != nil {
		if e.Seq == want {
			w.brk = &Break{Seq: want, Reason: fmt.Sprintf("entry %d is out of order: it comes after entry %d", want, p.Seq)}
		} else {
			w.brk = gap(want, p.Seq)
		}
		return true
	}
	switch {
	case e.Seq > want:
		w.pending = &e
		return false
	case e.Seq == 0:
		w.brk = &Break{Seq: want, Reason: fmt.Sprintf("entry %d is missing: an entry numbered 0 stands in its place", want)}
	case e.Seq < want:
		w.brk = &Break{Seq: want, Reason: fmt.Sprintf("entry %d is missing: entry %d appears again in its place", want, e.Seq)}
	case Hash(e) != e.Hash:
		w.brk = &Break{Seq: want, Reason: fmt.Sprintf("entry %d was changed: its hash does not match its content", want)}
	case e.PrevHash != w.head && want == 1:
		w.brk = &Break{Seq: want, Reason: "entry 1 does not start the chain: its prev_hash is not the genesis hash"}
	case e.PrevHash != w.head:
		w.brk = &Break{Seq: want, Reason: fmt.Sprintf("entry %d does not follow entry %d: prev_hash differs", want, want-1)}
	default:
		w.checked, w.head = e.Seq, e.Hash
		if e.Seq == w.at {
			w.atHash = e.Hash
		}
		return false
	}
	return true
}

func gap(want, got uint64) *Break {
	switch {
	case want == 1:
		return &Break{Seq: want, Reason: fmt.Sprintf("entry 1 is missing: the chain starts at entry %d", got)}
	case got == want+1:
		return &Break{Seq: want, Reason: fmt.Sprintf("entry %d is missing: sequence jumps from %d to %d", want, want-1, got)}
	}
	return &Break{Seq: want, Reason: fmt.Sprintf("entries %d to %d are missing: sequence jumps from %d to %d", want, got-1, want-1, got)}
}

// against returns the first break of a walk that remembered entry c.Seq,
// judged against checkpoint c.
func (w *walker) against(c Checkpoint) *Break {
	signed := c.Time.UTC().Format(time.RFC3339)
	ends := fmt.Sprintf("the chain ends at entry %d", w.checked)
	if w.checked == 0 {
		ends = "the chain is empty"
	}
	switch {
	case w.brk != nil && w.brk.Seq <= c.Seq:
		return w.brk
	case w.checked < c.Seq && w.checked+1 == c.Seq:
		return &Break{Seq: c.Seq, Reason: fmt.Sprintf("entry %d is missing: %s, but the checkpoint signed at %s covers entry %d", c.Seq, ends, signed, c.Seq)}
	case w.checked < c.Seq:
		return &Break{Seq: w.checked + 1, Reason: fmt.Sprintf("entries %d to %d are missing: %s, but the checkpoint signed at %s covers entry %d", w.checked+1, c.Seq, ends, signed, c.Seq)}
	case w.atHash != c.Hash:
		return &Break{Seq: c.Seq, Reason: fmt.Sprintf("entry %d does not match the checkpoint signed at %s: the chain up to it was rewritten", c.Seq, signed)}
	}
	return w.brk
}
