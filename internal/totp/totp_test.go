package totp

import (
	"strings"
	"testing"
	"time"
)

// TestRFC6238 checks the SHA-1 test vectors of RFC 6238, appendix B (the
// last six digits of its eight-digit codes).
func TestRFC6238(t *testing.T) {
	secret := []byte("12345678901234567890")
	for _, tc := range []struct {
		unix int64
		want string
	}{
		{59, "287082"}, {1111111109, "081804"}, {1111111111, "050471"},
		{1234567890, "005924"}, {2000000000, "279037"}, {20000000000, "353130"},
	} {
		if got := At(secret, Counter(time.Unix(tc.unix, 0))); got != tc.want {
			t.Errorf("code at %d = %s, want %s", tc.unix, got, tc.want)
		}
	}
}

func TestCheck(t *testing.T) {
	secret := NewSecret()
	now := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		name string
		at   time.Time
		ok   bool
	}{
		{"now", now, true},
		{"a step early", now.Add(-Step), true},
		{"a step late", now.Add(Step), true},
		{"two steps off", now.Add(-2 * Step), false},
	} {
		code := At(secret, Counter(tc.at))
		if _, ok := Check(secret, code, now); ok != tc.ok {
			t.Errorf("%s: Check(%s) = %v, want %v", tc.name, code, ok, tc.ok)
		}
	}
	if _, ok := Check(secret, "12345", now); ok {
		t.Errorf("a five-digit code passed")
	}
	if c, ok := Check(secret, At(secret, Counter(now))[:3]+" "+At(secret, Counter(now))[3:], now); !ok || c != Counter(now) {
		t.Errorf("a code with a space = %d, %v; want step %d", c, ok, Counter(now))
	}
	if u := URI("Custos Acme", "ada", secret); !strings.HasPrefix(u, "otpauth://totp/Custos%20Acme:ada?") || !strings.Contains(u, "secret="+Encode(secret)) {
		t.Errorf("URI = %s", u)
	}
}
