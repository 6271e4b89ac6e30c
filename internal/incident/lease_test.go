package incident_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/incident"
	"github.com/custos-dev/custos/internal/subjects"
)

// heldLeases holds every lease at once, as the only node would.
type heldLeases struct{}

func (heldLeases) Hold(ctx context.Context, _ custos.TenantID, _ string, fn func(context.Context) error) (bool, error) {
	return true, fn(ctx)
}

// fencingStore refuses incident changes as a shared store refuses a
// superseded lease holder's writes, once fence is set.
type fencingStore struct {
	incident.Store
	fence atomic.Bool
}

func (s *fencingStore) PutIncident(ctx context.Context, in *custos.Incident) error {
	if s.fence.Load() {
		return &custos.Error{Code: custos.Conflict, Message: "lease incident/… has a newer holder", Err: custos.ErrFenced}
	}
	return s.Store.PutIncident(ctx, in)
}

// TestUpdateTakenOverIsUnavailable: an update whose lease passed to
// another node while it ran (the store refuses its write) is answered
// Unavailable, for the caller to retry, not as a conflict of its own; the
// incident is unchanged and a retry once the lease is held again lands.
func TestUpdateTakenOverIsUnavailable(t *testing.T) {
	e := newEnv(t, nil, nil)
	a, _ := e.tenant(t, "a", "")
	st := &fencingStore{Store: e.store}
	reg := incident.New(incident.Deps{Store: st, Tenants: e.reg, Outbox: e.outbox, Profiles: subjects.NewReader(e.store, e.ring),
		Audit: e.audit, Now: e.now, Leases: heldLeases{}})
	ctx := context.Background()
	inc, err := reg.Open(ctx, openInput(time.Now().Add(-time.Hour), a.ID))
	if err != nil {
		t.Fatal(err)
	}
	st.fence.Store(true)
	_, err = reg.Update(ctx, inc.ID, incident.UpdateInput{Message: "scope confirmed", Nature: "changed"})
	if custos.ErrorCode(err) != custos.Unavailable || !errors.Is(err, custos.ErrFenced) {
		t.Fatalf("Update under a superseded lease = %v, want Unavailable caused by ErrFenced", err)
	}
	if got, err := e.store.Incident(ctx, inc.ID); err != nil || got.Nature != inc.Nature || len(got.Updates) != len(inc.Updates) {
		t.Fatalf("incident after the refused update: %+v, %v; want unchanged", got, err)
	}
	st.fence.Store(false)
	if got, err := reg.Update(ctx, inc.ID, incident.UpdateInput{Message: "scope confirmed", Nature: "changed"}); err != nil || got.Nature != "changed" {
		t.Fatalf("Update retried = %+v, %v; want the new nature", got, err)
	}
}
