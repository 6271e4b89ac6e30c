package supervise_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/custos-dev/custos/internal/supervise"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder notes the order in which parts return and steps run.
type recorder struct {
	mu    sync.Mutex
	order []string
}

func (r *recorder) note(s string) {
	r.mu.Lock()
	r.order = append(r.order, s)
	r.mu.Unlock()
}

// part runs until its context ends, then notes its name.
func (r *recorder) part(name string, started *sync.WaitGroup) func(context.Context) error {
	started.Add(1)
	return func(ctx context.Context) error {
		started.Done()
		<-ctx.Done()
		r.note(name)
		return nil
	}
}

func TestStopsStageByStageInOrder(t *testing.T) {
	var r recorder
	var started sync.WaitGroup
	s := supervise.New(nil, "http", "writer", "background", "stores")
	// Registered in an order unlike the stop order, on purpose.
	s.OnStop("stores", "key store", func() error { r.note("close key store"); return nil })
	s.OnStop("stores", "store", func() error { r.note("close store"); return nil })
	s.Go("background", "outbox", r.part("outbox", &started))
	s.Go("writer", "writer", r.part("writer", &started))
	s.Go("http", "http", r.part("http", &started))
	s.OnStop("writer", "save filter", func() error { r.note("save filter"); return nil })
	started.Wait()
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	want := []string{"http", "writer", "save filter", "outbox", "close store", "close key store"}
	if !slices.Equal(r.order, want) {
		t.Errorf("stop order %v, want %v", r.order, want)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: %v, want nil", err)
	}
	if err := s.Go("http", "late", func(context.Context) error { return nil }); err == nil {
		t.Error("Go after Stop started a part; want an error")
	}
}

func TestAStageWaitsForEveryPart(t *testing.T) {
	s := supervise.New(nil, "a", "b")
	laterCtx := make(chan context.Context, 1)
	laterLive := make(chan bool, 1)
	var started sync.WaitGroup
	started.Add(2)
	s.Go("b", "later", func(ctx context.Context) error {
		laterCtx <- ctx
		started.Done()
		<-ctx.Done()
		return nil
	})
	s.Go("a", "slow", func(ctx context.Context) error {
		started.Done()
		<-ctx.Done()
		// Finishing the work in hand: stage b must not be stopped yet.
		lc := <-laterCtx
		laterLive <- lc.Err() == nil
		return nil
	})
	started.Wait()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if !<-laterLive {
		t.Error("stage b was stopped while a part of stage a was still running")
	}
}

func TestFailedAndStopErrors(t *testing.T) {
	s := supervise.New(nil, "a", "b")
	boom := errors.New("boom")
	s.Go("a", "listener", func(context.Context) error { return boom })
	err := <-s.Failed()
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "listener") {
		t.Errorf("Failed gave %v; want boom named by its part", err)
	}
	s.Go("b", "flush", func(ctx context.Context) error { <-ctx.Done(); return errors.New("last flush") })
	s.OnStop("b", "close", func() error { return errors.New("close failed") })
	err = s.Stop()
	if err == nil || !strings.Contains(err.Error(), "flush: last flush") || !strings.Contains(err.Error(), "close: close failed") {
		t.Errorf("Stop = %v; want both the part's and the step's error", err)
	}
}

func TestNoStageNamed(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Go with an unknown stage did not panic")
		}
	}()
	supervise.New(nil, "a").Go("nope", "x", func(context.Context) error { return nil })
}
