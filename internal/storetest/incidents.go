package storetest

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/custos-dev/custos"
)

// incident returns an incident with every field set.
func incident(id string, tenants ...custos.TenantID) *custos.Incident {
	base := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	return &custos.Incident{
		ID: id, OpenedAt: base, DetectedAt: base.Add(-2 * time.Hour),
		Nature: "backup bucket readable <publicly> & indexed", DataCategories: []string{"contact.email", "behaviour.events"},
		Encrypted: true, KeysSafe: true, Consequences: "phishing", Measures: "bucket closed",
		ContactPoint: "dpo@processor.example",
		Scope:        custos.IncidentScope{Tenants: tenants, EventsFrom: base.AddDate(0, -1, 0), EventsTo: base},
		Tenants:      tenants, Status: custos.IncidentOpen,
		Updates: []custos.IncidentUpdate{{Seq: 1, At: base.Add(time.Hour), Message: "scope confirmed", Measures: "keys rotated"}},
	}
}

// sameJSON compares two values through their JSON encoding, which is
// what a store round-trips.
func sameJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	var gv, wv any
	json.Unmarshal(g, &gv)
	json.Unmarshal(w, &wv)
	if !reflect.DeepEqual(gv, wv) {
		t.Errorf("%s = %s, want %s", what, g, w)
	}
}

func testIncidents(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	ctx := context.Background()
	a, b := newTenant(t, st), newTenant(t, st)
	if _, err := st.Incident(ctx, "inc_1"); custos.ErrorCode(err) != custos.NotFound {
		t.Errorf("Incident of an empty store: err = %v, want not found", err)
	}
	if got, err := st.Incidents(ctx); err != nil || len(got) != 0 {
		t.Errorf("Incidents of an empty store = %v, %v; want none", got, err)
	}
	for _, id := range []string{"inc_2", "inc_1", "inc_3"} {
		if err := st.PutIncident(ctx, incident(id, a, b)); err != nil {
			t.Fatalf("PutIncident(%s): %v", id, err)
		}
	}
	got, err := st.Incident(ctx, "inc_2")
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "Incident(inc_2)", got, incident("inc_2", a, b))

	// Replacing keeps one record with the new state.
	got.Status, got.ClosedAt, got.ClosingNote = custos.IncidentClosed, got.OpenedAt.Add(48*time.Hour), "done"
	if err := st.PutIncident(ctx, got); err != nil {
		t.Fatal(err)
	}
	list, err := st.Incidents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, in := range list {
		ids = append(ids, in.ID+":"+in.Status)
	}
	if want := []string{"inc_1:open", "inc_2:closed", "inc_3:open"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("Incidents = %v, want %v (by id)", ids, want)
	}
	if err := st.PutIncident(ctx, &custos.Incident{}); custos.ErrorCode(err) != custos.Invalid {
		t.Errorf("PutIncident without id: err = %v, want invalid", err)
	}
}

// notification returns a notification with every field set.
func notification(ten custos.TenantID, incident string) *custos.IncidentNotification {
	base := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	return &custos.IncidentNotification{
		Incident: incident, Tenant: ten, NotifiedAt: base, Subjects: 12345, Records: 9876543210,
		Messages: []custos.IncidentMessage{{Kind: custos.IncidentMessageOpened, At: base, Channels: []custos.ChannelDelivery{
			{Channel: custos.ChannelWebhook, Status: custos.DeliveryRetrying, DeliveryID: "dlv_1", Attempts: []custos.DeliveryAttempt{{At: base, Status: 503, Error: "receiver answered 503"}}},
			{Channel: custos.ChannelEmail, Status: custos.DeliveryPending, NextAt: base.Add(time.Second), Attempts: []custos.DeliveryAttempt{}},
			{Channel: custos.ChannelInApp, Status: custos.DeliveryDelivered, DeliveredAt: base, Attempts: []custos.DeliveryAttempt{{At: base, OK: true}}},
		}}},
	}
}

func testIncidentNotifications(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	ctx := context.Background()
	a, b := newTenant(t, st), newTenant(t, st)
	for _, id := range []string{"inc_2", "inc_1"} {
		if err := st.PutIncidentNotification(ctx, notification(a, id)); err != nil {
			t.Fatalf("PutIncidentNotification(%s): %v", id, err)
		}
	}
	got, err := st.IncidentNotification(ctx, a, "inc_1")
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "IncidentNotification(A, inc_1)", got, notification(a, "inc_1"))
	got.AcknowledgedAt = got.NotifiedAt.Add(time.Hour)
	if err := st.PutIncidentNotification(ctx, got); err != nil {
		t.Fatal(err)
	}
	list, err := st.IncidentNotifications(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Incident != "inc_1" || list[1].Incident != "inc_2" || list[0].AcknowledgedAt.IsZero() {
		t.Errorf("IncidentNotifications(A) = %v, want inc_1 (acknowledged), inc_2", list)
	}

	// Tenant B sees none of A's notifications.
	if _, err := st.IncidentNotification(ctx, b, "inc_1"); custos.ErrorCode(err) != custos.NotFound {
		t.Errorf("IncidentNotification of A's incident through B: err = %v, want not found", err)
	}
	if list, err := st.IncidentNotifications(ctx, b); err != nil || len(list) != 0 {
		t.Errorf("IncidentNotifications(B) = %v, %v; want none", list, err)
	}

	// Deleting a tenant deletes its notifications.
	if err := st.DeleteTenant(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := st.IncidentNotification(ctx, a, "inc_1"); custos.ErrorCode(err) != custos.NotFound {
		t.Errorf("IncidentNotification of a deleted tenant: err = %v, want not found", err)
	}
}
