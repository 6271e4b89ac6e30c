package subjects_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
	"github.com/custos-dev/custos/internal/subjects"
)

// failingAudit is the real audit store, failing appends while fail is set.
type failingAudit struct {
	custos.AuditStore
	fail atomic.Bool
}

func (f *failingAudit) AppendAudit(ctx context.Context, t custos.TenantID, e *custos.AuditEntry) error {
	if f.fail.Load() {
		return errors.New("disk full")
	}
	return f.AuditStore.AppendAudit(ctx, t, e)
}

// TestAuditedReader: each read of a profile or of events leaves its audit
// entry (actor, action, pseudonym, details); a read whose entry fails is
// Unavailable and shows nothing.
func TestAuditedReader(t *testing.T) {
	e := newEnv(t)
	e.ingest(t, msg(custos.Identify, "u-1", "a-1", 0), msg(custos.Track, "u-1", "", 1))
	s := e.find(t, custos.UserID, "u-1")
	pseudonym, err := e.rd.Pseudonym(e.tenant, s)
	if err != nil {
		t.Fatal(err)
	}
	store := &failingAudit{AuditStore: e.store}
	ar := subjects.NewAuditedReader(e.rd, audit.New(store, time.Now))
	ctx := t.Context()

	store.fail.Store(true)
	if p, err := ar.Profile(ctx, e.tenant, s); custos.ErrorCode(err) != custos.Unavailable || p != nil {
		t.Errorf("Profile with a failing audit log = %v, %v; want nil, Unavailable", p, err)
	}
	if ev, _, err := ar.Events(ctx, e.tenant, s, "", 10); custos.ErrorCode(err) != custos.Unavailable || ev != nil {
		t.Errorf("Events with a failing audit log = %d events, %v; want none, Unavailable", len(ev), err)
	}
	store.fail.Store(false)
	if _, err := ar.Profile(ctx, e.tenant, s); err != nil {
		t.Fatalf("Profile: %v", err)
	}
	ev, _, err := ar.Events(ctx, e.tenant, s, "", 10)
	if err != nil || len(ev) != 2 {
		t.Fatalf("Events = %d events, %v; want 2, nil", len(ev), err)
	}
	entries, err := e.store.AuditEntries(ctx, e.tenant, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	type seen struct{ actor, action, subject, details string }
	var got []seen
	for _, en := range entries {
		got = append(got, seen{en.Actor, en.Action, en.Subject, string(en.Details)})
	}
	want := []seen{{audit.ActorTenant, "profile.read", pseudonym, ""}, {audit.ActorTenant, "events.read", pseudonym, `{"events":2}`}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("audit entries = %+v; want %+v", got, want)
	}
	// An unknown subject is NotFound, and its read leaves no entry.
	if _, err := ar.Profile(ctx, e.tenant, custos.NewSubjectID()); custos.ErrorCode(err) != custos.NotFound {
		t.Errorf("Profile of an unknown subject = %v; want NotFound", err)
	}
}
