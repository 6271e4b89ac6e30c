package subjects_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/segment"
)

// decode turns a Segment batch body into messages received at t0.
func decode(t *testing.T, body string) []custos.Message {
	t.Helper()
	b, err := segment.Decode([]byte(body), segment.Kind{Batch: true}, t0, segment.DefaultLimits)
	if err != nil || len(b.Rejected) > 0 {
		t.Fatalf("decode %s: %v, rejected %v", body, err, b.Rejected)
	}
	return b.Messages
}

func (e *env) categories(t *testing.T) []string {
	t.Helper()
	cats, err := e.rd.Observed(context.Background(), e.tenant)
	if err != nil {
		t.Fatalf("Observed: %v", err)
	}
	var names []string
	for _, c := range cats {
		names = append(names, c.Name)
	}
	return names
}

// TestObservedCategories checks that a category of personal data is
// recorded only once a stored message shows it, that trait names are
// recorded and never their values, and that the record is persisted with
// the message and rewritten only when something new appears.
func TestObservedCategories(t *testing.T) {
	e := newEnv(t)
	if got := e.categories(t); len(got) != 0 {
		t.Fatalf("categories before any message = %v, want none", got)
	}
	e.ingest(t, decode(t, `{"batch":[{"type":"track","event":"Opened","anonymousId":"a-1","messageId":"o1"}]}`)...)
	if got, want := e.categories(t), []string{"behaviour.events", "identity.anonymous_id"}; !slices.Equal(got, want) {
		t.Errorf("after an anonymous track: %v, want %v", got, want)
	}
	e.ingest(t, decode(t, `{"batch":[{"type":"identify","userId":"u-1","anonymousId":"a-1","messageId":"o2",
		"traits":{"email":"ann@example.com","phone":"+4915112345678","plan":"secret-plan-value","empty":"","address":{"city":"Berlin"}}}]}`)...)
	got := e.categories(t)
	for _, want := range []string{"contact.email", "contact.phone", "identity.user_id", "profile.traits.plan", "location.address"} {
		if !slices.Contains(got, want) {
			t.Errorf("after an identify with traits: %v, missing %s", got, want)
		}
	}
	if slices.Contains(got, "profile.traits.empty") || slices.Contains(got, "device.ip_address") {
		t.Errorf("categories %v list an empty trait or an IP address never sent", got)
	}
	cats, _ := e.rd.Observed(context.Background(), e.tenant)
	for _, c := range cats {
		if strings.Contains(c.Name, "secret-plan-value") || strings.Contains(c.Name, "ann@") || !c.FirstSeen.Equal(t0) {
			t.Errorf("category %+v: want a name only, first seen at %v", c, t0)
		}
	}
	e.ingest(t, decode(t, `{"context":{"ip":"203.0.113.9","userAgent":"Mozilla/5.0","timezone":"Europe/Berlin",
		"device":{"advertisingId":"ad-1","id":""},"location":{"city":"Berlin","country":""},"traits":{"loyalty":"gold"}},
		"batch":[{"type":"page","name":"Home","anonymousId":"a-2","messageId":"o3"},{"type":"screen","name":"Home","anonymousId":"a-2","messageId":"o4"}]}`)...)
	got = e.categories(t)
	for _, want := range []string{"device.ip_address", "device.user_agent", "device.advertising_id", "location.city", "location.timezone", "behaviour.page_views", "profile.traits.loyalty"} {
		if !slices.Contains(got, want) {
			t.Errorf("after pages with a full context: %v, missing %s", got, want)
		}
	}
	for _, never := range []string{"device.id", "location.country", "profile.groups"} {
		if slices.Contains(got, never) {
			t.Errorf("categories %v list %s, which no message carried", got, never)
		}
	}

	// Nothing new: the sealed record is not rewritten (sealing is randomised).
	before, err := e.store.Observed(context.Background(), e.tenant)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(before, []byte("plan")) {
		t.Errorf("the stored record shows trait names in the clear")
	}
	e.reopen(t)
	e.ingest(t, decode(t, `{"batch":[{"type":"track","event":"Opened","anonymousId":"a-3","messageId":"o5"}]}`)...)
	after, _ := e.store.Observed(context.Background(), e.tenant)
	if !bytes.Equal(before, after) {
		t.Errorf("a message with no new category rewrote the record")
	}
	e.ingest(t, decode(t, `{"batch":[{"type":"group","groupId":"g-1","anonymousId":"a-3","messageId":"o6"}]}`)...)
	if got := e.categories(t); !slices.Contains(got, "profile.groups") || !slices.Contains(got, "contact.email") {
		t.Errorf("after a restart and a group call: %v, want profile.groups added and the rest kept", got)
	}
	// A duplicate carries nothing new into the record.
	res := e.ingest(t, decode(t, `{"batch":[{"type":"track","event":"Opened","anonymousId":"a-1","messageId":"o1","context":{"device":{"id":"dev-1"}}}]}`)...)
	if res.Duplicates != 1 || slices.Contains(e.categories(t), "device.id") {
		t.Errorf("a duplicate (%+v) added its categories: %v", res, e.categories(t))
	}
}
