// Package supervise runs a node's long-lived parts and stops them in a
// defined order.
//
// A Supervisor is made with named stages. Go starts a part — anything
// with a Run(ctx) error method, given as its method value — in a stage;
// OnStop registers a closing step (closing a store) in a stage. Stop goes
// through the stages in the order New was given them: it cancels the
// contexts of the stage's parts, waits until every one has returned,
// then runs the stage's closing steps, last registered first, before it
// moves on to the next stage. So "stop accepting HTTP, drain the writer,
// stop the background parts, close the stores" is the list of stages.
package supervise

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
)

// Supervisor starts parts and stops them stage by stage. Create it with
// New; it is safe for concurrent use.
type Supervisor struct {
	log    *slog.Logger
	failed chan error

	mu      sync.Mutex
	stages  []*stage
	stopped bool
	errs    []error
}

type stage struct {
	name    string
	cancels []context.CancelFunc
	wg      sync.WaitGroup
	closers []closer
}

type closer struct {
	name string
	fn   func() error
}

// New returns a Supervisor with these stages, in the order Stop stops
// them.
func New(log *slog.Logger, stages ...string) *Supervisor {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Supervisor{log: log, failed: make(chan error, 1)}
	for _, n := range stages {
		s.stages = append(s.stages, &stage{name: n})
	}
	return s
}

func (s *Supervisor) stage(name string) *stage {
	for _, st := range s.stages {
		if st.name == name {
			return st
		}
	}
	panic(fmt.Sprintf("supervise: no stage %q", name))
}

// Go starts run in a goroutine of the named stage; its context ends when
// Stop reaches that stage. A part that returns an error before it is
// asked to stop is logged and reported on Failed; returning nil early is
// allowed (a part with nothing to do). After Stop, Go starts nothing and
// returns an error.
func (s *Supervisor) Go(stageName, name string, run func(context.Context) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return fmt.Errorf("start %s: the supervisor is stopping", name)
	}
	st := s.stage(stageName)
	ctx, cancel := context.WithCancel(context.Background())
	st.cancels = append(st.cancels, cancel)
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		err := run(ctx)
		if err == nil {
			return
		}
		err = fmt.Errorf("%s: %w", name, err)
		if ctx.Err() != nil {
			s.log.Error("stopped with an error", "part", name, "err", err)
			s.mu.Lock()
			s.errs = append(s.errs, err)
			s.mu.Unlock()
			return
		}
		s.log.Error("failed", "part", name, "err", err)
		select {
		case s.failed <- err:
		default:
		}
	}()
	return nil
}

// OnStop registers fn to run when Stop reaches the named stage, after
// the stage's parts have returned. Steps of a stage run last registered
// first, as defers do.
func (s *Supervisor) OnStop(stageName, name string, fn func() error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stage(stageName)
	st.closers = append(st.closers, closer{name, fn})
}

// Failed reports the first part that returned an error before Stop.
func (s *Supervisor) Failed() <-chan error { return s.failed }

// Stop stops every stage in order and returns the errors parts and
// closing steps returned while stopping. Later calls return at once.
func (s *Supervisor) Stop() error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	stages := s.stages
	s.mu.Unlock()
	var errs []error
	for _, st := range stages {
		for _, cancel := range st.cancels {
			cancel()
		}
		st.wg.Wait()
		for i := len(st.closers) - 1; i >= 0; i-- {
			c := st.closers[i]
			if err := c.fn(); err != nil {
				err = fmt.Errorf("%s: %w", c.name, err)
				s.log.Error("stop", "step", c.name, "err", err)
				errs = append(errs, err)
			}
		}
	}
	s.mu.Lock()
	errs = append(s.errs, errs...)
	s.mu.Unlock()
	return errors.Join(errs...)
}
