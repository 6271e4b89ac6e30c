package storetest

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/custos-dev/custos"
)

// delivery returns a delivery with every stored field set, due at nextAt.
// Body and Secret stay nil: they reach a store only inside the sealed
// bytes, so the suite neither sets nor compares them.
func delivery(ten custos.TenantID, id, requestID string, createdAt, nextAt time.Time) custos.Delivery {
	return custos.Delivery{
		ID:         id,
		Tenant:     ten,
		Kind:       "request.status",
		RequestID:  requestID,
		Target:     "callback",
		URL:        "https://example.test/hooks/" + id + "?q=<&>",
		CreatedAt:  createdAt,
		Attempts:   2,
		NextAt:     nextAt,
		LastStatus: 503,
		LastError:  `upstream said "busy" — retry`,
	}
}

// deliveryDiff lists the fields in which got differs from want, apart
// from Body and Secret, which travel in the sealed bytes.
func deliveryDiff(got, want custos.Delivery) []string {
	var d []string
	if got.Tenant != want.Tenant {
		d = append(d, fmt.Sprintf("Tenant %s, want %s", got.Tenant, want.Tenant))
	}
	for _, f := range []struct{ name, got, want string }{
		{"ID", got.ID, want.ID},
		{"Kind", got.Kind, want.Kind},
		{"RequestID", got.RequestID, want.RequestID},
		{"Target", got.Target, want.Target},
		{"URL", got.URL, want.URL},
		{"LastError", got.LastError, want.LastError},
	} {
		if f.got != f.want {
			d = append(d, fmt.Sprintf("%s %q, want %q", f.name, f.got, f.want))
		}
	}
	for _, f := range []struct {
		name      string
		got, want time.Time
	}{
		{"CreatedAt", got.CreatedAt, want.CreatedAt},
		{"NextAt", got.NextAt, want.NextAt},
		{"DeliveredAt", got.DeliveredAt, want.DeliveredAt},
	} {
		if !f.got.Equal(f.want) {
			d = append(d, fmt.Sprintf("%s %v, want %v", f.name, f.got, f.want))
		}
	}
	if got.Attempts != want.Attempts {
		d = append(d, fmt.Sprintf("Attempts %d, want %d", got.Attempts, want.Attempts))
	}
	if got.LastStatus != want.LastStatus {
		d = append(d, fmt.Sprintf("LastStatus %d, want %d", got.LastStatus, want.LastStatus))
	}
	if got.Final != want.Final {
		d = append(d, fmt.Sprintf("Final %t, want %t", got.Final, want.Final))
	}
	return d
}

func deliveryIDs(ds []custos.Delivery) string {
	var b strings.Builder
	b.WriteString("[")
	for i, d := range ds {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s/%s", d.Tenant.String()[:8], d.ID)
	}
	b.WriteString("]")
	return b.String()
}

// sealedDelivery is a delivery as stored with its sealed bytes.
type sealedDelivery struct {
	d      custos.Delivery
	sealed []byte
}

func putDelivery(t *testing.T, st custos.OutboxStore, d custos.Delivery, sealed []byte) {
	t.Helper()
	if err := st.PutDelivery(t.Context(), &d, sealed); err != nil {
		t.Fatalf("PutDelivery(%s) = %v, want nil", d.ID, err)
	}
}

// checkDue checks that DueDeliveries(now, limit) returns exactly want, in
// order, each with its sealed bytes.
func checkDue(t *testing.T, st custos.OutboxStore, now time.Time, limit int, want []sealedDelivery) {
	t.Helper()
	checkDueQuery(t, st, custos.DueQuery{Now: now, Limit: limit}, want)
}

