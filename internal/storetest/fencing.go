package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/testenv"
)

// SharedStore is a store several processes share, with its leases.
type SharedStore interface {
	custos.Store
	custos.LeaseStore
}

// RunFencing runs the fencing cases of a store several processes share:
// the writes a lease's work makes (an outbox attempt, an erasure step, a
// campaign's send records and progress, an incident's changes and its
// notices' records, audit entries, an Apply of the ingest writer's for
// such work) are accepted while their fence is current and refused,
// changing nothing, once another holder took the lease over or got it
// after a release. open returns two handles on one new, empty store, as
// two nodes hold them.
func RunFencing(t *testing.T, open func(t *testing.T) (a, b SharedStore)) {
	tests := []struct {
		name string
		fn   func(t *testing.T, a, b SharedStore)
	}{
		{"CurrentAccepted", testFenceCurrent},
		{"TakenOverRefused", testFenceTakenOver},
		{"ReleasedRefused", testFenceReleased},
		{"EveryFenceChecked", testFenceNested},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := open(t)
			tc.fn(t, a, b)
		})
	}
}

// fencedWrites are the writes a store checks fences on, each writing
// the value v (so that a refused write is seen not to have landed).
func fencedWrites(ten custos.TenantID, s custos.SubjectID) map[string]func(ctx context.Context, st custos.Store, v string) error {
	return map[string]func(ctx context.Context, st custos.Store, v string) error{
		"PutDelivery": func(ctx context.Context, st custos.Store, v string) error {
			d := delivery(ten, "dlv_fenced", "req_fenced", at(0), at(1))
			d.LastError = v
			return st.PutDelivery(ctx, &d, []byte(v))
		},
		"PutRequest": func(ctx context.Context, st custos.Store, v string) error {
			return st.PutRequest(ctx, &custos.Request{ID: "req_fenced", Tenant: ten, Type: custos.Erasure, IdentityType: custos.UserID, Step: v, ReceivedAt: at(0)})
		},
		"PutSend": func(ctx context.Context, st custos.Store, v string) error {
			return st.PutSend(ctx, ten, custos.StoredSend{Subject: s, Time: at(5), Campaign: "cmp_fenced", Value: []byte(v)})
		},
		"PutSendCapped": func(ctx context.Context, st custos.Store, v string) error {
			return st.PutSendCapped(ctx, ten, custos.StoredSend{Subject: s, Time: at(6), Campaign: "cmp_capped", Value: []byte(v)}, at(0), 3)
		},
		"PutCampaign": func(ctx context.Context, st custos.Store, v string) error {
			c := campaign(ten, "cmp_fenced", at(0))
			c.Error = v
			return st.PutCampaign(ctx, c)
		},
		"PutIncident": func(ctx context.Context, st custos.Store, v string) error {
			in := incident("inc_fenced", ten)
			in.Nature = v
			return st.PutIncident(ctx, in)
		},
		"PutIncidentNotification": func(ctx context.Context, st custos.Store, v string) error {
			n := notification(ten, "inc_fenced")
			n.Messages[0].Channels[0].Attempts[0].Error = v
			return st.PutIncidentNotification(ctx, n)
		},
		"AppendAudit": func(ctx context.Context, st custos.Store, v string) error {
			head, _, err := st.LastAudit(context.Background(), ten)
			if err != nil {
				return err
			}
			return st.AppendAudit(ctx, ten, &custos.AuditEntry{Seq: head.Seq + 1, Time: at(0), Actor: "system", Action: v})
		},
		// The ingest writer's writes for work under a lease: an erasure's
		// tombstones and deletions, the retention sweep's deletions.
		"Apply": func(ctx context.Context, st custos.Store, v string) error {
			wait, err := st.Apply(ctx, []*custos.Write{{Tenant: ten, Profiles: []custos.StoredProfile{{Subject: s, Value: []byte(v)}}}})
			if err != nil {
				return err
			}
			return wait()
		},
	}
}

// fencedValues reads back what each of fencedWrites stored.
func fencedValues(t *testing.T, st custos.Store, ten custos.TenantID, s custos.SubjectID) map[string]string {
	t.Helper()
	ctx := context.Background()
	got := map[string]string{}
	ds, err := st.Deliveries(ctx, ten, "req_fenced")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		got["PutDelivery"] = d.LastError
	}
	if r, err := st.Request(ctx, ten, "req_fenced"); err == nil {
		got["PutRequest"] = r.Step
	} else if custos.ErrorCode(err) != custos.NotFound {
		t.Fatal(err)
	}
	for _, ss := range listSends(t, st, ten, s, time.Time{}) {
		switch ss.Campaign {
		case "cmp_fenced":
			got["PutSend"] = string(ss.Value)
		case "cmp_capped":
			got["PutSendCapped"] = string(ss.Value)
		}
	}
	if c, err := st.Campaign(ctx, ten, "cmp_fenced"); err == nil {
		got["PutCampaign"] = c.Error
	} else if custos.ErrorCode(err) != custos.NotFound {
		t.Fatal(err)
	}
	if e, ok, err := st.LastAudit(ctx, ten); err != nil {
		t.Fatal(err)
	} else if ok {
		got["AppendAudit"] = e.Action
	}
	if in, err := st.Incident(ctx, "inc_fenced"); err == nil {
		got["PutIncident"] = in.Nature
	} else if custos.ErrorCode(err) != custos.NotFound {
		t.Fatal(err)
	}
	if n, err := st.IncidentNotification(ctx, ten, "inc_fenced"); err == nil {
		got["PutIncidentNotification"] = n.Messages[0].Channels[0].Attempts[0].Error
	} else if custos.ErrorCode(err) != custos.NotFound {
		t.Fatal(err)
	}
	if p, err := st.Profile(ctx, ten, s); err == nil {
		got["Apply"] = string(p)
	} else if custos.ErrorCode(err) != custos.NotFound {
		t.Fatal(err)
	}
	return got
}

