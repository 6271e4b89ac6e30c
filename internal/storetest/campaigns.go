package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/custos-dev/custos"
)

// campaign returns a campaign with every stored field set.
func campaign(ten custos.TenantID, id string, created time.Time) *custos.Campaign {
	return &custos.Campaign{
		ID: id, Tenant: ten, Purpose: "marketing", Channel: "email", Status: custos.CampaignSending,
		CreatedAt: created, DefinitionSealed: []byte("sealed <definition> of " + id),
		Progress: custos.CampaignProgress{
			Audience: 10, Sent: 3, Failed: 1, Excluded: map[string]int{"no_consent": 5, "suppressed": 1},
			StartedAt: created.Add(time.Second), UpdatedAt: created.Add(2 * time.Second),
			Cursor: custos.SubjectID(filled(0xab)),
		},
	}
}

func campaignDiff(got, want *custos.Campaign) string {
	if got == nil {
		return "campaign is nil"
	}
	g, w := fmt.Sprintf("%+v", *got), fmt.Sprintf("%+v", *want)
	if g != w || !got.CreatedAt.Equal(want.CreatedAt) {
		return fmt.Sprintf("got  %s\nwant %s", g, w)
	}
	return ""
}

func campaignIDs(t *testing.T, st custos.Store, ten custos.TenantID, limit int) []string {
	t.Helper()
	var ids []string
	err := st.Campaigns(context.Background(), ten, func(c *custos.Campaign) bool {
		ids = append(ids, c.ID)
		return len(ids) < limit
	})
	if err != nil {
		t.Fatalf("Campaigns = %v, want nil", err)
	}
	return ids
}

// testCampaigns checks the round trip of a campaign, replacement, order,
// tenant isolation, and that a definition in the clear is refused.
func testCampaigns(t *testing.T, open func(*testing.T) custos.Store) {
	ctx := context.Background()
	st := open(t)
	a, b := newTenant(t, st), newTenant(t, st)
	c1 := campaign(a, "cmp_20240517T093000_01", at(0))
	c2 := campaign(a, "cmp_20240517T093000_02", at(1))
	cb := campaign(b, "cmp_20240517T093000_01", at(2))
	cb.Channel = "webhook"
	for _, c := range []*custos.Campaign{c2, c1, cb} {
		if err := st.PutCampaign(ctx, c); err != nil {
			t.Fatalf("PutCampaign(%s) = %v, want nil", c.ID, err)
		}
	}
	got, err := st.Campaign(ctx, a, c1.ID)
	if err != nil {
		t.Fatalf("Campaign = %v, want nil", err)
	}
	if d := campaignDiff(got, c1); d != "" {
		t.Errorf("Campaign(a, %s):\n%s", c1.ID, d)
	}
	got, err = st.Campaign(ctx, b, cb.ID)
	if err != nil || got.Channel != "webhook" {
		t.Errorf("Campaign(b, %s) = %+v, %v; want tenant b's own campaign", cb.ID, got, err)
	}
	if ids := campaignIDs(t, st, a, 10); !slices.Equal(ids, []string{c1.ID, c2.ID}) {
		t.Errorf("Campaigns(a) = %v, want %v", ids, []string{c1.ID, c2.ID})
	}
	if ids := campaignIDs(t, st, a, 1); len(ids) != 1 {
		t.Errorf("Campaigns(a) stopping after one visited %v", ids)
	}
	if ids := campaignIDs(t, st, newTenant(t, st), 10); len(ids) != 0 {
		t.Errorf("Campaigns(empty tenant) = %v, want none", ids)
	}
	_, err = st.Campaign(ctx, a, "cmp_missing")
	checkNotFound(t, "Campaign(missing)", err)
	_, err = st.Campaign(ctx, newTenant(t, st), c1.ID)
	checkNotFound(t, "Campaign(other tenant)", err)

	c1.Status, c1.Progress.Sent = custos.CampaignCompleted, 9
	if err := st.PutCampaign(ctx, c1); err != nil {
		t.Fatalf("PutCampaign(replace) = %v, want nil", err)
	}
	if got, _ := st.Campaign(ctx, a, c1.ID); campaignDiff(got, c1) != "" {
		t.Errorf("after replacing: %s", campaignDiff(got, c1))
	}

	clear := campaign(a, "cmp_clear", at(3))
	clear.Definition = &custos.CampaignDefinition{Name: "plain"}
	if err := st.PutCampaign(ctx, clear); custos.ErrorCode(err) != custos.Invalid {
		t.Errorf("PutCampaign(definition in the clear) = %v, want an Invalid error", err)
	}
	if err := st.PutCampaign(ctx, campaign(a, "", at(4))); custos.ErrorCode(err) != custos.Invalid {
		t.Errorf("PutCampaign(no id) = %v, want an Invalid error", err)
	}
}

