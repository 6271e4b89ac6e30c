package segment

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/custos-dev/custos"
)

var received = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// sized returns a valid track message of exactly n bytes.
func sized(t *testing.T, n int) string {
	t.Helper()
	m := `{"type":"track","userId":"u","event":"e","properties":{"pad":""}}`
	if n < len(m) {
		t.Fatalf("sized(%d): the smallest message is %d bytes", n, len(m))
	}
	return strings.Replace(m, `""`, `"`+strings.Repeat("x", n-len(m))+`"`, 1)
}

// nested returns a JSON value nesting depth arrays, alternating with objects.
func nested(depth int) string {
	var open, close strings.Builder
	for i := range depth {
		if i%2 == 0 {
			open.WriteString(`[`)
			close.WriteString(`]`)
		} else {
			open.WriteString(`{"k":`)
			close.WriteString(`}`)
		}
	}
	c := []byte(close.String())
	for i, j := 0, len(c)-1; i < j; i, j = i+1, j-1 {
		c[i], c[j] = c[j], c[i]
	}
	if depth%2 == 0 && depth > 0 { // the innermost is an object: give it a value
		return open.String() + "1" + string(c)
	}
	return open.String() + string(c)
}

// batchOf returns a batch body of the given messages.
func batchOf(messages ...string) string {
	return `{"batch":[` + strings.Join(messages, ",") + `]}`
}

// TestDefaultLimits checks each of DefaultLimits at and just over its bound.
func TestDefaultLimits(t *testing.T) {
	small := sized(t, 100)
	batch, track := Kind{Batch: true}, Kind{Type: custos.Track}
	many := func(n int) string { return batchOf(strings.Split(strings.Repeat(small+"\n", n), "\n")[:n]...) }
	padTo := func(t *testing.T, body string, n int) string { // pads with whitespace, which counts
		t.Helper()
		if len(body) > n {
			t.Fatalf("padTo(%d): body is already %d bytes", n, len(body))
		}
		return body + strings.Repeat(" ", n-len(body))
	}

	tests := []struct {
		name     string
		kind     Kind
		body     string
		messages int
		rejected []Rejection
		code     custos.Code
		message  string
	}{
		{name: "message of 32 KB", kind: batch, body: batchOf(small, sized(t, 32<<10), small), messages: 3},
		{name: "message over 32 KB", kind: batch, body: batchOf(small, sized(t, 32<<10+1), small), messages: 2,
			rejected: []Rejection{{1, "message_too_large", "message is 32769 bytes; the limit is 32768"}}},
		{name: "single message over 32 KB", kind: track, body: sized(t, 32<<10+1),
			rejected: []Rejection{{0, "message_too_large", "message is 32769 bytes; the limit is 32768"}}},
		{name: "batch of 500 KB", kind: batch, body: padTo(t, batchOf(small, small), 500<<10), messages: 2},
		{name: "batch over 500 KB", kind: batch, body: padTo(t, batchOf(small, small), 500<<10+1),
			code: custos.TooLarge, message: "body is 512001 bytes; the limit is 512000"},
		{name: "2000 messages", kind: batch, body: many(2000), messages: 2000},
		{name: "2001 messages", kind: batch, body: many(2001),
			code: custos.TooLarge, message: "batch has 2001 messages; the limit is 2000"},
		// Body 1, batch 2, message 3, properties 4: 196 more make 200.
		{name: "depth 200 in properties", kind: batch, body: batchOf(`{"type":"track","userId":"u","event":"e","properties":{"n":` + nested(196) + `}}`), messages: 1},
		{name: "depth 201 in properties", kind: batch, body: batchOf(`{"type":"track","userId":"u","event":"e","properties":{"n":` + nested(197) + `}}`),
			code: custos.Invalid, message: `body nests objects and arrays deeper than 200 levels (within "/batch/0/properties")`},
		{name: "depth 200 on a single path", kind: track, body: `{"userId":"u","event":"e","properties":{"n":` + nested(198) + `}}`, messages: 1},
		{name: "depth 201 on a single path", kind: track, body: `{"userId":"u","event":"e","properties":{"n":` + nested(199) + `}}`,
			code: custos.Invalid, message: `body nests objects and arrays deeper than 200 levels (within "/properties")`},
		{name: "depth 201 in context", kind: batch, body: batchOf(`{"type":"track","userId":"u","event":"e","context":{"n":` + nested(197) + `}}`),
			code: custos.Invalid, message: `body nests objects and arrays deeper than 200 levels (within "/batch/0/context/n")`},
		{name: "depth 201 in an unknown field", kind: batch, body: batchOf(`{"type":"track","userId":"u","event":"e","x":` + nested(198) + `}`),
			code: custos.Invalid, message: `body nests objects and arrays deeper than 200 levels (within "/batch/0/x")`},
		{name: "depth 201 in a message that is not an object", kind: batch, body: batchOf(nested(199)),
			code: custos.Invalid, message: `body nests objects and arrays deeper than 200 levels (within "/batch/0")`},
		{name: "depth 201 in the batch context", kind: batch, body: `{"batch":[],"context":{"n":` + nested(199) + `}}`,
			code: custos.Invalid, message: `body nests objects and arrays deeper than 200 levels (within "/context/n")`},
		{name: "userId of 1024 bytes", kind: batch, body: batchOf(`{"type":"track","userId":"` + strings.Repeat("u", 1024) + `","event":"e"}`), messages: 1},
		{name: "userId over 1024 bytes", kind: batch, body: batchOf(small, `{"type":"track","userId":"`+strings.Repeat("u", 1025)+`","event":"e"}`), messages: 1,
			rejected: []Rejection{{1, "message_too_large", "userId is 1025 bytes; the limit is 1024"}}},
		{name: "anonymousId over 1024 bytes", kind: track, body: `{"anonymousId":"` + strings.Repeat("a", 1100) + `","event":"e"}`,
			rejected: []Rejection{{0, "message_too_large", "anonymousId is 1100 bytes; the limit is 1024"}}},
		{name: "event name over 1024 bytes", kind: track, body: `{"userId":"u","event":"` + strings.Repeat("e", 2000) + `"}`,
			rejected: []Rejection{{0, "message_too_large", "event is 2000 bytes; the limit is 1024"}}},
		{name: "groupId over 1024 bytes", kind: Kind{Type: custos.Group}, body: `{"userId":"u","groupId":"` + strings.Repeat("g", 1025) + `"}`,
			rejected: []Rejection{{0, "message_too_large", "groupId is 1025 bytes; the limit is 1024"}}},
		{name: "depth 10001, past the decoder's own limit", kind: batch, body: batchOf(nested(10001)),
			code: custos.Invalid, message: `body nests objects and arrays deeper than 200 levels`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := fmt.Sprintf("Decode(%s, %d bytes)", tt.name, len(tt.body))
			got, err := Decode([]byte(tt.body), tt.kind, received, DefaultLimits)
			if tt.code != "" {
				if code, msg := custos.ErrorCode(err), custos.ErrorMessage(err); code != tt.code || msg != tt.message {
					t.Fatalf("%s error = %s: %s; want %s: %s", in, code, msg, tt.code, tt.message)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s: %v", in, err)
			}
			if len(got.Messages) != tt.messages || fmt.Sprint(got.Rejected) != fmt.Sprint(tt.rejected) {
				t.Errorf("%s = %d messages, rejected %v; want %d, %v", in, len(got.Messages), got.Rejected, tt.messages, tt.rejected)
			}
		})
	}
}

