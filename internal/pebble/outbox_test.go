package pebble

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/custos-dev/custos"
)

// obStore is a Store in a temp dir that a test can reopen.
type obStore struct {
	t   *testing.T
	dir string
	*Store
}

func obOpen(t *testing.T) *obStore {
	t.Helper()
	o := &obStore{t: t, dir: t.TempDir()}
	o.open()
	t.Cleanup(func() {
		if err := o.Close(); err != nil {
			t.Errorf("Close = %v, want nil", err)
		}
	})
	return o
}

func (o *obStore) open() {
	o.t.Helper()
	s, err := Open(o.dir, Options{CacheSize: 1 << 20, MemTableSize: 1 << 20})
	if err != nil {
		o.t.Fatalf("Open(%s) = %v, want nil", o.dir, err)
	}
	o.Store = s
}

// reopen closes the store and opens it again from its directory.
func (o *obStore) reopen() {
	o.t.Helper()
	if err := o.Close(); err != nil {
		o.t.Fatalf("Close = %v, want nil", err)
	}
	o.open()
}

// dueKeys returns every key of the due index.
func (o *obStore) dueKeys() [][]byte {
	o.t.Helper()
	it, err := o.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixDue}, UpperBound: []byte{prefixDue + 1}})
	if err != nil {
		o.t.Fatal(err)
	}
	defer it.Close()
	var ks [][]byte
	for ok := it.First(); ok; ok = it.Next() {
		ks = append(ks, bytes.Clone(it.Key()))
	}
	if err := it.Error(); err != nil {
		o.t.Fatal(err)
	}
	return ks
}

func (o *obStore) put(d custos.Delivery, sealed []byte) {
	o.t.Helper()
	if err := o.PutDelivery(context.Background(), &d, sealed); err != nil {
		o.t.Fatalf("PutDelivery(%s) = %v, want nil", d.ID, err)
	}
}

func (o *obStore) due(now time.Time, limit int) ([]custos.Delivery, [][]byte) {
	o.t.Helper()
	ds, sealed, err := o.DueDeliveries(context.Background(), custos.DueQuery{Now: now, Limit: limit})
	if err != nil {
		o.t.Fatalf("DueDeliveries(%v, %d) = %v, want nil", now, limit, err)
	}
	if len(ds) != len(sealed) {
		o.t.Fatalf("DueDeliveries returned %d deliveries and %d sealed parts", len(ds), len(sealed))
	}
	return ds, sealed
}

var obT0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func obDelivery(t custos.TenantID, id string, nextAt time.Time) custos.Delivery {
	return custos.Delivery{
		ID: id, Tenant: t, Kind: "request.status", RequestID: "req_1", Target: "callback",
		URL: "https://example.test/hook", CreatedAt: obT0, NextAt: nextAt,
	}
}

func obIDs(ds []custos.Delivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return out
}

func TestDeliveryRoundTripSurvivesReopen(t *testing.T) {
	o := obOpen(t)
	tn := custos.NewTenantID()
	want := obDelivery(tn, "dlv_1", obT0.Add(-time.Minute))
	want.Attempts, want.LastStatus, want.LastError = 2, 503, "receiver answered 503"
	sealed := []byte{0x01, 0x00, 0xff, 'x'}
	o.put(want, sealed)
	for _, phase := range []string{"before reopen", "after reopen"} {
		ds, ss := o.due(obT0, 0)
		if len(ds) != 1 {
			t.Fatalf("%s: DueDeliveries = %v, want [dlv_1]", phase, obIDs(ds))
		}
		if got := ds[0]; !sameDelivery(got, want) {
			t.Errorf("%s: delivery = %+v, want %+v", phase, got, want)
		}
		if !bytes.Equal(ss[0], sealed) {
			t.Errorf("%s: sealed = %x, want %x", phase, ss[0], sealed)
		}
		o.reopen()
	}
}