func listSends(t *testing.T, st custos.Store, ten custos.TenantID, s custos.SubjectID, since time.Time) []custos.StoredSend {
	t.Helper()
	var out []custos.StoredSend
	err := st.Sends(context.Background(), ten, s, since, func(r custos.StoredSend) (bool, error) {
		out = append(out, r)
		return true, nil
	})
	if err != nil {
		t.Fatalf("Sends = %v, want nil", err)
	}
	return out
}

func formatSends(rs []custos.StoredSend) string {
	var s string
	for _, r := range rs {
		s += fmt.Sprintf("\n  %s %s %s %q", r.Subject, r.Time.Format(time.RFC3339Nano), r.Campaign, r.Value)
	}
	return s
}

func sameSends(got, want []custos.StoredSend) bool {
	return slices.EqualFunc(got, want, func(a, b custos.StoredSend) bool {
		return a.Subject == b.Subject && a.Time.Equal(b.Time) && a.Campaign == b.Campaign && string(a.Value) == string(b.Value)
	})
}

// testSends checks send records: order by time then campaign, since,
// replacement, stopping, isolation between subjects and tenants, and that
// deleting a subject deletes its sends without making it a profile.
func testSends(t *testing.T, open func(*testing.T) custos.Store) {
	ctx := context.Background()
	for _, pair := range neighbourPairs() {
		t.Run(pair.name, func(t *testing.T) {
			st := open(t)
			ten, other := newTenant(t, st), newTenant(t, st)
			s, n := custos.SubjectID(pair.a), custos.SubjectID(pair.b)
			recs := []custos.StoredSend{
				{Subject: s, Time: at(20), Campaign: "cmp_b", Value: []byte("third")},
				{Subject: s, Time: at(10), Campaign: "cmp_b", Value: []byte("second")},
				{Subject: s, Time: at(10), Campaign: "cmp_a", Value: []byte("first")},
				{Subject: s, Time: at(86400), Campaign: "cmp_c", Value: []byte("next day")},
			}
			for _, r := range recs {
				if err := st.PutSend(ctx, ten, r); err != nil {
					t.Fatalf("PutSend = %v, want nil", err)
				}
			}
			neighbour := custos.StoredSend{Subject: n, Time: at(15), Campaign: "cmp_a", Value: []byte("neighbour")}
			if err := st.PutSend(ctx, ten, neighbour); err != nil {
				t.Fatalf("PutSend = %v, want nil", err)
			}
			if err := st.PutSend(ctx, other, custos.StoredSend{Subject: s, Time: at(12), Campaign: "cmp_a", Value: []byte("other tenant")}); err != nil {
				t.Fatalf("PutSend = %v, want nil", err)
			}
			want := []custos.StoredSend{recs[2], recs[1], recs[0], recs[3]}
			if got := listSends(t, st, ten, s, time.Time{}); !sameSends(got, want) {
				t.Errorf("Sends(from the start) =%s\nwant%s", formatSends(got), formatSends(want))
			}
			if got := listSends(t, st, ten, s, at(11)); !sameSends(got, want[2:]) {
				t.Errorf("Sends(since at(11)) =%s\nwant%s", formatSends(got), formatSends(want[2:]))
			}
			if got := listSends(t, st, ten, s, at(10)); !sameSends(got, want) {
				t.Errorf("Sends(since at(10), inclusive) =%s\nwant%s", formatSends(got), formatSends(want))
			}
			if got := listSends(t, st, ten, n, time.Time{}); !sameSends(got, []custos.StoredSend{neighbour}) {
				t.Errorf("Sends(neighbour) =%s\nwant only its own", formatSends(got))
			}
			n2 := 0
			st.Sends(ctx, ten, s, time.Time{}, func(custos.StoredSend) (bool, error) { n2++; return n2 < 2, nil })
			if n2 != 2 {
				t.Errorf("Sends stopping after 2 visited %d", n2)
			}
			// Replacing keeps one record.
			upd := recs[2]
			upd.Value = []byte("first, updated")
			if err := st.PutSend(ctx, ten, upd); err != nil {
				t.Fatalf("PutSend(replace) = %v, want nil", err)
			}
			if got := listSends(t, st, ten, s, at(10)); len(got) != 4 || string(got[0].Value) != "first, updated" {
				t.Errorf("after replacing: %s", formatSends(got))
			}
			// Sends alone are not a profile.
			var profiles []custos.SubjectID
			st.EachProfile(ctx, ten, custos.SubjectID{}, func(p custos.StoredProfile) (bool, error) {
				profiles = append(profiles, p.Subject)
				return true, nil
			})
			if len(profiles) != 0 {
				t.Errorf("EachProfile with sends and no profiles = %v, want none", profiles)
			}
			apply(t, st, &custos.Write{Tenant: ten, DeleteSubjects: []custos.SubjectID{s}})
			if got := listSends(t, st, ten, s, time.Time{}); len(got) != 0 {
				t.Errorf("Sends after deleting the subject =%s, want none", formatSends(got))
			}
			if got := listSends(t, st, ten, n, time.Time{}); len(got) != 1 {
				t.Errorf("Sends(neighbour) after deleting the subject =%s, want its one", formatSends(got))
			}
			if got := listSends(t, st, other, s, time.Time{}); len(got) != 1 {
				t.Errorf("Sends(other tenant) after deleting the subject =%s, want its one", formatSends(got))
			}
		})
	}
	t.Run("no campaign", func(t *testing.T) {
		st := open(t)
		if err := st.PutSend(ctx, newTenant(t, st), custos.StoredSend{Subject: custos.NewSubjectID(), Time: at(0), Value: []byte("x")}); custos.ErrorCode(err) != custos.Invalid {
			t.Errorf("PutSend(no campaign) = %v, want an Invalid error", err)
		}
	})
}

