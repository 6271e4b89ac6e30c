package testenv

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// fatalRecorder records Fatalf instead of stopping the test.
type fatalRecorder struct{ msg string }

func (f *fatalRecorder) Helper() {}
func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
}

func TestPoll(t *testing.T) {
	calls := 0
	var f fatalRecorder
	Poll(&f, time.Second, "third call", func() bool { calls++; return calls == 3 })
	if f.msg != "" || calls != 3 {
		t.Errorf("Poll until the third call: %d calls, failure %q; want 3 calls, no failure", calls, f.msg)
	}
	Poll(&f, 20*time.Millisecond, "never", func() bool { return false }, func() string { return "state 7" })
	if !strings.Contains(f.msg, "never: not within 20ms") || !strings.Contains(f.msg, "state 7") {
		t.Errorf("Poll that times out failed with %q; want what, the timeout and the state", f.msg)
	}
}
