// Package retry is the one retry schedule Custos's senders share: the
// webhook outbox, incident e-mail and OpenDSR forwarding all wait the same
// way between attempts.
package retry

import (
	"math/rand/v2"
	"time"
)

// Backoff is the wait before attempt n+1 after n failed ones (or before
// poll n): first·2^(n-1), capped at most, within ±10% so that attempts
// failed together do not retry together.
func Backoff(n int, first, most time.Duration) time.Duration {
	b := first
	for i := 1; i < n && b < most; i++ {
		if b > most/2 {
			b = most
			break
		}
		b *= 2
	}
	b = min(b, most)
	return time.Duration(float64(b) * (0.9 + 0.2*rand.Float64()))
}