// sameDelivery compares the stored fields of two deliveries, times by instant.
func sameDelivery(a, b custos.Delivery) bool {
	return a.ID == b.ID && a.Tenant == b.Tenant && a.Kind == b.Kind && a.RequestID == b.RequestID &&
		a.Target == b.Target && a.URL == b.URL && a.CreatedAt.Equal(b.CreatedAt) &&
		a.Attempts == b.Attempts && a.NextAt.Equal(b.NextAt) && a.LastStatus == b.LastStatus &&
		a.LastError == b.LastError && a.DeliveredAt.Equal(b.DeliveredAt) && a.Final == b.Final
}

func TestDueDeliveriesOrderAndLimit(t *testing.T) {
	o := obOpen(t)
	tn, other := custos.NewTenantID(), custos.NewTenantID()
	// Put out of order, over two tenants, with a zero NextAt and one
	// before 1970, which must sort first.
	o.put(obDelivery(tn, "c", obT0), nil)
	o.put(obDelivery(other, "b", obT0.Add(-time.Hour)), nil)
	o.put(obDelivery(tn, "later", obT0.Add(time.Nanosecond)), nil)
	o.put(obDelivery(tn, "zero", time.Time{}), nil)
	o.put(obDelivery(other, "old", time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)), nil)
	done := obDelivery(tn, "done", obT0.Add(-2*time.Hour))
	done.Final = true
	o.put(done, nil)

	tests := []struct {
		now   time.Time
		limit int
		want  []string
	}{
		{obT0, 0, []string{"zero", "old", "b", "c"}},
		{obT0, 2, []string{"zero", "old"}},
		{obT0, 10, []string{"zero", "old", "b", "c"}},
		{obT0.Add(-time.Nanosecond), 0, []string{"zero", "old", "b"}},
		{obT0.Add(time.Nanosecond), 0, []string{"zero", "old", "b", "c", "later"}},
		{time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), 0, []string{"zero"}},
		{time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), 0, []string{"zero", "old", "b", "c", "later"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/limit=%d", tt.now.Format(time.RFC3339Nano), tt.limit), func(t *testing.T) {
			ds, _ := o.due(tt.now, tt.limit)
			if got := obIDs(ds); !slices.Equal(got, tt.want) {
				t.Errorf("DueDeliveries(%v, %d) = %v, want %v", tt.now, tt.limit, got, tt.want)
			}
		})
	}
}

// TestDueIndexFollowsDelivery checks that the due index holds exactly one
// key for a delivery that is not final, at its NextAt, and none for a
// final one, whatever happened to it before.
func TestDueIndexFollowsDelivery(t *testing.T) {
	type step struct {
		nextAt time.Time
		final  bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"new", []step{{obT0, false}}},
		{"rescheduled", []step{{obT0, false}, {obT0.Add(time.Second), false}}},
		{"rescheduled earlier", []step{{obT0, false}, {obT0.Add(-time.Hour), false}}},
		{"rescheduled twice", []step{{obT0, false}, {obT0.Add(time.Second), false}, {obT0.Add(3 * time.Second), false}}},
		{"put again unchanged", []step{{obT0, false}, {obT0, false}}},
		{"delivered", []step{{obT0, false}, {obT0.Add(time.Second), false}, {obT0.Add(time.Second), true}}},
		{"final with a new NextAt", []step{{obT0, false}, {obT0.Add(time.Minute), true}}},
		{"final at once", []step{{obT0, true}}},
		{"final then put as due", []step{{obT0, true}, {obT0.Add(time.Second), false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := obOpen(t)
			tn := custos.NewTenantID()
			d := obDelivery(tn, "dlv_"+tt.name, time.Time{})
			for i, s := range tt.steps {
				d.NextAt, d.Final, d.Attempts = s.nextAt, s.final, i
				o.put(d, []byte("sealed"))
			}
			last := tt.steps[len(tt.steps)-1]
			var want [][]byte
			if !last.final {
				want = [][]byte{dueKey(last.nextAt, tn, d.ID)}
			}
			if got := o.dueKeys(); !slices.EqualFunc(got, want, bytes.Equal) {
				t.Errorf("due index = %x, want %x", got, want)
			}
			ds, _ := o.due(obT0.Add(time.Hour), 0)
			if got, wantN := len(ds), len(want); got != wantN {
				t.Errorf("DueDeliveries = %v, want %d", obIDs(ds), wantN)
			}
			if len(ds) == 1 && (!ds[0].NextAt.Equal(last.nextAt) || ds[0].Attempts != len(tt.steps)-1) {
				t.Errorf("DueDeliveries returned %+v, want the last version", ds[0])
			}
		})
	}
}

