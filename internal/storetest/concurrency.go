package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/custos-dev/custos"
)

// testConcurrency has writers apply and read back at once while readers
// scan the same subjects. Run it under the race detector. Only t.Errorf is
// used off the test goroutine.
func testConcurrency(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	ctx := t.Context()
	tenants := []custos.TenantID{newTenant(t, st), newTenant(t, st)}
	const writers, rounds, readers = 8, 12, 4
	subjects := make([]custos.SubjectID, writers)
	links := make([]custos.IdentifierHash, writers)
	for i := range subjects {
		subjects[i], links[i] = custos.NewSubjectID(), identifierHash()
	}
	hot := custos.NewSubjectID() // every writer adds to it

	done := make(chan struct{})
	var readersDone sync.WaitGroup
	for r := range readers {
		readersDone.Go(func() {
			for i := r; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				if !readAcrossTenants(t, st, tenants, subjects[i%writers]) ||
					!readConsistent(t, st, tenants[i/writers%len(tenants)], subjects[i%writers]) {
					return // one report per reader is enough
				}
			}
		})
	}

	var writersDone sync.WaitGroup
	for w := range writers {
		writersDone.Go(func() {
			s := subjects[w]
			mine := make([][]custos.StoredEvent, len(tenants))
			for r := range rounds {
				// Each round writes both tenants in one Apply: two events
				// (one earlier than all before it), the profile naming the
				// round, the link and a dedup record.
				var ws []*custos.Write
				var seen []custos.Seen
				for k, ten := range tenants {
					es := []custos.StoredEvent{
						event(s, at(r), messageHash(), fmt.Sprintf("w%d r%d t%d late", w, r, k)),
						event(s, at(-r), messageHash(), fmt.Sprintf("w%d r%d t%d early", w, r, k)),
					}
					mine[k] = append(mine[k], es...)
					sn := custos.Seen{ID: es[0].ID, Subject: s, Time: es[0].Time}
					seen = append(seen, sn)
					wr := &custos.Write{
						Tenant:   ten,
						Events:   es,
						Profiles: []custos.StoredProfile{{Subject: s, Value: fmt.Appendf(nil, "w%d r%d t%d", w, r, k)}},
						Links:    []custos.Link{{Hash: links[w], Subject: s}},
						Seen:     []custos.Seen{sn},
					}
					if k == 0 {
						wr.Events = append(wr.Events, event(hot, at(r), messageHash(), fmt.Sprintf("hot w%d r%d", w, r)))
					}
					ws = append(ws, wr)
				}
				wait, err := st.Apply(ctx, ws)
				if err != nil {
					t.Errorf("writer %d round %d: Apply = %v, want nil", w, r, err)
					return
				}
				if err := wait(); err != nil {
					t.Errorf("writer %d round %d: wait() = %v, want nil", w, r, err)
					return
				}
				// Everything applied so far is readable now.
				for k, ten := range tenants {
					got, err := collectEvents(ctx, st, ten, s, nil)
					if want := sorted(mine[k]); err != nil || !slices.EqualFunc(got, want, sameEvent) {
						t.Errorf("writer %d round %d: Events(tenant %s, subject %s) after wait = %s, %v; want %s, nil",
							w, r, ten, s, formatEvents(got), err, formatEvents(want))
						return
					}
					checkProfile(t, st, ten, s, fmt.Sprintf("w%d r%d t%d", w, r, k))
					checkSubject(t, st, ten, links[w], s)
					checkSeen(t, st, ten, seen[k])
				}
			}
		})
	}
	writersDone.Wait()
	close(done)
	readersDone.Wait()

	hotEvents := listEvents(t, st, tenants[0], hot, nil)
	if len(hotEvents) != writers*rounds {
		t.Errorf("Events(tenant %s, subject %s) written to by every writer: got %d events, want %d",
			tenants[0], hot, len(hotEvents), writers*rounds)
	}
}

