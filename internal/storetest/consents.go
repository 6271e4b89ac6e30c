package storetest

import (
	"bytes"
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/custos-dev/custos"
)

func consentRec(s custos.SubjectID, tm time.Time, seq uint64, value string) custos.StoredConsent {
	return custos.StoredConsent{Subject: s, Time: tm, Seq: seq, Value: []byte(value)}
}

func sameConsent(a, b custos.StoredConsent) bool {
	return a.Subject == b.Subject && a.Time.Equal(b.Time) && a.Seq == b.Seq && bytes.Equal(a.Value, b.Value)
}

func formatConsents(cs []custos.StoredConsent) string {
	var b strings.Builder
	b.WriteString("[")
	for i, c := range cs {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "{%s %s #%d %q}", c.Subject, c.Time.UTC().Format(time.RFC3339Nano), c.Seq, c.Value)
	}
	b.WriteString("]")
	return b.String()
}

// checkConsents checks that the subject's consent records are exactly
// want, in contract order (Time, then Seq).
func checkConsents(t *testing.T, st custos.Store, ten custos.TenantID, s custos.SubjectID, want []custos.StoredConsent) {
	t.Helper()
	var got []custos.StoredConsent
	err := st.Consents(t.Context(), ten, s, func(c custos.StoredConsent) (bool, error) {
		got = append(got, c)
		return true, nil
	})
	if err != nil {
		t.Fatalf("Consents(tenant %s, subject %s) = %v, want nil", ten, s, err)
	}
	want = slices.Clone(want)
	slices.SortFunc(want, func(a, b custos.StoredConsent) int { return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.Seq, b.Seq)) })
	if !slices.EqualFunc(got, want, sameConsent) {
		t.Errorf("Consents(tenant %s, subject %s):\ngot  %s\nwant %s", ten, s, formatConsents(got), formatConsents(want))
	}
}

// testConsents checks the consent ledger's storage: order by time then
// sequence number, replacement of the same key, early stop, and that a
// subject's records go with DeleteSubjects and stay apart from its
// neighbours', its events' and other tenants'.
func testConsents(t *testing.T, open func(*testing.T) custos.Store) {
	t.Run("order and replace", func(t *testing.T) {
		st := open(t)
		ten := newTenant(t, st)
		s := custos.NewSubjectID()
		checkConsents(t, st, ten, s, nil)
		recs := []custos.StoredConsent{
			consentRec(s, at(10), 2, "b"),
			consentRec(s, at(10), 1, "a"),
			consentRec(s, time.Date(1969, 7, 20, 0, 0, 0, 0, time.UTC), 7, "1969"),
			consentRec(s, at(10), math.MaxUint64, "max"),
			consentRec(s, at(5), 0, "zero seq"),
			consentRec(s, time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC), 3, "2200"),
		}
		apply(t, st, &custos.Write{Tenant: ten, Consents: recs[:3]})
		apply(t, st, &custos.Write{Tenant: ten, Consents: recs[3:]})
		checkConsents(t, st, ten, s, recs)
		// The same subject, time and sequence number replaces.
		again := consentRec(s, at(10), 1, "a again")
		apply(t, st, &custos.Write{Tenant: ten, Consents: []custos.StoredConsent{again}})
		checkConsents(t, st, ten, s, append(slices.Delete(slices.Clone(recs), 1, 2), again))
		// fn returning false stops the walk.
		n := 0
		if err := st.Consents(t.Context(), ten, s, func(custos.StoredConsent) (bool, error) { n++; return n < 2, nil }); err != nil || n != 2 {
			t.Errorf("Consents stopping after 2: called %d times, error %v; want 2, nil", n, err)
		}
		// Consent records are neither events nor a profile.
		checkEvents(t, st, ten, s, nil)
		checkSpan(t, st, ten, s, nil)
		checkNoProfile(t, st, ten, s)
	})
	for _, pair := range neighbourPairs() {
		t.Run("delete subject, "+pair.name, func(t *testing.T) {
			st := open(t)
			ten := newTenant(t, st)
			a, b := custos.SubjectID(pair.a), custos.SubjectID(pair.b)
			da, db := populate(t, st, ten, a, "a"), populate(t, st, ten, b, "b")
			ca := []custos.StoredConsent{consentRec(a, at(1), 1, "a1"), consentRec(a, at(2), 2, "a2")}
			cb := []custos.StoredConsent{consentRec(b, at(1), 1, "b1")}
			apply(t, st, &custos.Write{Tenant: ten, Consents: append(slices.Clone(ca), cb...)})
			checkConsents(t, st, ten, a, ca)
			checkConsents(t, st, ten, b, cb)
			checkIntact(t, st, da)
			checkIntact(t, st, db)
			apply(t, st, &custos.Write{Tenant: ten, DeleteSubjects: []custos.SubjectID{a}})
			checkConsents(t, st, ten, a, nil)
			checkErased(t, st, ten, a)
			checkConsents(t, st, ten, b, cb)
			checkIntact(t, st, db)
		})
	}
	t.Run("delete before put", func(t *testing.T) {
		st := open(t)
		ten := newTenant(t, st)
		s := custos.NewSubjectID()
		apply(t, st, &custos.Write{Tenant: ten, Consents: []custos.StoredConsent{consentRec(s, at(1), 1, "old")}})
		fresh := consentRec(s, at(2), 2, "new")
		apply(t, st, &custos.Write{Tenant: ten, DeleteSubjects: []custos.SubjectID{s}, Consents: []custos.StoredConsent{fresh}})
		checkConsents(t, st, ten, s, []custos.StoredConsent{fresh})
	})
	t.Run("tenant isolation", func(t *testing.T) {
		st := open(t)
		ta, tb := newTenant(t, st), newTenant(t, st)
		s := custos.NewSubjectID()
		ca := []custos.StoredConsent{consentRec(s, at(1), 1, "tenant a")}
		apply(t, st, &custos.Write{Tenant: ta, Consents: ca})
		checkConsents(t, st, tb, s, nil)
		apply(t, st, &custos.Write{Tenant: tb, DeleteSubjects: []custos.SubjectID{s}})
		checkConsents(t, st, ta, s, ca)
		if err := st.DeleteTenant(t.Context(), ta); err != nil {
			t.Fatalf("DeleteTenant = %v", err)
		}
		createTenant(t, st, ta)
		checkConsents(t, st, ta, s, nil)
	})
	t.Run("returned copies", func(t *testing.T) {
		st := open(t)
		ten := newTenant(t, st)
		s := custos.NewSubjectID()
		in := consentRec(s, at(1), 1, "value")
		apply(t, st, &custos.Write{Tenant: ten, Consents: []custos.StoredConsent{in}})
		in.Value[0] = 'X' // the store must not keep the caller's slice
		var first []byte
		st.Consents(t.Context(), ten, s, func(c custos.StoredConsent) (bool, error) { first = c.Value; return true, nil })
		if string(first) != "value" {
			t.Fatalf("Consents returned %q, want %q", first, "value")
		}
		first[0] = 'Y'
		checkConsents(t, st, ten, s, []custos.StoredConsent{consentRec(s, at(1), 1, "value")})
	})
}
