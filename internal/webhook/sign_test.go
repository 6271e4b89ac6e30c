package webhook_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/custos-dev/custos/internal/webhook"
)

func TestSignFormat(t *testing.T) {
	// A fixed vector, computed apart from this package (Python's hmac),
	// so receivers in other languages can check theirs against it.
	at := time.Unix(1700000000, 0)
	got := webhook.Sign([]byte("secret"), []byte(`{"a":1}`), at)
	const want = "t=1700000000,v1=49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686"
	if got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
	if again := webhook.Sign([]byte("secret"), []byte(`{"a":1}`), at.Add(999*time.Millisecond)); again != got {
		t.Errorf("Sign within the same second = %q, want %q", again, got)
	}
}

func TestVerify(t *testing.T) {
	secret, body := []byte("whsec_1"), []byte(`{"status":"completed"}`)
	signedAt := time.Date(2025, 5, 25, 9, 0, 0, 0, time.UTC)
	header := webhook.Sign(secret, body, signedAt)
	v1 := strings.TrimPrefix(header, "t=1748163600,")
	tests := []struct {
		name   string
		secret []byte
		body   []byte
		header string
		now    time.Time
		want   error
	}{
		{"valid", secret, body, header, signedAt, nil},
		{"valid a little later", secret, body, header, signedAt.Add(4 * time.Minute), nil},
		{"valid at the tolerance", secret, body, header, signedAt.Add(5 * time.Minute), nil},
		{"valid with a clock a little behind", secret, body, header, signedAt.Add(-time.Minute), nil},
		{"valid with spaces", secret, body, strings.ReplaceAll(header, ",", ", "), signedAt, nil},
		{"valid beside a rotated-out signature", secret, body,
			"t=1748163600,v1=" + strings.Repeat("00", 32) + "," + v1, signedAt, nil},
		{"valid beside an unknown scheme", secret, body, header + ",v2=zzz", signedAt, nil},
		{"changed body", secret, []byte(`{"status":"failed"}`), header, signedAt, webhook.ErrSignatureMismatch},
		{"body with a byte added", secret, append(body, '\n'), header, signedAt, webhook.ErrSignatureMismatch},
		{"wrong secret", []byte("whsec_2"), body, header, signedAt, webhook.ErrSignatureMismatch},
		{"timestamp changed", secret, body, strings.Replace(header, "t=1748163600", "t=1748163601", 1), signedAt, webhook.ErrSignatureMismatch},
		{"old", secret, body, header, signedAt.Add(5*time.Minute + time.Second), webhook.ErrSignatureExpired},
		{"replayed a day later", secret, body, header, signedAt.Add(24 * time.Hour), webhook.ErrSignatureExpired},
		{"from the future", secret, body, header, signedAt.Add(-6 * time.Minute), webhook.ErrSignatureExpired},
		{"empty", secret, body, "", signedAt, webhook.ErrSignatureMalformed},
		{"no timestamp", secret, body, v1, signedAt, webhook.ErrSignatureMalformed},
		{"no signature", secret, body, "t=1748163600", signedAt, webhook.ErrSignatureMalformed},
		{"two timestamps", secret, body, "t=1," + header, signedAt, webhook.ErrSignatureMalformed},
		{"bad hex", secret, body, "t=1748163600,v1=xyz", signedAt, webhook.ErrSignatureMalformed},
		{"short signature", secret, body, "t=1748163600,v1=abcd", signedAt, webhook.ErrSignatureMalformed},
		{"not key=value", secret, body, header + ",junk", signedAt, webhook.ErrSignatureMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := webhook.Verify(tt.secret, tt.body, tt.header, tt.now, 5*time.Minute)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Verify(%q) at %v = %v, want %v", tt.header, tt.now, err, tt.want)
			}
		})
	}
}

func TestVerifyDefaultTolerance(t *testing.T) {
	secret, body, at := []byte("k"), []byte("{}"), time.Unix(1700000000, 0)
	header := webhook.Sign(secret, body, at)
	if err := webhook.Verify(secret, body, header, at.Add(webhook.DefaultTolerance), 0); err != nil {
		t.Errorf("Verify at DefaultTolerance, tolerance 0 = %v, want nil", err)
	}
	if err := webhook.Verify(secret, body, header, at.Add(webhook.DefaultTolerance+time.Second), 0); !errors.Is(err, webhook.ErrSignatureExpired) {
		t.Errorf("Verify past DefaultTolerance, tolerance 0 = %v, want %v", err, webhook.ErrSignatureExpired)
	}
}
