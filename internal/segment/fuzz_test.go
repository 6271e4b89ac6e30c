package segment

import (
	"bytes"
	"fmt"
	"io"
	"testing"
	"unicode/utf8"

	"github.com/custos-dev/custos"
	"github.com/go-json-experiment/json/jsontext"
)

// fuzzKinds are the kinds FuzzDecode tries, chosen by a byte of its input.
var fuzzKinds = []Kind{
	{Batch: true},
	{Type: custos.Track}, {Type: custos.Identify}, {Type: custos.Page},
	{Type: custos.Screen}, {Type: custos.Group}, {Type: custos.Alias},
	{}, // a single message whose type is in the body
}

// fuzzLimits are small enough for the fuzzer to cross each of them.
var fuzzLimits = Limits{MaxMessage: 200, MaxBatch: 2000, MaxMessages: 5, MaxDepth: 6}

// FuzzDecode checks that Decode never panics and that what it returns
// keeps its promises, whatever the body. Its seeds are the fixtures.
func FuzzDecode(f *testing.F) {
	for _, fx := range loadFixtures(f) {
		for i, k := range fuzzKinds {
			if k == fx.kind {
				f.Add(fx.body, uint8(i))
			}
		}
	}
	f.Fuzz(func(t *testing.T, body []byte, kind uint8) {
		k := fuzzKinds[int(kind)%len(fuzzKinds)]
		for _, limits := range []Limits{DefaultLimits, fuzzLimits} {
			got, err := Decode(body, k, received, limits)
			checkInvariants(t, body, k, limits, got, err)
		}
	})
}

func checkInvariants(t *testing.T, body []byte, k Kind, limits Limits, got *Batch, err error) {
	t.Helper()
	in := fmt.Sprintf("Decode(%q, %+v, %+v)", body, k, limits)
	if err != nil {
		code := custos.ErrorCode(err)
		if (code != custos.Invalid && code != custos.TooLarge) || custos.ErrorMessage(err) == "" {
			t.Fatalf("%s error = %v; want an Invalid or TooLarge *custos.Error with a message", in, err)
		}
		return
	}
	n := countMessages(t, body, k)
	if len(got.Messages)+len(got.Rejected) != n {
		t.Fatalf("%s = %d messages and %d rejected; want %d in all", in, len(got.Messages), len(got.Rejected), n)
	}
	last := -1
	for _, r := range got.Rejected {
		if r.Index <= last || r.Index >= n || r.Reason == "" || r.Message == "" {
			t.Fatalf("%s rejection %+v: want increasing indexes under %d, a reason and a message", in, r, n)
		}
		last = r.Index
	}
	for i, m := range got.Messages {
		switch m.Type {
		case custos.Track, custos.Identify, custos.Page, custos.Screen, custos.Group, custos.Alias:
		default:
			t.Fatalf("%s message %d type = %q", in, i, m.Type)
		}
		if !k.Batch && k.Type != "" && m.Type != k.Type {
			t.Fatalf("%s message %d type = %q, want the path's %q", in, i, m.Type, k.Type)
		}
		if m.MessageID == "" {
			t.Fatalf("%s message %d has no messageId", in, i)
		}
		if m.UserID == "" && m.AnonymousID == "" {
			t.Fatalf("%s message %d has neither userId nor anonymousId", in, i)
		}
		if m.Type == custos.Alias && m.PreviousID == "" {
			t.Fatalf("%s message %d is an alias without previousId", in, i)
		}
		for _, s := range []string{m.MessageID, m.UserID, m.AnonymousID, m.PreviousID, m.GroupID, m.Event, m.Name, m.Email} {
			if !utf8.ValidString(s) {
				t.Fatalf("%s message %d: %q is not valid UTF-8", in, i, s)
			}
		}
		if m.Email != custos.NormalizeEmail(m.Email) {
			t.Fatalf("%s message %d email %q is not normalised", in, i, m.Email)
		}
		for field, raw := range map[string][]byte{"properties": m.Properties, "traits": m.Traits, "context": m.Context} {
			if raw == nil {
				continue
			}
			if err := validRaw(raw); err != nil {
				t.Fatalf("%s message %d %s = %q: %v", in, i, field, raw, err)
			}
			if depth, _ := scan(raw); depth > limits.MaxDepth {
				t.Fatalf("%s message %d %s nests %d deep", in, i, field, depth)
			}
		}
		if m.Timestamp.IsZero() || !m.ReceivedAt.Equal(received) {
			t.Fatalf("%s message %d timestamp %v, receivedAt %v", in, i, m.Timestamp, m.ReceivedAt)
		}
	}
}

// validRaw reports why raw is not the kind of JSON Decode promises:
// valid by the strictest rules (UTF-8, no duplicate names) and compact.
func validRaw(raw []byte) error {
	if !jsontext.Value(raw).IsValid() {
		return fmt.Errorf("not valid JSON")
	}
	compact := jsontext.Value(bytes.Clone(raw))
	if err := compact.Compact(); err != nil || !bytes.Equal(compact, raw) {
		return fmt.Errorf("not compact")
	}
	return nil
}

// countMessages counts the messages in a body Decode accepted, reading it
// on its own: the elements of the batch array, or 1 for a single message.
func countMessages(t *testing.T, body []byte, k Kind) int {
	t.Helper()
	if !k.Batch {
		return 1
	}
	d := jsontext.NewDecoder(bytes.NewReader(body), jsontext.AllowInvalidUTF8(true))
	if _, err := d.ReadToken(); err != nil {
		t.Fatalf("Decode accepted %q, which does not start with an object: %v", body, err)
	}
	for d.PeekKind() == '"' {
		name, err := d.ReadToken()
		if err != nil {
			break
		}
		if name.String() == "batch" && d.PeekKind() == '[' {
			d.ReadToken()
			n := 0
			for ; d.PeekKind() != ']'; n++ {
				if err := d.SkipValue(); err != nil {
					t.Fatalf("Decode accepted %q, whose batch is not JSON: %v", body, err)
				}
			}
			return n
		}
		if err := d.SkipValue(); err != nil && err != io.EOF {
			break
		}
	}
	t.Fatalf("Decode accepted %q, which has no batch array", body)
	return 0
}
