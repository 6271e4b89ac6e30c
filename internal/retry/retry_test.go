package retry

import (
	"testing"
	"time"
)

// TestBackoff checks the schedule doubles from min, stops at max, and
// stays within ±10% of it.
func TestBackoff(t *testing.T) {
	for _, c := range []struct {
		n    int
		want time.Duration
	}{{0, time.Second}, {1, time.Second}, {2, 2 * time.Second}, {4, 8 * time.Second}, {10, time.Minute}, {1000, time.Minute}} {
		for range 50 {
			got := Backoff(c.n, time.Second, time.Minute)
			if lo, hi := c.want*9/10, c.want*11/10; got < lo || got > hi {
				t.Fatalf("Backoff(%d, 1s, 1m) = %s, want %s ±10%%", c.n, got, c.want)
			}
		}
	}
}
