package segment

import (
	"testing"
	"time"
)

func TestMissingMessageIDIsDerivedFromContent(t *testing.T) {
	decodeOne := func(body string, at time.Time) string {
		t.Helper()
		b, err := Decode([]byte(body), Kind{Batch: true}, at, DefaultLimits)
		if err != nil || len(b.Messages) != 1 {
			t.Fatalf("Decode(%s) = %v, %v", body, b, err)
		}
		return b.Messages[0].MessageID
	}
	t1 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	t2 := t1.Add(time.Hour) // a retry an hour later
	const sent = `{"batch":[{"type":"track","userId":"u","event":"e","timestamp":"2026-05-01T11:59:00Z","properties":{"a":1}}]}`
	const other = `{"batch":[{"type":"track","userId":"u","event":"e","timestamp":"2026-05-01T11:59:00Z","properties":{"a":2}}]}`
	const undated = `{"batch":[{"type":"track","userId":"u","event":"e"}]}`
	if a, b := decodeOne(sent, t1), decodeOne(sent, t2); a != b {
		t.Errorf("a retried message without id got %q then %q; want the same id so it is deduplicated", a, b)
	}
	if a, b := decodeOne(sent, t1), decodeOne(other, t1); a == b {
		t.Errorf("two different messages got the same derived id %q", a)
	}
	three, err := Decode([]byte(`{"batch":[{"type":"track","userId":"u","event":"e"},{"type":"track","userId":"u","event":"e"},{"type":"track","userId":"u","event":"e"}]}`), Kind{Batch: true}, t1, DefaultLimits)
	if err != nil || len(three.Messages) != 3 {
		t.Fatalf("decode three clicks: %v", err)
	}
	if ids := []string{three.Messages[0].MessageID, three.Messages[1].MessageID, three.Messages[2].MessageID}; ids[0] == ids[1] || ids[1] == ids[2] || ids[0] == ids[2] {
		t.Errorf("three identical undated clicks in one batch got ids %v; want three", ids)
	}
	if a, b := decodeOne(undated, t1), decodeOne(undated, t2); a == b {
		t.Errorf("two undated messages received at different times got the same id %q; two identical clicks must both count", a)
	}
}