func TestDeletedTenantLeavesNoDueDelivery(t *testing.T) {
	ctx := context.Background()
	o := obOpen(t)
	gone := &custos.Tenant{ID: custos.NewTenantID(), Name: "Gone GmbH", CreatedAt: obT0}
	kept := custos.NewTenantID()
	if err := o.CreateTenant(ctx, gone); err != nil {
		t.Fatal(err)
	}
	o.put(obDelivery(gone.ID, "a", obT0), []byte("sealed"))
	o.put(obDelivery(kept, "b", obT0), []byte("sealed"))
	if err := o.DeleteTenant(ctx, gone.ID); err != nil {
		t.Fatalf("DeleteTenant = %v, want nil", err)
	}
	if ds, _ := o.due(obT0, 0); !slices.Equal(obIDs(ds), []string{"b"}) {
		t.Errorf("DueDeliveries after DeleteTenant = %v, want [b]", obIDs(ds))
	}
	// The deleted tenant's index key was dropped on the way.
	if got := o.dueKeys(); len(got) != 1 {
		t.Errorf("due index after DueDeliveries = %x, want one key", got)
	}
	if ds, err := o.Deliveries(ctx, gone.ID, "req_1"); err != nil || len(ds) != 0 {
		t.Errorf("Deliveries of the deleted tenant = %v, %v; want none", obIDs(ds), err)
	}
}

func TestDeliveriesOfRequest(t *testing.T) {
	ctx := context.Background()
	o := obOpen(t)
	tn, other := custos.NewTenantID(), custos.NewTenantID()
	mk := func(t custos.TenantID, id, req string, created time.Time) {
		d := obDelivery(t, id, obT0)
		d.RequestID, d.CreatedAt = req, created
		o.put(d, nil)
	}
	// Ids that sort against creation order: creation order wins, then id.
	mk(tn, "a-third", "req_1", obT0.Add(2*time.Second))
	mk(tn, "z-first", "req_1", obT0)
	mk(tn, "m-second", "req_1", obT0.Add(time.Second))
	mk(tn, "b-second-too", "req_1", obT0.Add(time.Second))
	mk(tn, "other-request", "req_2", obT0)
	mk(tn, "no-request", "", obT0)
	mk(other, "other-tenant", "req_1", obT0)

	tests := []struct {
		tenant custos.TenantID
		req    string
		want   []string
	}{
		{tn, "req_1", []string{"z-first", "b-second-too", "m-second", "a-third"}},
		{tn, "req_2", []string{"other-request"}},
		{tn, "req_3", nil},
		{other, "req_1", []string{"other-tenant"}},
		{custos.NewTenantID(), "req_1", nil},
	}
	for _, tt := range tests {
		t.Run(tt.req, func(t *testing.T) {
			ds, err := o.Deliveries(ctx, tt.tenant, tt.req)
			if err != nil {
				t.Fatalf("Deliveries(%s) = %v, want nil", tt.req, err)
			}
			if got := obIDs(ds); !slices.Equal(got, tt.want) {
				t.Errorf("Deliveries(%s, %s) = %v, want %v", tt.tenant, tt.req, got, tt.want)
			}
		})
	}
}