// testEachAudience checks the one-pass walk: every subject with a profile,
// in order, with its consents in order and its sends since the time
// given; subjects with events, consents or sends but no profile skipped;
// after, stopping, and tenant isolation.
func testEachAudience(t *testing.T, open func(*testing.T) custos.Store) {
	ctx := context.Background()
	st := open(t)
	ten, other := newTenant(t, st), newTenant(t, st)
	a, b, c, d := custos.SubjectID(filled(0x10)), custos.SubjectID(filled(0x20)), custos.SubjectID(filled(0x30)), custos.SubjectID(filled(0x40))
	cons := func(s custos.SubjectID, sec int, seq uint64) custos.StoredConsent {
		return custos.StoredConsent{Subject: s, Time: at(sec), Seq: seq, Value: []byte(fmt.Sprintf("consent %s %d", s, seq))}
	}
	apply(t, st, &custos.Write{Tenant: ten,
		Events:   []custos.StoredEvent{event(a, at(1), messageHash(), "a event"), event(c, at(1), messageHash(), "c event only")},
		Profiles: []custos.StoredProfile{{Subject: a, Value: []byte("profile a")}, {Subject: b, Value: []byte("profile b")}, {Subject: d, Value: []byte("profile d")}},
		Consents: []custos.StoredConsent{cons(a, 5, 2), cons(a, 3, 1), cons(d, 1, 1), cons(custos.SubjectID(filled(0x35)), 1, 1)},
	}, &custos.Write{Tenant: other, Profiles: []custos.StoredProfile{{Subject: b, Value: []byte("other tenant")}}})
	for _, r := range []custos.StoredSend{
		{Subject: a, Time: at(10), Campaign: "cmp_old", Value: []byte("old")},
		{Subject: a, Time: at(100), Campaign: "cmp_new", Value: []byte("new")},
		{Subject: custos.SubjectID(filled(0x38)), Time: at(100), Campaign: "cmp_x", Value: []byte("send, no profile")},
	} {
		if err := st.PutSend(ctx, ten, r); err != nil {
			t.Fatal(err)
		}
	}
	type seen struct {
		s        custos.SubjectID
		profile  string
		consents []string
		sends    []string
	}
	walk := func(after custos.SubjectID, since time.Time, limit int) []seen {
		t.Helper()
		var out []seen
		err := st.EachAudience(ctx, ten, after, since, func(r *custos.SubjectRecords) (bool, error) {
			x := seen{s: r.Profile.Subject, profile: string(r.Profile.Value)}
			for _, c := range r.Consents {
				if c.Subject != x.s {
					t.Errorf("consent of %s returned with %s", c.Subject, x.s)
				}
				x.consents = append(x.consents, fmt.Sprintf("%d@%d", c.Seq, c.Time.Sub(at(0))/time.Second))
			}
			for _, s := range r.Sends {
				x.sends = append(x.sends, s.Campaign+"="+string(s.Value))
			}
			out = append(out, x)
			return len(out) < limit, nil
		})
		if err != nil {
			t.Fatalf("EachAudience = %v", err)
		}
		return out
	}
	got := walk(custos.SubjectID{}, time.Time{}, 100)
	want := fmt.Sprint([]seen{
		{s: a, profile: "profile a", consents: []string{"1@3", "2@5"}, sends: []string{"cmp_old=old", "cmp_new=new"}},
		{s: b, profile: "profile b"},
		{s: d, profile: "profile d", consents: []string{"1@1"}},
	})
	if fmt.Sprint(got) != want {
		t.Errorf("EachAudience =\n%v\nwant\n%v", got, want)
	}
	if got := walk(custos.SubjectID{}, at(50), 100); len(got) != 3 || fmt.Sprint(got[0].sends) != "[cmp_new=new]" {
		t.Errorf("EachAudience(since at(50)) = %v; want only a's newer send", got)
	}
	if got := walk(a, time.Time{}, 100); len(got) != 2 || got[0].s != b {
		t.Errorf("EachAudience(after a) = %v; want b, d", got)
	}
	if got := walk(custos.SubjectID{}, time.Time{}, 2); len(got) != 2 {
		t.Errorf("EachAudience stopping after 2 visited %d", len(got))
	}
	var others []string
	st.EachAudience(ctx, other, custos.SubjectID{}, time.Time{}, func(r *custos.SubjectRecords) (bool, error) {
		others = append(others, string(r.Profile.Value))
		return true, nil
	})
	if fmt.Sprint(others) != "[other tenant]" {
		t.Errorf("EachAudience(other tenant) = %v", others)
	}
}

