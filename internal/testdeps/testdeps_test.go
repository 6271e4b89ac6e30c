package testdeps

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// TestOnce: however many tests ask at once, a setup runs once, only when
// its readiness check fails, and every caller gets its outcome.
func TestOnce(t *testing.T) {
	var ready atomic.Bool
	var setups atomic.Int32
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			errs[i] = once(t, "TestOnce ready after setup", func() error {
				if !ready.Load() {
					return errors.New("not yet")
				}
				return nil
			}, func() error {
				setups.Add(1)
				ready.Store(true)
				return nil
			})
		})
	}
	wg.Wait()
	if n := setups.Load(); n != 1 {
		t.Errorf("setup ran %d times, want 1", n)
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("caller %d: %v, want nil", i, err)
		}
	}

	// Ready from the start: no setup.
	if err := once(t, "TestOnce ready", func() error { return nil }, func() error {
		t.Error("setup ran although ready")
		return nil
	}); err != nil {
		t.Errorf("once when ready = %v, want nil", err)
	}

	// A failed setup fails every caller, naming what was set up, and is
	// not retried.
	calls := 0
	fail := func() error { calls++; return errors.New("no root") }
	for range 2 {
		err := once(t, "TestOnce failing", func() error { return errors.New("missing") }, fail)
		if err == nil || !strings.Contains(err.Error(), "TestOnce failing") || !strings.Contains(err.Error(), "no root") {
			t.Errorf("once with a failing setup = %v, want an error naming the setup and its cause", err)
		}
	}
	if calls != 1 {
		t.Errorf("failing setup ran %d times, want 1", calls)
	}

	// A setup that leaves it not ready fails too.
	err := once(t, "TestOnce still missing", func() error { return errors.New("still missing") }, func() error { return nil })
	if err == nil || !strings.Contains(err.Error(), "still missing") {
		t.Errorf("once whose setup does not make it ready = %v, want the readiness error", err)
	}
}

func TestNewest(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want string
	}{
		{[]string{"15"}, "15"},
		{[]string{"9.6", "10", "15", "13"}, "15"},
		{[]string{"17", "9.6"}, "17"},
	} {
		if got := newest(c.in); got != c.want {
			t.Errorf("newest(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
