package consent_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
	"github.com/custos-dev/custos/internal/consent"
	"github.com/custos-dev/custos/internal/subjects"
)

// flakyAudit is the real audit store, failing appends while fail is set.
type flakyAudit struct {
	custos.AuditStore
	fail atomic.Bool
}

func (f *flakyAudit) AppendAudit(ctx context.Context, t custos.TenantID, e *custos.AuditEntry) error {
	if f.fail.Load() {
		return errors.New("disk full")
	}
	return f.AuditStore.AppendAudit(ctx, t, e)
}

func grant(granted bool) *bool { return &granted }

func TestRecorder(t *testing.T) {
	e := newEnv(t)
	tenant := &custos.Tenant{ID: e.tenant, Region: "eu"}
	store := &flakyAudit{AuditStore: e.store}
	al := audit.New(store, func() time.Time { return e.now })
	rec := consent.NewRecorder(e.ledger, subjects.NewReader(e.store, e.ring), al, func() time.Time { return e.now })
	id := custos.Identifier{Type: custos.UserID, Value: "u-1"}
	in := consent.Input{Identity: id, Purpose: "marketing", Channel: "email", Granted: grant(true), NoticeVersion: "v1"}
	ctx := t.Context()

	history := func() []custos.ConsentRecord {
		t.Helper()
		s, err := subjects.NewReader(e.store, e.ring).Find(ctx, e.tenant, id)
		if err != nil {
			t.Fatalf("Find: %v", err)
		}
		h, err := e.ledger.History(ctx, e.tenant, s)
		if err != nil {
			t.Fatalf("History: %v", err)
		}
		return h
	}
	audited := func() int {
		t.Helper()
		entries, err := e.store.AuditEntries(ctx, e.tenant, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, en := range entries {
			if en.Action == "consent.grant" && en.Actor == audit.ActorTenant {
				n++
			}
		}
		return n
	}

	// The audit entry fails: the answer is Unavailable, the record stays.
	store.fail.Store(true)
	if _, err := rec.Record(ctx, tenant, in); custos.ErrorCode(err) != custos.Unavailable {
		t.Fatalf("Record with a failing audit log = %v; want Unavailable", err)
	}
	if h := history(); len(h) != 1 || audited() != 0 {
		t.Fatalf("after a failed audit: %d records, %d audit entries; want 1, 0", len(h), audited())
	}
	// The client retries: no second record, and the audit entry is written.
	store.fail.Store(false)
	e.now = e.now.Add(time.Minute)
	got, err := rec.Record(ctx, tenant, in)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if h := history(); len(h) != 1 || audited() != 1 || !got.Time.Equal(t0) {
		t.Fatalf("after the retry: %d records, %d audit entries, record time %v; want 1, 1, %v", len(h), audited(), got.Time, t0)
	}
	// A different choice is a new record; so is the same choice again
	// after it.
	in.Granted = grant(false)
	if _, err := rec.Record(ctx, tenant, in); err != nil {
		t.Fatal(err)
	}
	in.Granted = grant(true)
	if _, err := rec.Record(ctx, tenant, in); err != nil {
		t.Fatal(err)
	}
	if h := history(); len(h) != 3 {
		t.Errorf("grant, withdraw, grant: %d records, want 3", len(h))
	}
	// A different notice version is a new record too.
	in.NoticeVersion = "v2"
	if _, err := rec.Record(ctx, tenant, in); err != nil {
		t.Fatal(err)
	}
	if h := history(); len(h) != 4 {
		t.Errorf("after a grant under a new notice: %d records, want 4", len(h))
	}
}

func TestRecorderRefuses(t *testing.T) {
	e := newEnv(t)
	tenant := &custos.Tenant{ID: e.tenant, Region: "eu"}
	rec := consent.NewRecorder(e.ledger, subjects.NewReader(e.store, e.ring), audit.New(e.store, nil), func() time.Time { return e.now })
	id := custos.Identifier{Type: custos.UserID, Value: "u-2"}
	for _, c := range []struct {
		name string
		in   consent.Input
		want string
	}{
		{"no granted", consent.Input{Identity: id, Purpose: "marketing"}, "granted is required"},
		{"sdk source", consent.Input{Identity: id, Purpose: "marketing", Granted: grant(true), Source: custos.SourceSDK}, "sdk"},
		{"bad ip", consent.Input{Identity: id, Purpose: "marketing", Granted: grant(true), IP: "nope"}, "not an IP address"},
		{"time without import", consent.Input{Identity: id, Purpose: "marketing", Granted: grant(true), Time: t0.Add(-time.Hour)}, "import"},
		{"future import", consent.Input{Identity: id, Purpose: "marketing", Granted: grant(true), Source: custos.SourceImport, Time: t0.Add(time.Hour)}, "future"},
		{"undeclared purpose", consent.Input{Identity: id, Purpose: "spying", Granted: grant(true)}, "spying"},
	} {
		_, err := rec.Record(t.Context(), tenant, c.in)
		if custos.ErrorCode(err) != custos.Invalid || !strings.Contains(custos.ErrorMessage(err), c.want) {
			t.Errorf("%s: Record = %v; want Invalid naming %q", c.name, err, c.want)
		}
	}
}