// testApplySends checks that send records written through Apply (a merge
// carrying them to another subject) are read back like PutSend's, and
// that a delete of the subject in the same Write goes first.
func testApplySends(t *testing.T, open func(*testing.T) custos.Store) {
	ctx := context.Background()
	st := open(t)
	ten := newTenant(t, st)
	from, to := custos.NewSubjectID(), custos.NewSubjectID()
	old := custos.StoredSend{Subject: from, Time: at(5), Campaign: "cmp_a", Value: []byte("old")}
	if err := st.PutSend(ctx, ten, old); err != nil {
		t.Fatalf("PutSend = %v, want nil", err)
	}
	moved := custos.StoredSend{Subject: to, Time: at(5), Campaign: "cmp_a", Value: []byte("moved")}
	apply(t, st, &custos.Write{Tenant: ten, DeleteSubjects: []custos.SubjectID{from}, Sends: []custos.StoredSend{moved}})
	if got := listSends(t, st, ten, to, time.Time{}); !sameSends(got, []custos.StoredSend{moved}) {
		t.Errorf("Sends(survivor) =%s\nwant the moved record", formatSends(got))
	}
	if got := listSends(t, st, ten, from, time.Time{}); len(got) != 0 {
		t.Errorf("Sends(deleted subject) =%s\nwant none", formatSends(got))
	}
	w := &custos.Write{Tenant: ten, Sends: []custos.StoredSend{{Subject: to, Time: at(6), Value: []byte("x")}}}
	wait, err := st.Apply(ctx, []*custos.Write{w})
	if err == nil {
		err = wait()
	}
	if custos.ErrorCode(err) != custos.Invalid {
		t.Errorf("Apply(send record without a campaign) = %v, want Invalid", err)
	}
}