func TestNested(t *testing.T) {
	for _, depth := range []int{0, 1, 2, 3, 10, 201} {
		v := nested(depth)
		if got, _ := scan([]byte(v)); got != depth {
			t.Errorf("scan(nested(%d)) depth = %d, want %d (%s)", depth, got, depth, v)
		}
	}
}

// TestBatchContextAmplification checks that a big batch-level context
// merged into many messages cannot make a small body take far more memory.
func TestBatchContextAmplification(t *testing.T) {
	ctx := `"context":{"pad":"` + strings.Repeat("x", 20<<10) + `"}`
	own := strings.Repeat(`{"type":"track","userId":"u","event":"e","context":{}},`, 100)
	shared := strings.Repeat(`{"type":"track","userId":"u","event":"e"},`, 100)

	body := `{"batch":[` + strings.TrimSuffix(own, ",") + `],` + ctx + `}`
	_, err := Decode([]byte(body), Kind{Batch: true}, received, DefaultLimits)
	want := "merging the batch context into every message would add more than 512000 bytes"
	if code, msg := custos.ErrorCode(err), custos.ErrorMessage(err); code != custos.TooLarge || msg != want {
		t.Errorf("Decode(20 KB batch context, 100 messages with their own) error = %s: %s; want %s: %s", code, msg, custos.TooLarge, want)
	}

	// Messages without a context of their own share the batch's: no copies.
	body = `{"batch":[` + strings.TrimSuffix(shared, ",") + `],` + ctx + `}`
	got, err := Decode([]byte(body), Kind{Batch: true}, received, DefaultLimits)
	if err != nil {
		t.Fatalf("Decode(20 KB batch context, 100 messages without their own): %v", err)
	}
	if len(got.Messages) != 100 {
		t.Errorf("Decode(20 KB batch context, 100 messages without their own) = %d messages, want 100", len(got.Messages))
	}
}

