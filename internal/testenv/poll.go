package testenv

import "time"

// TB is the part of testing.TB, and of rapid's *rapid.T, that Poll needs.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Poll calls done until it reports true and fails t, naming what was
// awaited and describe's account of the last state, if it has not within
// timeout. It is the suite's one poll loop: a test waits for an event it
// can observe, never for a fixed time. The waits between calls start at a
// millisecond and double up to 50 ms.
func Poll(t TB, timeout time.Duration, what string, done func() bool, describe ...func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	wait := time.Millisecond
	for !done() {
		if time.Now().After(deadline) {
			state := ""
			for _, d := range describe {
				state += "; " + d()
			}
			t.Fatalf("%s: not within %v%s", what, timeout, state)
			return
		}
		time.Sleep(wait)
		wait = min(2*wait, 50*time.Millisecond)
	}
}