// checkDueQuery checks that DueDeliveries(q) returns exactly want, in
// order, each with its sealed bytes.
func checkDueQuery(t *testing.T, st custos.OutboxStore, q custos.DueQuery, want []sealedDelivery) {
	t.Helper()
	what := fmt.Sprintf("DueDeliveries(%s, limit %d)", q.Now.Format(time.RFC3339Nano), q.Limit)
	if q.After != nil {
		what += fmt.Sprintf(" after (%s, %s, %s)", q.After.NextAt.Format(time.RFC3339Nano), q.After.Tenant.String()[:8], q.After.ID)
	}
	if len(q.Skip) > 0 {
		what += fmt.Sprintf(" skipping %d tenants", len(q.Skip))
	}
	ds, sealed, err := st.DueDeliveries(t.Context(), q)
	if err != nil {
		t.Errorf("%s = %v, want nil", what, err)
		return
	}
	if len(sealed) != len(ds) {
		t.Errorf("%s returned %d deliveries and %d sealed parts, want as many of each", what, len(ds), len(sealed))
		return
	}
	wantDs := make([]custos.Delivery, len(want))
	for i, w := range want {
		wantDs[i] = w.d
	}
	if got, want := deliveryIDs(ds), deliveryIDs(wantDs); got != want {
		t.Errorf("%s:\ngot  %s\nwant %s", what, got, want)
		return
	}
	for i := range ds {
		for _, d := range deliveryDiff(ds[i], want[i].d) {
			t.Errorf("%s: delivery %s: %s", what, ds[i].ID, d)
		}
		if !bytes.Equal(sealed[i], want[i].sealed) {
			t.Errorf("%s: delivery %s: sealed %q, want %q", what, ds[i].ID, sealed[i], want[i].sealed)
		}
	}
}

// checkDeliveries checks that Deliveries(ten, requestID) returns exactly
// want, in order.
func checkDeliveries(t *testing.T, st custos.OutboxStore, ten custos.TenantID, requestID string, want []custos.Delivery) {
	t.Helper()
	what := fmt.Sprintf("Deliveries(tenant %s, request %q)", ten, requestID)
	got, err := st.Deliveries(t.Context(), ten, requestID)
	if err != nil {
		t.Errorf("%s = %v, want nil", what, err)
		return
	}
	if g, w := deliveryIDs(got), deliveryIDs(want); g != w {
		t.Errorf("%s:\ngot  %s\nwant %s", what, g, w)
		return
	}
	for i := range got {
		for _, d := range deliveryDiff(got[i], want[i]) {
			t.Errorf("%s: delivery %s: %s", what, got[i].ID, d)
		}
	}
}

func testOutboxDue(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	a, b := newTenant(t, st), newTenant(t, st)
	// Due times in zones whose wall clocks sort against the instants, ids
	// and creation times that sort against the due order, and sealed
	// bytes of every kind.
	east, west := time.FixedZone("UTC+2", 2*60*60), time.FixedZone("UTC-5", -5*60*60)
	large := make([]byte, 64<<10)
	rand.Read(large)
	var (
		oldest    = sealedDelivery{delivery(a, "dlv_z", "req_1", at(-10), at(-60).In(east)), []byte{0x00, 0xff, 0x00}}
		older     = sealedDelivery{delivery(b, "dlv_y", "req_1", at(-20), at(-30).In(west)), large}
		dueNow    = sealedDelivery{delivery(a, "dlv_x", "req_2", at(-30), at(0)), []byte("sealed x")}
		dueSoon   = sealedDelivery{delivery(b, "dlv_w", "req_2", at(-40), at(0).Add(time.Microsecond)), []byte{}}
		dueLater  = sealedDelivery{delivery(a, "dlv_v", "req_3", at(-50), at(3600).In(west)), []byte("sealed v")}
		delivered = sealedDelivery{delivery(a, "dlv_a", "req_1", at(-90), at(-90)), []byte("sealed a")}
		refused   = sealedDelivery{delivery(b, "dlv_b", "req_1", at(-80), at(-120)), []byte("sealed b")}
	)
	delivered.d.Final, delivered.d.DeliveredAt, delivered.d.LastStatus, delivered.d.LastError = true, at(-85), 200, ""
	refused.d.Final, refused.d.LastStatus = true, 403
	for _, sd := range []sealedDelivery{dueLater, delivered, older, dueNow, refused, dueSoon, oldest} {
		putDelivery(t, st, sd.d, sd.sealed)
	}

	all := []sealedDelivery{oldest, older, dueNow, dueSoon, dueLater}
	tests := []struct {
		name  string
		now   time.Time
		limit int
		want  []sealedDelivery
	}{
		{"before the first", at(-61), 10, nil},
		{"at the first", at(-60), 10, all[:1]},
		{"just after the first", at(-60).Add(time.Microsecond), 10, all[:1]},
		{"at now: NextAt equal to now is due", at(0), 10, all[:3]},
		{"one microsecond later", at(0).Add(time.Microsecond), 10, all[:4]},
		{"now in another zone", at(0).In(west), 10, all[:3]},
		{"limit below the count", at(0), 2, all[:2]},
		{"limit one", at(7200), 1, all[:1]},
		{"limit equal to the count", at(7200), 5, all},
		{"everything", at(7200), 100, all},
		{"far future, as the sender asks for the next due", time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), 100, all},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkDue(t, st, tc.now, tc.limit, tc.want)
		})
	}

	// A sender pages past what it is not taking now: after a place in due
	// order (NextAt, tenant, id), and leaving tenants out.
	late := at(7200)
	between := func(id string) *custos.DueCursor {
		return &custos.DueCursor{NextAt: older.d.NextAt, Tenant: b, ID: id}
	}
	pages := []struct {
		name string
		q    custos.DueQuery
		want []sealedDelivery
	}{
		{"after the first", custos.DueQuery{Now: late, After: oldest.d.Cursor(), Limit: 2}, all[1:3]},
		{"after the second, to the end", custos.DueQuery{Now: late, After: older.d.Cursor()}, all[2:]},
		{"after the last", custos.DueQuery{Now: late, After: dueLater.d.Cursor()}, nil},
		{"after a place before an id at the same time", custos.DueQuery{Now: late, After: between("dlv_x")}, all[1:]},
		{"after a place at that id exactly", custos.DueQuery{Now: late, After: between("dlv_y")}, all[2:]},
		{"after, and due now only", custos.DueQuery{Now: at(0), After: oldest.d.Cursor()}, all[1:3]},
		{"skipping a tenant", custos.DueQuery{Now: late, Skip: []custos.TenantID{a}}, []sealedDelivery{older, dueSoon}},
		{"skipping the other", custos.DueQuery{Now: late, Skip: []custos.TenantID{b}}, []sealedDelivery{oldest, dueNow, dueLater}},
		{"skipping both", custos.DueQuery{Now: late, Skip: []custos.TenantID{b, a}}, nil},
		{"after, skipping, limited", custos.DueQuery{Now: late, After: oldest.d.Cursor(), Skip: []custos.TenantID{b}, Limit: 1}, []sealedDelivery{dueNow}},
	}
	for _, tc := range pages {
		t.Run(tc.name, func(t *testing.T) {
			checkDueQuery(t, st, tc.q, tc.want)
		})
	}
}