// TestLimitsDefaults checks that unset limits take the default values.
func TestLimitsDefaults(t *testing.T) {
	if got := (Limits{}).orDefault(); got != DefaultLimits {
		t.Errorf("Limits{}.orDefault() = %+v, want %+v", got, DefaultLimits)
	}
	if got, want := (Limits{MaxDepth: 3, MaxBatch: -1}).orDefault(), (Limits{MaxMessage: 32 << 10, MaxBatch: 500 << 10, MaxMessages: 2000, MaxDepth: 3}); got != want {
		t.Errorf("Limits{MaxDepth: 3, MaxBatch: -1}.orDefault() = %+v, want %+v", got, want)
	}
}

// TestDecodeDoesNotRetainBody checks that the result shares no memory with
// the body, so the server may reuse its buffer, and that appending to one
// raw field cannot overwrite another.
func TestDecodeDoesNotRetainBody(t *testing.T) {
	body := []byte(`{"batch":[{"type":"identify","userId":"u","traits":{"a":1},"context":{"ip":"192.0.2.1"}},{"type":"track","userId":"u","event":"e","properties":{"b":2}}],"context":{"library":{"name":"x"}}}`)
	got, err := Decode(body, Kind{Batch: true}, received, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	snapshot := fmt.Sprintf("%+v", got.Messages)
	for i := range body {
		body[i] = 'X'
	}
	for i := range got.Messages {
		m := &got.Messages[i]
		_ = append(m.Traits, "!!!!"...)
		_ = append(m.Properties, "!!!!"...)
		_ = append(m.Context, "!!!!"...)
	}
	if after := fmt.Sprintf("%+v", got.Messages); after != snapshot {
		t.Errorf("messages changed when the body was overwritten or a field appended to:\n got  %s\n want %s", after, snapshot)
	}
}

// TestInvalidUTF8 checks that raw invalid UTF-8, which no text fixture can
// hold, is accepted and replaced by U+FFFD, and that the raw JSON that comes
// out is valid.
func TestInvalidUTF8(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		userID  string
		props   string
		context string
		err     string // the whole-body error message, if any
	}{
		{name: "in an id", body: "{\"userId\":\"a\xffb\",\"event\":\"e\"}", userID: "a\uFFFDb"},
		{name: "in properties", body: "{\"userId\":\"u\",\"event\":\"e\",\"properties\":{\"k\":\"v\xff\",\"n\":1}}", userID: "u",
			props: "{\"k\":\"v\uFFFD\",\"n\":1}"},
		{name: "in a context name", body: "{\"userId\":\"u\",\"event\":\"e\",\"context\":{\"a\xff\":1,\"b\":2}}", userID: "u",
			context: "{\"a\uFFFD\":1,\"b\":2}"},
		// The decoder compares names with invalid UTF-8 replaced, so names
		// that become the same are duplicates, refused like any others.
		{name: "names that collide once replaced", body: "{\"userId\":\"u\",\"event\":\"e\",\"properties\":{\"a\xff\":1,\"a\xfe\":2}}",
			err: "body is not JSON: duplicate object member name \"a\uFFFD\" within \"/properties\" at offset 47"},
		{name: "names that collide with a valid one once replaced", body: "{\"userId\":\"u\",\"event\":\"e\",\"context\":{\"a\uFFFD\":1,\"a\xfe\":2}}",
			err: "body is not JSON: duplicate object member name \"a\uFFFD\" within \"/context\" at offset 46"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode([]byte(tt.body), Kind{Type: custos.Track}, received, DefaultLimits)
			in := fmt.Sprintf("Decode(%q)", tt.body)
			if tt.err != "" {
				if msg := custos.ErrorMessage(err); msg != tt.err {
					t.Fatalf("%s error = %v; want %q", in, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s: %v", in, err)
			}
			if len(got.Messages) != 1 {
				t.Fatalf("%s = %d messages, rejected %v; want 1", in, len(got.Messages), got.Rejected)
			}
			m := got.Messages[0]
			if m.UserID != tt.userID {
				t.Errorf("%s userId = %q, want %q", in, m.UserID, tt.userID)
			}
			checkRaw(t, in+" properties", m.Properties, tt.props)
			checkRaw(t, in+" context", m.Context, tt.context)
		})
	}
}

func checkRaw(t *testing.T, what string, got []byte, want string) {
	t.Helper()
	if want == "" {
		if got != nil {
			t.Errorf("%s = %s, want nil", what, got)
		}
		return
	}
	if !bytes.Equal(got, []byte(want)) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
	if err := validRaw(got); err != nil {
		t.Errorf("%s = %q: %v", what, got, err)
	}
}
