package segment

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/custos-dev/custos"
)

func TestTruncateIP(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"203.0.113.77", "203.0.113.0"},
		{"203.0.113.0", "203.0.113.0"},
		{" 10.1.2.3 ", "10.1.2.0"},
		{"10.1.2.3:5678", "10.1.2.0"},
		{"::ffff:198.51.100.9", "198.51.100.0"},
		{"2001:db8:abcd:12:3456:7890:abcd:ef01", "2001:db8:abcd::"},
		{"[2001:db8:abcd:12::1]:443", "2001:db8:abcd::"},
		{"fe80::1%eth0", "fe80::"},
		{"2001:db8:abcd::", "2001:db8:abcd::"},
		{"not an address", ""},
		{"1.2.3.4, 5.6.7.8", ""},
		{"", ""},
	} {
		if got := TruncateIP(c.in); got != c.want {
			t.Errorf("TruncateIP(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestTruncateContextIP(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"ip":"203.0.113.77","library":{"name":"x"}}`, `{"ip":"203.0.113.0","library":{"name":"x"}}`},
		{`{"library":{"name":"x","ip":"1.2.3.4"},"ip":"2001:db8:abcd:12::1"}`, `{"library":{"name":"x","ip":"1.2.3.4"},"ip":"2001:db8:abcd::"}`},
		{`{"\u0069p":"203.0.113.77"}`, `{"\u0069p":"203.0.113.0"}`},
		{`{"ip":"203.0.113.77","ip":"198.51.100.9"}`, `{"ip":"203.0.113.0","ip":"198.51.100.0"}`},
		{`{"ip":"somewhere"}`, `{"ip":""}`},
		{`{"ip":"203.0.113.0"}`, `{"ip":"203.0.113.0"}`},
		{`{"ip":42}`, `{"ip":42}`},
		{`{"library":{"name":"x"}}`, `{"library":{"name":"x"}}`},
		{`[1]`, `[1]`},
	} {
		got := TruncateContextIP([]byte(c.in))
		if string(got) != c.want {
			t.Errorf("TruncateContextIP(%s) = %s, want %s", c.in, got, c.want)
		}
		if !json.Valid(got) {
			t.Errorf("TruncateContextIP(%s) = %s, not valid JSON", c.in, got)
		}
	}
	unchanged := []byte(`{"ip":"203.0.113.0"}`)
	if got := TruncateContextIP(unchanged); &got[0] != &unchanged[0] {
		t.Errorf("TruncateContextIP copied a context it did not change")
	}
}

// TestTruncateIPsBatchContext checks that messages sharing the batch
// context get the truncated address, and that their own context wins.
func TestTruncateIPsBatchContext(t *testing.T) {
	b, err := Decode([]byte(`{"context":{"ip":"203.0.113.77"},"batch":[
		{"type":"track","userId":"u","event":"a"},
		{"type":"track","userId":"u","event":"b"},
		{"type":"track","userId":"u","event":"c","context":{"ip":"2001:db8:abcd:12::1"}}]}`), Kind{Batch: true}, time.Now(), DefaultLimits)
	if err != nil || len(b.Messages) != 3 {
		t.Fatalf("Decode = %v, %v", b, err)
	}
	TruncateIPs(b.Messages)
	for i, want := range []string{"203.0.113.0", "203.0.113.0", "2001:db8:abcd::"} {
		var c struct{ IP string }
		if err := json.Unmarshal(b.Messages[i].Context, &c); err != nil || c.IP != want {
			t.Errorf("message %d context %s: ip %q, want %q", i, b.Messages[i].Context, c.IP, want)
		}
	}
	TruncateIPs([]custos.Message{{}}) // no context: nothing to do
}

// TestDerivedIDIgnoresHostPart checks that the id derived for a message
// without one does not depend on the part of the address truncation
// removes: it is kept with the event even when the address is truncated.
func TestDerivedIDIgnoresHostPart(t *testing.T) {
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	id := func(ip string) string {
		b, err := Decode([]byte(`{"batch":[{"type":"track","userId":"u","event":"e","timestamp":"2026-05-01T11:59:00Z","context":{"ip":"`+ip+`"}}]}`), Kind{Batch: true}, at, DefaultLimits)
		if err != nil || len(b.Messages) != 1 {
			t.Fatalf("Decode = %v", err)
		}
		return b.Messages[0].MessageID
	}
	if a, b := id("203.0.113.77"), id("203.0.113.0"); a != b {
		t.Errorf("derived ids %q and %q differ only by the truncated host part; the id would reveal it", a, b)
	}
	if a, b := id("203.0.113.77"), id("203.0.114.77"); a == b {
		t.Errorf("derived ids of messages from different networks are both %q", a)
	}
}
