// Package totp computes and checks time-based one-time passwords
// (RFC 6238: HMAC-SHA-1, 30-second steps, 6 digits), the second factor of
// console users, as authenticator apps compute them.
package totp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Step is the time step of a code.
const Step = 30 * time.Second

// Digits is the length of a code.
const Digits = 6

// NewSecret returns a random 20-byte secret (the size RFC 4226
// recommends for HMAC-SHA-1).
func NewSecret() []byte {
	b := make([]byte, 20)
	rand.Read(b)
	return b
}

// Encode is the secret as authenticator apps take it typed in: base32
// without padding.
func Encode(secret []byte) string {
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(secret)
}

// URI is the otpauth:// URI of the secret, for an app that reads it.
func URI(issuer, account string, secret []byte) string {
	v := url.Values{"secret": {Encode(secret)}, "issuer": {issuer}, "algorithm": {"SHA1"}, "digits": {"6"}, "period": {"30"}}
	return "otpauth://totp/" + url.PathEscape(issuer+":"+account) + "?" + v.Encode()
}

// Counter is the step number of t.
func Counter(t time.Time) uint64 { return uint64(t.Unix()) / uint64(Step/time.Second) }

// At returns the code of secret for step counter (RFC 4226's HOTP).
func At(secret []byte, counter uint64) string {
	mac := hmac.New(sha1.New, secret)
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	n := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	return fmt.Sprintf("%06d", n%1_000_000)
}

// Check reports whether code is the secret's code at now or one step
// either side (clocks drift), and returns the step it matched, so that
// a caller can refuse a code used before.
func Check(secret []byte, code string, now time.Time) (counter uint64, ok bool) {
	code = strings.ReplaceAll(strings.TrimSpace(code), " ", "")
	if len(code) != Digits {
		return 0, false
	}
	c := Counter(now)
	for _, s := range []uint64{c - 1, c, c + 1} {
		if subtle.ConstantTimeCompare([]byte(At(secret, s)), []byte(code)) == 1 {
			return s, true
		}
	}
	return 0, false
}
