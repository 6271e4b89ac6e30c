package segment

import (
	"testing"
	"time"
)

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		want string // RFC 3339 in UTC; "" if in must be refused
	}{
		{"2024-05-01T12:34:56Z", "2024-05-01T12:34:56Z"},
		{"2024-05-01T12:34:56.789Z", "2024-05-01T12:34:56.789Z"},
		{"2024-05-01T12:34:56.123456789Z", "2024-05-01T12:34:56.123456789Z"},
		{"2024-05-01T12:34:56.1Z", "2024-05-01T12:34:56.1Z"},
		{"2024-05-01T14:34:56+02:00", "2024-05-01T12:34:56Z"},
		{"2024-05-01T02:04:56-10:30", "2024-05-01T12:34:56Z"},
		{"2024-05-01T12:34:56.5-00:00", "2024-05-01T12:34:56.5Z"},
		{"2024-05-01t12:34:56z", "2024-05-01T12:34:56Z"},
		{"2024-02-29T00:00:00Z", "2024-02-29T00:00:00Z"},
		{"2000-02-29T00:00:00Z", "2000-02-29T00:00:00Z"},
		{"2024-05-01T12:34:56.123456", "2024-05-01T12:34:56.123456Z"},
		{"2024-05-01T12:34:56", "2024-05-01T12:34:56Z"},
		{"0001-01-01T00:00:00Z", ""}, // out of the storable range
		{"9999-12-31T23:59:59Z", ""},
		{"1700-01-01T00:00:00Z", "1700-01-01T00:00:00Z"},
		{"2023-02-29T00:00:00Z", ""},
		{"1900-02-29T00:00:00Z", ""},
		{"2024-04-31T00:00:00Z", ""},
		{"2024-13-01T00:00:00Z", ""},
		{"2024-00-01T00:00:00Z", ""},
		{"2024-05-01T24:00:00Z", ""},
		{"2024-05-01T12:60:00Z", ""},
		{"2024-05-01T12:00:60Z", ""},
		{"2024-05-01T12:00:00.Z", ""},
		{"2024-05-01T12:00:00+2:00", ""},
		{"2024-05-01T12:00:00+24:00", "2024-04-30T12:00:00Z"}, // time.Parse allows it
		{"2024-05-01 12:00:00Z", ""},
		{"2024-05-01", ""},
		{"1714566896", ""},
		{"yesterday", ""},
		{"", ""},
	}
	for _, tt := range tests {
		got, ok := parseTime([]byte(tt.in))
		if tt.want == "" {
			if ok {
				t.Errorf("parseTime(%q) = %v; want it refused", tt.in, got)
			}
			continue
		}
		want, err := time.Parse(time.RFC3339Nano, tt.want)
		if err != nil {
			t.Fatal(err)
		}
		if !ok || !got.Equal(want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v", tt.in, got, ok, want)
		}
	}
}

// FuzzParseRFC3339 checks the fast parser against time.Parse: whatever it
// accepts, time.Parse must accept as the same instant.
func FuzzParseRFC3339(f *testing.F) {
	for _, s := range []string{"2024-05-01T12:34:56.789Z", "2024-05-01T14:34:56+02:00", "2024-02-29T00:00:00.123456789-11:59"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseRFC3339([]byte(s))
		if !ok {
			return
		}
		// time.Parse wants "T" and "Z" where RFC 3339 allows "t" and "z" too.
		b := []byte(s)
		b[10] = 'T'
		if last := len(b) - 1; b[last] == 'z' {
			b[last] = 'Z'
		}
		want, err := time.Parse(time.RFC3339Nano, string(b))
		if err != nil || !got.Equal(want) {
			t.Errorf("parseRFC3339(%q) = %v; time.Parse says %v, %v", s, got, want, err)
		}
	})
}