// profileRound returns the round named by a profile the writers wrote, or
// -1 if there is none yet.
func profileRound(t *testing.T, st custos.Store, ten custos.TenantID, s custos.SubjectID) (int, bool) {
	profile, err := st.Profile(t.Context(), ten, s)
	if errors.Is(err, custos.ErrNotFound) {
		return -1, true
	}
	if err != nil {
		t.Errorf("concurrent Profile(tenant %s, subject %s) = %v, want nil or custos.ErrNotFound", ten, s, err)
		return 0, false
	}
	var w, r, k int
	if _, err := fmt.Sscanf(string(profile), "w%d r%d t%d", &w, &r, &k); err != nil {
		t.Errorf("concurrent Profile(tenant %s, subject %s) = %q, not a profile the test wrote", ten, s, profile)
		return 0, false
	}
	return r, true
}

// readAcrossTenants checks that the Writes of one Apply become visible
// together: each round writes the subject's profile in every tenant in one
// Apply, so once a read sees round r in the first tenant, a later read of
// the last tenant must see round r or a later one.
func readAcrossTenants(t *testing.T, st custos.Store, tenants []custos.TenantID, s custos.SubjectID) bool {
	first, ok := profileRound(t, st, tenants[0], s)
	if !ok {
		return false
	}
	lastTenant := tenants[len(tenants)-1]
	last, ok := profileRound(t, st, lastTenant, s)
	if !ok {
		return false
	}
	if last < first {
		t.Errorf("concurrent reads of subject %s: round %d in tenant %s, then round %d in tenant %s written by the same Apply: the Apply was seen in part",
			s, first, tenants[0], last, lastTenant)
		return false
	}
	return true
}

// readConsistent reads a subject while it is being written and reports any
// state no sequence of atomic Applies could produce: events out of order
// or of another subject, or a profile from a round whose events are missing.
// It reports whether all was well.
func readConsistent(t *testing.T, st custos.Store, ten custos.TenantID, s custos.SubjectID) bool {
	ctx := t.Context()
	ok := true
	profile, err := st.Profile(ctx, ten, s)
	if err != nil && !errors.Is(err, custos.ErrNotFound) {
		t.Errorf("concurrent Profile(tenant %s, subject %s) = %v, want nil or custos.ErrNotFound", ten, s, err)
		return false
	}
	es, err := collectEvents(ctx, st, ten, s, nil)
	if err != nil {
		t.Errorf("concurrent Events(tenant %s, subject %s) = %v, want nil", ten, s, err)
		return false
	}
	for i, e := range es {
		if e.Subject != s {
			t.Errorf("concurrent Events(tenant %s, subject %s) returned an event of subject %s", ten, s, e.Subject)
			ok = false
		}
		if i > 0 && compareEvents(es[i-1], e) >= 0 {
			t.Errorf("concurrent Events(tenant %s, subject %s) out of order: %s", ten, s, formatEvents(es[i-1:i+1]))
			ok = false
		}
	}
	if profile != nil {
		// The profile of round r was applied with the round's events, and
		// events are only added, so at least 2(r+1) must be visible.
		var w, r, k int
		if _, err := fmt.Sscanf(string(profile), "w%d r%d t%d", &w, &r, &k); err != nil {
			t.Errorf("concurrent Profile(tenant %s, subject %s) = %q, not a profile the test wrote", ten, s, profile)
			ok = false
		} else if len(es) < 2*(r+1) {
			t.Errorf("concurrent read of tenant %s, subject %s: profile %q but only %d events, want at least %d: a write was seen in part",
				ten, s, profile, len(es), 2*(r+1))
			ok = false
		}
	}
	first, last, has, err := st.EventSpan(ctx, ten, s)
	if err != nil {
		t.Errorf("concurrent EventSpan(tenant %s, subject %s) = %v, want nil", ten, s, err)
		return false
	}
	if has && first.After(last) {
		t.Errorf("concurrent EventSpan(tenant %s, subject %s) = %v, %v: first after last", ten, s, first, last)
		return false
	}
	return ok
}