// checkFenced makes every fenced write with ctx through st and checks
// each is accepted (refused false) or refused with ErrFenced, and that
// the values read back are want's.
func checkFenced(t *testing.T, ctx context.Context, st custos.Store, ten custos.TenantID, s custos.SubjectID, v string, refused bool, want string) {
	t.Helper()
	for name, write := range fencedWrites(ten, s) {
		err := write(ctx, st, v)
		switch {
		case refused && (!errors.Is(err, custos.ErrFenced) || custos.ErrorCode(err) != custos.Conflict):
			t.Errorf("%s with a stale fence = %v, want a Conflict error caused by ErrFenced", name, err)
		case !refused && err != nil:
			t.Errorf("%s with a current fence = %v, want nil", name, err)
		}
	}
	got := fencedValues(t, st, ten, s)
	for name := range fencedWrites(ten, s) {
		if got[name] != want {
			t.Errorf("after the %s writes: %s stored %q, want %q", v, name, got[name], want)
		}
	}
}

func fenced(ctx context.Context, ten custos.TenantID, name string, token uint64) context.Context {
	return custos.WithFence(ctx, custos.Fence{Tenant: ten, Lease: name, Token: token})
}

// testFenceCurrent: writes under the current holder's fence are
// accepted, through either handle, also once the lease expired while
// nobody took it over; writes without a fence are never checked.
func testFenceCurrent(t *testing.T, a, b SharedStore) {
	ten, s := newTenant(t, a), custos.NewSubjectID()
	token := acquireToken(t, a, ten, "request/r1", "h1", 100*time.Millisecond)
	ctx := fenced(context.Background(), ten, "request/r1", token)
	checkFenced(t, ctx, a, ten, s, "first", false, "first")
	checkFenced(t, ctx, b, ten, s, "second", false, "second")
	time.Sleep(200 * time.Millisecond) // past the lease's expiry, on purpose: nobody took it
	checkFenced(t, ctx, b, ten, s, "expired", false, "expired")
	checkFenced(t, context.Background(), b, ten, s, "unfenced", false, "unfenced")
}

// testFenceTakenOver: once another holder took the lease over, the old
// holder's writes are refused through either handle and change nothing;
// the new holder's are accepted.
func testFenceTakenOver(t *testing.T, a, b SharedStore) {
	ten, s := newTenant(t, a), custos.NewSubjectID()
	old := acquireToken(t, a, ten, "outbox", "stalled", 100*time.Millisecond)
	oldCtx := fenced(context.Background(), ten, "outbox", old)
	checkFenced(t, oldCtx, a, ten, s, "before", false, "before")
	var cur uint64
	testenv.Poll(t, 10*time.Second, "take-over of the expired lease", func() bool {
		cur = acquireToken(t, b, ten, "outbox", "alive", time.Minute)
		return cur != 0
	})
	checkFenced(t, oldCtx, a, ten, s, "late, first handle", true, "before")
	checkFenced(t, oldCtx, b, ten, s, "late, second handle", true, "before")
	checkFenced(t, fenced(context.Background(), ten, "outbox", cur), b, ten, s, "new holder", false, "new holder")
	// The refusal names the lease and both tokens.
	err := fencedWrites(ten, s)["PutRequest"](oldCtx, a, "late")
	if msg := custos.ErrorMessage(err); msg == "" || !strings.Contains(msg, "outbox") || !strings.Contains(msg, fmt.Sprint(cur)) || !strings.Contains(msg, fmt.Sprint(old)) {
		t.Errorf("refusal message %q; want it to name the lease and tokens %d and %d", msg, cur, old)
	}
}

// testFenceReleased: after the holder released the lease and another got
// it, the first holder's writes are refused (a released lease keeps its
// count of holders).
func testFenceReleased(t *testing.T, a, b SharedStore) {
	ten, s := newTenant(t, a), custos.NewSubjectID()
	first := acquireToken(t, a, ten, "campaign/c1", "h1", time.Minute)
	if err := a.ReleaseLease(context.Background(), ten, "campaign/c1", "h1"); err != nil {
		t.Fatal(err)
	}
	if acquireToken(t, b, ten, "campaign/c1", "h2", time.Minute) == 0 {
		t.Fatal("a released lease was refused")
	}
	checkFenced(t, fenced(context.Background(), ten, "campaign/c1", first), a, ten, s, "after release", true, "")
}

// testFenceNested: work under two leases writes under both fences; one
// of them stale is enough for a refusal.
func testFenceNested(t *testing.T, a, b SharedStore) {
	ten, s := newTenant(t, a), custos.NewSubjectID()
	outer := acquireToken(t, a, custos.TenantID{}, "request-resume", "h1", time.Minute)
	inner := acquireToken(t, a, ten, "request/r9", "h1", time.Minute)
	ctx := fenced(fenced(context.Background(), custos.TenantID{}, "request-resume", outer), ten, "request/r9", inner)
	checkFenced(t, ctx, a, ten, s, "both current", false, "both current")
	stale := fenced(fenced(context.Background(), custos.TenantID{}, "request-resume", outer+1), ten, "request/r9", inner)
	checkFenced(t, stale, b, ten, s, "outer stale", true, "both current")
}