// testOutboxReschedule puts one delivery again and again with a new
// NextAt, as the sender does after each failed attempt, and checks that it
// is due in its latest window only, once, as one record.
func testOutboxReschedule(t *testing.T, open func(*testing.T) custos.Store) {
	type window struct {
		sec int // now, in seconds after at(0)
		due bool
	}
	tests := []struct {
		name    string
		nextAts []int // seconds after at(0), one put each
		windows []window
	}{
		{"later", []int{0, 60}, []window{{0, false}, {59, false}, {60, true}}},
		{"later twice", []int{0, 60, 3600}, []window{{0, false}, {60, false}, {3599, false}, {3600, true}}},
		{"earlier", []int{60, -60}, []window{{-61, false}, {-60, true}, {60, true}}},
		{"put again unchanged", []int{0, 0}, []window{{-1, false}, {0, true}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := open(t)
			ten := newTenant(t, st)
			// A delivery due before every window keeps the due list from
			// being empty and comes first in each.
			other := sealedDelivery{delivery(ten, "dlv_other", "req_other", at(-1), at(-3600)), []byte("sealed other")}
			putDelivery(t, st, other.d, other.sealed)
			d := delivery(ten, "dlv_1", "req_1", at(-1), time.Time{})
			var sealed []byte
			for i, sec := range tc.nextAts {
				d.NextAt, d.Attempts = at(sec), i
				sealed = fmt.Appendf(nil, "sealed after attempt %d", i)
				putDelivery(t, st, d, sealed)
			}
			for _, w := range tc.windows {
				want := []sealedDelivery{other}
				if w.due {
					want = append(want, sealedDelivery{d, sealed})
				}
				checkDue(t, st, at(w.sec), 10, want)
			}
			checkDeliveries(t, st, ten, "req_1", []custos.Delivery{d})
		})
	}
}

