package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/custos-dev/custos"
)

// Entry is what a caller records. Log fills in the sequence number, the
// time and the hashes. No field may hold personal data (see the package
// documentation).
type Entry struct {
	// Actor is who acted: an API key id, an operator account, "system".
	Actor string
	// Action is what was done, e.g. "subject.erase".
	Action string
	// Subject is the pseudonym (a keyed hash) of the data subject
	// concerned, if any.
	Subject string
	// RequestID ties the entry to a data-subject request or an API call.
	RequestID string
	// Details is encoded to JSON once, when recorded; nil for none.
	Details any
}

// Log appends to hash chains in an audit store. It is safe for concurrent
// use.
type Log struct {
	store custos.AuditStore
	now   func() time.Time

	mu     sync.Mutex
	chains map[custos.TenantID]*sync.Mutex // one per chain, never removed
}

// New returns a Log over store that stamps entries with now.
func New(store custos.AuditStore, now func() time.Time) *Log {
	return &Log{store: store, now: now, chains: make(map[custos.TenantID]*sync.Mutex)}
}

// chain returns the mutex that serialises appends to tenant t's chain.
func (l *Log) chain(t custos.TenantID) *sync.Mutex {
	l.mu.Lock()
	defer l.mu.Unlock()
	mu, ok := l.chains[t]
	if !ok {
		mu = new(sync.Mutex)
		l.chains[t] = mu
	}
	return mu
}

// Record appends e to tenant t's chain (custos.OperatorChain for operator
// actions) and returns the entry as stored. It returns once the entry is
// durable.
//
// Appends to one chain through one Log are serialised. Another writer on
// the same store (another Log, another node) can still take a sequence
// number first; the store then answers Conflict and Record retries on the
// new head, for as long as the head keeps moving.
func (l *Log) Record(ctx context.Context, t custos.TenantID, e Entry) (custos.AuditEntry, error) {
	details, err := validate(e)
	if err != nil {
		return custos.AuditEntry{}, err
	}
	mu := l.chain(t)
	mu.Lock()
	defer mu.Unlock()
	for {
		if err := ctx.Err(); err != nil {
			return custos.AuditEntry{}, err
		}
		last, ok, err := l.store.LastAudit(ctx, t)
		if err != nil {
			return custos.AuditEntry{}, fmt.Errorf("audit %s: read head of chain %s: %w", e.Action, t, err)
		}
		a := custos.AuditEntry{
			Seq:       1,
			Time:      l.now().UTC(),
			Actor:     e.Actor,
			Action:    e.Action,
			Subject:   e.Subject,
			RequestID: e.RequestID,
			Details:   details,
			PrevHash:  Genesis,
		}
		if ok {
			a.Seq, a.PrevHash = last.Seq+1, last.Hash
		}
		a.Hash = Hash(a)
		appendErr := l.store.AppendAudit(ctx, t, &a)
		if appendErr == nil {
			return a, nil
		}
		if custos.ErrorCode(appendErr) != custos.Conflict || errors.Is(appendErr, custos.ErrFenced) {
			// Not a race for the sequence number. A fenced refusal is not
			// either: the lease the entry was made under has a newer
			// holder, and no retry will land.
			return custos.AuditEntry{}, fmt.Errorf("audit %s: append entry %d to chain %s: %w", e.Action, a.Seq, t, appendErr)
		}
		// Another writer took a.Seq: retry on the new head. If the head
		// did not move past it, the chain's stored head disagrees with its
		// keys — damage no retry will mend.
		head, ok, err := l.store.LastAudit(ctx, t)
		if err != nil {
			return custos.AuditEntry{}, fmt.Errorf("audit %s: read head of chain %s: %w", e.Action, t, err)
		}
		if !ok || head.Seq < a.Seq {
			return custos.AuditEntry{}, &custos.Error{
				Code:    custos.Internal,
				Message: fmt.Sprintf("audit chain %s is damaged: entry %d exists but the head is entry %d; verify the chain", t, a.Seq, head.Seq),
				Err:     appendErr,
			}
		}
	}
}

// validate checks e and returns its details encoded as JSON, nil for none.
// Strings must be valid UTF-8 because JSON would silently replace invalid
// bytes, and the stored entry would no longer match its hash.
func validate(e Entry) (json.RawMessage, error) {
	if e.Actor == "" {
		return nil, custos.Errorf(custos.Invalid, "audit entry needs an actor")
	}
	if e.Action == "" {
		return nil, custos.Errorf(custos.Invalid, "audit entry needs an action")
	}
	for _, f := range []struct{ name, v string }{
		{"actor", e.Actor}, {"action", e.Action}, {"subject", e.Subject}, {"request id", e.RequestID},
	} {
		if !utf8.ValidString(f.v) {
			return nil, custos.Errorf(custos.Invalid, "audit %s is not valid UTF-8", f.name)
		}
	}
	if e.Details == nil {
		return nil, nil
	}
	// json.Marshal compacts and escapes raw JSON too, so the bytes hashed
	// are the bytes any JSON encoding of the entry will carry.
	b, err := json.Marshal(e.Details)
	if err != nil {
		return nil, &custos.Error{Code: custos.Invalid, Message: "audit details cannot be encoded as JSON", Err: err}
	}
	if bytes.Equal(b, []byte("null")) {
		return nil, nil
	}
	return b, nil
}
