package segment

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// A fixture is one Decode case in testdata/decode/*.txt, written like a
// txtar archive:
//
//	Free text saying what the case is about.
//	path: /v1/batch                    (required: the URL path, given to PathKind)
//	received: 2024-05-01T12:00:00Z     (optional: the server's clock; this is the default)
//	encoding: gzip                     (optional: gzip the body and read it back with ReadBody)
//	limits: {"MaxMessages": 2}         (optional: Limits as JSON; unset fields are the defaults)
//	-- body --
//	the request body, as sent
//	-- want --
//	{"writeKey": ..., "messages": [...], "rejected": [...]} or {"error": {"code": ..., "message": ...}}
//
// In want, a message's "messageId": "<generated>" matches any generated id,
// an omitted "timestamp" or "receivedAt" means the received time, and the
// raw JSON fields are compared once compacted.
type fixture struct {
	name     string
	path     string
	kind     Kind
	received time.Time
	encoding string
	limits   Limits
	body     []byte
	want     []byte
}

const defaultReceived = "2024-05-01T12:00:00Z"

type fixtureWant struct {
	WriteKey string           `json:"writeKey"`
	Messages []fixtureMessage `json:"messages"`
	Rejected []Rejection      `json:"rejected"`
	Error    *struct {
		Code    custos.Code `json:"code"`
		Message string      `json:"message"`
	} `json:"error"`
}

type fixtureMessage struct {
	Type        custos.MessageType `json:"type"`
	MessageID   string             `json:"messageId"`
	UserID      string             `json:"userId"`
	AnonymousID string             `json:"anonymousId"`
	PreviousID  string             `json:"previousId"`
	GroupID     string             `json:"groupId"`
	Event       string             `json:"event"`
	Name        string             `json:"name"`
	Properties  jsontext.Value     `json:"properties"`
	Traits      jsontext.Value     `json:"traits"`
	Context     jsontext.Value     `json:"context"`
	Timestamp   string             `json:"timestamp"`
	ReceivedAt  string             `json:"receivedAt"`
	Email       string             `json:"email"`
	DeviceIDs   []string           `json:"deviceIds"`
}

// loadFixtures reads every fixture in testdata/decode.
func loadFixtures(t testing.TB) []fixture {
	t.Helper()
	files, err := filepath.Glob("testdata/decode/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in testdata/decode: %v", err)
	}
	var fs []fixture
	for _, file := range files {
		fs = append(fs, readFixture(t, file))
	}
	return fs
}

func readFixture(t testing.TB, file string) fixture {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	f := fixture{name: strings.TrimSuffix(filepath.Base(file), ".txt")}
	f.received, _ = time.Parse(time.RFC3339Nano, defaultReceived)
	sections := map[string][]byte{}
	var current string
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		if s := strings.TrimSpace(string(line)); strings.HasPrefix(s, "-- ") && strings.HasSuffix(s, " --") {
			current = strings.TrimSpace(s[3 : len(s)-3])
			sections[current] = []byte{}
			continue
		}
		if current != "" {
			sections[current] = append(sections[current], line...)
			continue
		}
		key, value, ok := strings.Cut(strings.TrimSpace(string(line)), ": ")
		if !ok {
			continue // description
		}
		switch key {
		case "path":
			f.path = value
		case "received":
			if f.received, err = time.Parse(time.RFC3339Nano, value); err != nil {
				t.Fatalf("%s: received: %v", file, err)
			}
		case "encoding":
			f.encoding = value
		case "limits":
			if err := json.Unmarshal([]byte(value), &f.limits, json.RejectUnknownMembers(true)); err != nil {
				t.Fatalf("%s: limits: %v", file, err)
			}
		}
	}
	var ok bool
	if f.kind, ok = PathKind(f.path); !ok {
		t.Fatalf("%s: path %q is not an ingestion path", file, f.path)
	}
	f.body, f.want = sections["body"], sections["want"]
	if f.body == nil || f.want == nil {
		t.Fatalf("%s: want a body and a want section", file)
	}
	return f
}

func TestDecodeFixtures(t *testing.T) {
	for _, f := range loadFixtures(t) {
		t.Run(f.name, func(t *testing.T) {
			body := f.body
			if f.encoding != "" {
				body = readBody(t, gzipBytes(t, body), f.encoding)
			}
			got, err := Decode(body, f.kind, f.received, f.limits)
			checkDecode(t, f, got, err)
		})
	}
}