func TestDeliveryTenantIsolation(t *testing.T) {
	ctx := context.Background()
	o := obOpen(t)
	a, b := custos.NewTenantID(), custos.NewTenantID()
	// One id in two tenants: two deliveries, each with its own sealed part.
	da, db := obDelivery(a, "same", obT0), obDelivery(b, "same", obT0.Add(time.Second))
	o.put(da, []byte("sealed for a"))
	o.put(db, []byte("sealed for b"))
	da.Final = true
	o.put(da, nil) // finishing a's must not touch b's index key
	ds, ss := o.due(obT0.Add(time.Minute), 0)
	if len(ds) != 1 || ds[0].Tenant != b || string(ss[0]) != "sealed for b" {
		t.Fatalf("DueDeliveries = %+v %q, want tenant b's only", ds, ss)
	}
	for _, tn := range []custos.TenantID{a, b} {
		got, err := o.Deliveries(ctx, tn, "req_1")
		if err != nil || len(got) != 1 || got[0].Tenant != tn || got[0].Final != (tn == a) {
			t.Errorf("Deliveries(%s) = %+v, %v; want its own one", tn, got, err)
		}
	}
}

func TestPutDeliveryWithoutID(t *testing.T) {
	o := obOpen(t)
	err := o.PutDelivery(context.Background(), &custos.Delivery{Tenant: custos.NewTenantID()}, nil)
	if custos.ErrorCode(err) != custos.Invalid {
		t.Errorf("PutDelivery(no id) = %v, want code %s", err, custos.Invalid)
	}
}

func TestRecipients(t *testing.T) {
	ctx := context.Background()
	o := obOpen(t)
	tn, other := custos.NewTenantID(), custos.NewTenantID()
	mk := func(t custos.TenantID, id string, created time.Time) *custos.Recipient {
		return &custos.Recipient{ID: id, Tenant: t, Name: "CRM " + id, URL: "https://crm.test/" + id,
			Region: "eu", Secret: []byte("secret\x00" + id), CreatedAt: created}
	}
	put := func(r *custos.Recipient) {
		t.Helper()
		if err := o.PutRecipient(ctx, r); err != nil {
			t.Fatalf("PutRecipient(%s) = %v, want nil", r.ID, err)
		}
	}
	list := func(tn custos.TenantID) []*custos.Recipient {
		t.Helper()
		rs, err := o.Recipients(ctx, tn)
		if err != nil {
			t.Fatalf("Recipients = %v, want nil", err)
		}
		return rs
	}
	r2, r1, r3 := mk(tn, "a", obT0.Add(time.Second)), mk(tn, "b", obT0), mk(tn, "c", obT0.Add(2*time.Second))
	for _, r := range []*custos.Recipient{r2, r1, r3, mk(other, "a", obT0)} {
		put(r)
	}
	r2.Name = "CRM renamed"
	put(r2) // replaces
	if err := o.PutRecipient(ctx, &custos.Recipient{Tenant: tn}); custos.ErrorCode(err) != custos.Invalid {
		t.Errorf("PutRecipient(no id) = %v, want code %s", err, custos.Invalid)
	}
	o.reopen()

	want := []*custos.Recipient{r1, r2, r3}
	got := list(tn)
	if len(got) != len(want) {
		t.Fatalf("Recipients = %d, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.Tenant != w.Tenant || g.Name != w.Name || g.URL != w.URL ||
			g.Region != w.Region || !bytes.Equal(g.Secret, w.Secret) || !g.CreatedAt.Equal(w.CreatedAt) {
			t.Errorf("Recipients[%d] = %+v, want %+v", i, g, w)
		}
	}

	if err := o.DeleteRecipient(ctx, other, "b"); custos.ErrorCode(err) != custos.NotFound {
		t.Errorf("DeleteRecipient(other tenant, b) = %v, want NotFound", err)
	}
	if err := o.DeleteRecipient(ctx, tn, "b"); err != nil {
		t.Fatalf("DeleteRecipient(b) = %v, want nil", err)
	}
	if err := o.DeleteRecipient(ctx, tn, "b"); custos.ErrorCode(err) != custos.NotFound {
		t.Errorf("DeleteRecipient(b) again = %v, want NotFound", err)
	}
	o.reopen()
	if got := list(tn); len(got) != 2 || got[0].ID != "a" || got[1].ID != "c" {
		t.Errorf("Recipients after delete = %v, want [a c]", got)
	}
	if got := list(other); len(got) != 1 || got[0].Tenant != other {
		t.Errorf("Recipients(other) = %v, want its one", got)
	}
}