// testOutboxFinal makes a delivery final, as the sender does when it is
// delivered or refused for good, and checks that it is never due again
// but still stored.
func testOutboxFinal(t *testing.T, open func(*testing.T) custos.Store) {
	tests := []struct {
		name         string
		pendingFirst bool // put once not final before
		finish       func(d *custos.Delivery)
	}{
		{"delivered", true, func(d *custos.Delivery) {
			d.Final, d.DeliveredAt, d.LastStatus, d.LastError, d.Attempts = true, at(1), 200, "", 3
		}},
		{"refused for good", true, func(d *custos.Delivery) { d.Final, d.LastStatus, d.Attempts = true, 403, 3 }},
		{"final with a later NextAt", true, func(d *custos.Delivery) { d.Final, d.NextAt = true, at(60) }},
		{"final at the first put", false, func(d *custos.Delivery) { d.Final = true }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := open(t)
			ten := newTenant(t, st)
			d := delivery(ten, "dlv_1", "req_1", at(-10), at(0))
			if tc.pendingFirst {
				putDelivery(t, st, d, []byte("sealed"))
				checkDue(t, st, at(0), 10, []sealedDelivery{{d, []byte("sealed")}})
			}
			tc.finish(&d)
			putDelivery(t, st, d, []byte("sealed"))
			// Another delivery, put after the final one, keeps the due
			// list from being empty; and a second read checks that the
			// final one does not come back once the store has tidied up.
			pending := sealedDelivery{delivery(ten, "dlv_2", "req_2", at(-5), at(5)), []byte("sealed 2")}
			putDelivery(t, st, pending.d, pending.sealed)
			for range 2 {
				checkDue(t, st, at(0), 10, nil)
				checkDue(t, st, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), 10, []sealedDelivery{pending})
			}
			// Final takes it off the due list, not out of the store.
			checkDeliveries(t, st, ten, "req_1", []custos.Delivery{d})
		})
	}
}

// testOutboxDeliveries lists the deliveries of requests, with the same
// request id and the same delivery id in two tenants.
func testOutboxDeliveries(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	a, b := newTenant(t, st), newTenant(t, st)
	zone := time.FixedZone("UTC-5", -5*60*60)
	// Ids sort against creation order, and the puts follow neither.
	first := delivery(a, "dlv_c", "req_1", at(0).In(zone), at(100))
	second := delivery(a, "dlv_b", "req_1", at(1).Add(time.Microsecond), at(0))
	third := delivery(a, "dlv_a", "req_1", at(2), at(50))
	third.Final, third.DeliveredAt, third.LastStatus = true, at(3), 204
	otherRequest := delivery(a, "dlv_d", "req_2", at(1).Add(2*time.Microsecond), at(0))
	otherTenant := delivery(b, "dlv_b", "req_1", at(-100), at(0))
	otherTenant.Kind, otherTenant.Target, otherTenant.URL = "recipient.erasure", "crm", "https://crm.example.test/erase"
	for _, d := range []custos.Delivery{third, otherTenant, first, otherRequest, second} {
		putDelivery(t, st, d, []byte("sealed "+d.ID))
	}

	tests := []struct {
		name      string
		tenant    custos.TenantID
		requestID string
		want      []custos.Delivery
	}{
		{"tenant a, request with three", a, "req_1", []custos.Delivery{first, second, third}},
		{"tenant a, request with one", a, "req_2", []custos.Delivery{otherRequest}},
		{"tenant b, same request id and a shared delivery id", b, "req_1", []custos.Delivery{otherTenant}},
		{"tenant b, request only a has", b, "req_2", nil},
		{"unknown request", a, "req_3", nil},
		{"request id prefix", a, "req_", nil},
		{"tenant never created", custos.NewTenantID(), "req_1", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkDeliveries(t, st, tc.tenant, tc.requestID, tc.want)
		})
	}
}

// testOutboxReplace puts a delivery again under its id with every other
// field changed, and checks that one record remains, the new one.
func testOutboxReplace(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	ten := newTenant(t, st)
	old := delivery(ten, "dlv_1", "req_1", at(0), at(10))
	putDelivery(t, st, old, []byte("old sealed"))

	d := custos.Delivery{
		ID: old.ID, Tenant: ten, Kind: "recipient.erasure", RequestID: "req_2", Target: "crm",
		URL: "https://crm.example.test/erase", CreatedAt: at(1), Attempts: 1, NextAt: at(20),
		LastStatus: 0, LastError: "connection refused",
	}
	putDelivery(t, st, d, []byte("new sealed"))

	checkDeliveries(t, st, ten, "req_1", nil)
	checkDeliveries(t, st, ten, "req_2", []custos.Delivery{d})
	checkDue(t, st, at(15), 10, nil)
	checkDue(t, st, at(20), 10, []sealedDelivery{{d, []byte("new sealed")}})
}