// readBody runs ReadBody and wants it to succeed.
func readBody(t *testing.T, body []byte, encoding string) []byte {
	t.Helper()
	got, err := ReadBody(bytes.NewReader(body), encoding, DefaultLimits)
	if err != nil {
		t.Fatalf("ReadBody(%d bytes, %q): %v", len(body), encoding, err)
	}
	return got
}

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var generatedID = regexp.MustCompile(`^custos-[0-9a-f]{32}$`)

// checkDecode compares what Decode returned with the fixture's want.
func checkDecode(t *testing.T, f fixture, got *Batch, err error) {
	t.Helper()
	var want fixtureWant
	if err := json.Unmarshal(f.want, &want, json.RejectUnknownMembers(true)); err != nil {
		t.Fatalf("fixture %s: want: %v", f.name, err)
	}
	in := fmt.Sprintf("Decode(%s, %s)", f.name, f.path)
	if want.Error != nil {
		if err == nil {
			t.Fatalf("%s = %d messages, %d rejected; want error %s: %s", in, len(got.Messages), len(got.Rejected), want.Error.Code, want.Error.Message)
		}
		if code, msg := custos.ErrorCode(err), custos.ErrorMessage(err); code != want.Error.Code || msg != want.Error.Message {
			t.Errorf("%s error:\n got  %s: %s\n want %s: %s", in, code, msg, want.Error.Code, want.Error.Message)
		}
		return
	}
	if err != nil {
		t.Fatalf("%s: %v", in, err)
	}
	if got.WriteKey != want.WriteKey {
		t.Errorf("%s WriteKey = %q, want %q", in, got.WriteKey, want.WriteKey)
	}
	if !slices.Equal(got.Rejected, want.Rejected) {
		t.Errorf("%s Rejected:\n got  %+v\n want %+v", in, got.Rejected, want.Rejected)
	}
	if len(got.Messages) != len(want.Messages) {
		t.Errorf("%s = %d messages, want %d", in, len(got.Messages), len(want.Messages))
	}
	for i := range min(len(got.Messages), len(want.Messages)) {
		for _, d := range diffMessage(t, &got.Messages[i], &want.Messages[i], f.received) {
			t.Errorf("%s message %d: %s", in, i, d)
		}
	}
}

// diffMessage lists how got differs from want.
func diffMessage(t *testing.T, got *custos.Message, want *fixtureMessage, received time.Time) []string {
	t.Helper()
	var diffs []string
	str := func(field, got, want string) {
		if got != want {
			diffs = append(diffs, fmt.Sprintf("%s = %q, want %q", field, got, want))
		}
	}
	raw := func(field string, got []byte, want jsontext.Value) {
		if want != nil {
			want = bytes.Clone(want)
			if err := want.Compact(); err != nil {
				t.Fatalf("want %s: %v", field, err)
			}
		}
		if !bytes.Equal(got, want) || (got == nil) != (want == nil) {
			diffs = append(diffs, fmt.Sprintf("%s = %s, want %s", field, orNil(got), orNil(want)))
		}
	}
	at := func(field string, got time.Time, want string) {
		w := received
		if want != "" {
			var err error
			if w, err = time.Parse(time.RFC3339Nano, want); err != nil {
				t.Fatalf("want %s: %v", field, err)
			}
		}
		if !got.Equal(w) {
			diffs = append(diffs, fmt.Sprintf("%s = %s, want %s", field, got.Format(time.RFC3339Nano), w.Format(time.RFC3339Nano)))
		}
	}
	str("type", string(got.Type), string(want.Type))
	if want.MessageID == "<generated>" {
		if !generatedID.MatchString(got.MessageID) {
			diffs = append(diffs, fmt.Sprintf("messageId = %q, want a generated one", got.MessageID))
		}
	} else {
		str("messageId", got.MessageID, want.MessageID)
	}
	str("userId", got.UserID, want.UserID)
	str("anonymousId", got.AnonymousID, want.AnonymousID)
	str("previousId", got.PreviousID, want.PreviousID)
	str("groupId", got.GroupID, want.GroupID)
	str("event", got.Event, want.Event)
	str("name", got.Name, want.Name)
	raw("properties", got.Properties, want.Properties)
	raw("traits", got.Traits, want.Traits)
	raw("context", got.Context, want.Context)
	at("timestamp", got.Timestamp, want.Timestamp)
	at("receivedAt", got.ReceivedAt, want.ReceivedAt)
	str("email", got.Email, want.Email)
	if !slices.Equal(got.DeviceIDs, want.DeviceIDs) {
		diffs = append(diffs, fmt.Sprintf("deviceIds = %q, want %q", got.DeviceIDs, want.DeviceIDs))
	}
	return diffs
}

func orNil(b []byte) string {
	if b == nil {
		return "nil"
	}
	return string(b)
}
