package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The headers of each delivery POST.
const (
	// HeaderSignature carries Sign's value: "t=<unix seconds>,v1=<hex HMAC>".
	HeaderSignature = "X-Custos-Signature"
	// HeaderDelivery carries the delivery id, the same on every attempt:
	// receivers deduplicate by it.
	HeaderDelivery = "X-Custos-Delivery"
	// HeaderKind carries the delivery's kind, e.g. request.status.
	HeaderKind = "X-Custos-Kind"
	// UserAgent is the User-Agent of each delivery POST.
	UserAgent = "custos-webhook/1"
)

// DefaultTolerance is how far a signature's timestamp may be from the
// receiver's clock when Verify is given no tolerance.
const DefaultTolerance = 5 * time.Minute

// The errors Verify returns.
var (
	ErrSignatureMalformed = errors.New("webhook: malformed signature header")
	ErrSignatureMismatch  = errors.New("webhook: signature does not match")
	ErrSignatureExpired   = errors.New("webhook: signature timestamp outside tolerance")
)

// Sign returns the signature header value for body at time t:
// "t=<unix seconds>,v1=<hex HMAC-SHA-256(secret, "<unix>.<body>")>".
// The timestamp is inside the MAC, so a receiver that refuses old
// timestamps refuses replays.
func Sign(secret, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks a header made by Sign for body and secret. It refuses a
// header whose timestamp is more than tolerance away from now, in the past
// (a replay) or in the future (a clock far off); tolerance <= 0 means
// DefaultTolerance. A header may carry several v1 values (a sender
// rotating secrets); one match is enough. The error wraps
// ErrSignatureMalformed, ErrSignatureMismatch or ErrSignatureExpired.
func Verify(secret, body []byte, header string, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	var (
		ts   string
		sigs [][]byte
	)
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("%w: %q is not key=value", ErrSignatureMalformed, part)
		}
		switch k {
		case "t":
			if ts != "" {
				return fmt.Errorf("%w: two timestamps", ErrSignatureMalformed)
			}
			ts = v
		case "v1":
			sig, err := hex.DecodeString(v)
			if err != nil || len(sig) != sha256.Size {
				return fmt.Errorf("%w: v1 is not a hex HMAC-SHA-256", ErrSignatureMalformed)
			}
			sigs = append(sigs, sig)
		}
		// Other keys are later schemes; ignoring them lets a sender offer
		// a new one beside v1.
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: no timestamp", ErrSignatureMalformed)
	}
	if len(sigs) == 0 {
		return fmt.Errorf("%w: no v1 signature", ErrSignatureMalformed)
	}
	want := mac(secret, ts, body)
	match := false
	for _, sig := range sigs {
		match = hmac.Equal(sig, want) || match
	}
	if !match {
		return ErrSignatureMismatch
	}
	if age := now.Sub(time.Unix(unix, 0)); age > tolerance || age < -tolerance {
		return fmt.Errorf("%w: signed %s ago, tolerance %s", ErrSignatureExpired, age.Round(time.Second), tolerance)
	}
	return nil
}
