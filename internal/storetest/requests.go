package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/custos-dev/custos"
)

func testRequests(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	ctx := context.Background()
	a, b := newTenant(t, st), newTenant(t, st)
	base := time.Date(2026, 1, 31, 10, 0, 0, 0, time.UTC)
	for i, id := range []string{"req_1", "req_2", "req_3"} {
		r := &custos.Request{ID: id, Tenant: a, Type: custos.Suppress, Status: custos.Pending, IdentityType: custos.Email,
			Subject: custos.NewSubjectID(), Source: "api", ReceivedAt: base.Add(time.Duration(i) * time.Hour),
			DueAt: base.AddDate(0, 1, 0), OriginalDueAt: base.AddDate(0, 1, 0), UpdatedAt: base}
		if err := st.PutRequest(ctx, r); err != nil {
			t.Fatalf("PutRequest(%s): %v", id, err)
		}
	}
	got, err := st.Request(ctx, a, "req_2")
	if err != nil {
		t.Fatal(err)
	}
	if got.Type != custos.Suppress || got.IdentityType != custos.Email || got.Source != "api" || !got.ReceivedAt.Equal(base.Add(time.Hour)) {
		t.Errorf("Request(req_2) = %+v, want the stored fields back", got)
	}
	// Replacing keeps one record with the new status.
	got.Status = custos.Completed
	if err := st.PutRequest(ctx, got); err != nil {
		t.Fatal(err)
	}
	var listed []string
	if err := st.Requests(ctx, a, func(r *custos.Request) bool { listed = append(listed, r.ID+":"+string(r.Status)); return true }); err != nil {
		t.Fatal(err)
	}
	if want := []string{"req_3:pending", "req_2:completed", "req_1:pending"}; !slices.Equal(listed, want) {
		t.Errorf("Requests = %v, want %v (newest id first)", listed, want)
	}
	n := 0
	if err := st.Requests(ctx, a, func(*custos.Request) bool { n++; return false }); err != nil || n != 1 {
		t.Errorf("Requests stopping after one: called %d times (%v), want 1", n, err)
	}
	// Another tenant sees none of them.
	if _, err := st.Request(ctx, b, "req_1"); custos.ErrorCode(err) != custos.NotFound {
		t.Errorf("Request of tenant A through tenant B: err = %v, want not found", err)
	}
	if err := st.Requests(ctx, b, func(r *custos.Request) bool { t.Errorf("tenant B lists %s", r.ID); return true }); err != nil {
		t.Fatal(err)
	}
}

func testFlags(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	ctx := context.Background()
	a, b := newTenant(t, st), newTenant(t, st)
	s1, s2 := custos.NewSubjectID(), custos.NewSubjectID()
	objected := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	apply(t, st, &custos.Write{Tenant: a, Flags: []custos.FlagsRecord{
		{Subject: s1, Flags: custos.SubjectFlags{Suppressed: true}},
		{Subject: s2, Flags: custos.SubjectFlags{Restricted: true, ObjectedAt: objected}},
	}}, &custos.Write{Tenant: b, Flags: []custos.FlagsRecord{{Subject: s1, Flags: custos.SubjectFlags{Restricted: true}}}})
	type key struct {
		t custos.TenantID
		s custos.SubjectID
	}
	read := func() map[key]custos.SubjectFlags {
		t.Helper()
		out := map[key]custos.SubjectFlags{}
		if err := st.EachFlags(ctx, func(tn custos.TenantID, r custos.FlagsRecord) error {
			out[key{tn, r.Subject}] = r.Flags
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	got := read()
	if len(got) != 3 || !got[key{a, s1}].Suppressed || !got[key{a, s2}].Restricted || !got[key{a, s2}].ObjectedAt.Equal(objected) ||
		!got[key{b, s1}].Restricted || got[key{b, s1}].Suppressed {
		t.Errorf("EachFlags = %+v, want each tenant's flags as written", got)
	}
	// Zero flags delete the record.
	apply(t, st, &custos.Write{Tenant: a, Flags: []custos.FlagsRecord{{Subject: s1}}})
	if got := read(); len(got) != 2 {
		t.Errorf("after clearing a's s1: EachFlags = %+v, want 2 records", got)
	}
}
