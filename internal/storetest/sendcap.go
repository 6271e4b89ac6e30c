package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/custos-dev/custos"
)

// putCapped calls PutSendCapped and reports whether it stored the
// record (false: ErrCapReached); any other error fails the test.
func putCapped(t *testing.T, st custos.Store, ten custos.TenantID, rec custos.StoredSend, since time.Time, limit int) bool {
	t.Helper()
	err := st.PutSendCapped(context.Background(), ten, rec, since, limit)
	switch {
	case err == nil:
		return true
	case errors.Is(err, custos.ErrCapReached):
		if custos.ErrorCode(err) != custos.Conflict {
			t.Errorf("PutSendCapped(%s) = %v, want a Conflict error", rec.Campaign, err)
		}
		return false
	}
	t.Fatalf("PutSendCapped(%s, limit %d) = %v, want nil or ErrCapReached", rec.Campaign, limit, err)
	return false
}

// testSendCap checks PutSendCapped's count: records of other campaigns at
// or after since count, the campaign's own record and older records do
// not, a refused record is not stored, and a negative limit is no cap.
func testSendCap(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	ten, other := newTenant(t, st), newTenant(t, st)
	s := custos.NewSubjectID()
	day := at(3600)
	send := func(c string, when time.Time) custos.StoredSend {
		return custos.StoredSend{Subject: s, Time: when, Campaign: c, Value: []byte("sealed " + c)}
	}
	// Yesterday's record and another tenant's do not count.
	if err := st.PutSend(context.Background(), ten, send("cmp_old", day.Add(-time.Hour))); err != nil {
		t.Fatal(err)
	}
	if !putCapped(t, st, other, send("cmp_x", day.Add(time.Minute)), day, 1) {
		t.Fatal("the first record of a subject in another tenant was refused")
	}
	if !putCapped(t, st, ten, send("cmp_a", day.Add(time.Minute)), day, 1) {
		t.Fatal("a first record under a cap of 1 was refused (an older record and another tenant's counted)")
	}
	// The campaign's own record is replaced, not counted.
	if !putCapped(t, st, ten, send("cmp_a", day.Add(time.Minute)), day, 1) {
		t.Error("the campaign's own record, written again, was refused")
	}
	if putCapped(t, st, ten, send("cmp_b", day.Add(2*time.Minute)), day, 1) {
		t.Error("a second campaign's record under a cap of 1 was stored")
	}
	if !putCapped(t, st, ten, send("cmp_b", day.Add(2*time.Minute)), day, 2) {
		t.Error("a second campaign's record under a cap of 2 was refused")
	}
	if putCapped(t, st, ten, send("cmp_c", day.Add(3*time.Minute)), day, 0) {
		t.Error("a record under a cap of 0 was stored")
	}
	if !putCapped(t, st, ten, send("cmp_d", day.Add(4*time.Minute)), day, -1) {
		t.Error("a record with no cap (-1) was refused")
	}
	got := listSends(t, st, ten, s, time.Time{})
	want := []custos.StoredSend{send("cmp_old", day.Add(-time.Hour)), send("cmp_a", day.Add(time.Minute)),
		send("cmp_b", day.Add(2*time.Minute)), send("cmp_d", day.Add(4*time.Minute))}
	if !sameSends(got, want) {
		t.Errorf("Sends =%s\nwant%s", formatSends(got), formatSends(want))
	}
	if err := st.PutSendCapped(context.Background(), ten, custos.StoredSend{Subject: s, Time: day, Value: []byte("x")}, day, 1); custos.ErrorCode(err) != custos.Invalid {
		t.Errorf("PutSendCapped(no campaign) = %v, want an Invalid error", err)
	}
}

// testSendCapRace has campaigns on both handles write their first
// record for one subject at once under a cap of 1, as campaigns run by
// two nodes do: exactly one is stored, every round.
func testSendCapRace(t *testing.T, a, b custos.Store) {
	ten := newTenant(t, a)
	for round := range 5 {
		s := custos.NewSubjectID()
		day := at(round * 86400)
		const racers = 6
		var wg sync.WaitGroup
		var mu sync.Mutex
		stored := 0
		for i := range racers {
			st := []custos.Store{a, b}[i%2]
			wg.Go(func() {
				rec := custos.StoredSend{Subject: s, Time: day.Add(time.Duration(i) * time.Second), Campaign: fmt.Sprintf("cmp_%d", i), Value: []byte("x")}
				err := st.PutSendCapped(context.Background(), ten, rec, day, 1)
				if err != nil && !errors.Is(err, custos.ErrCapReached) {
					t.Errorf("round %d: PutSendCapped = %v, want nil or ErrCapReached", round, err)
					return
				}
				if err == nil {
					mu.Lock()
					stored++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if got := listSends(t, b, ten, s, time.Time{}); stored != 1 || len(got) != 1 {
			t.Errorf("round %d: %d of %d racing campaigns stored a record under a cap of 1 (%d records read back), want 1", round, stored, racers, len(got))
		}
	}
}
