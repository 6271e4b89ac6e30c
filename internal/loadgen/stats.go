package loadgen

import (
	"maps"
	"sync"
	"time"
)

// earlyStopAfter is how many requests must fail, with none succeeding yet,
// before a run gives up: a wrong write key or URL fails every request, and
// there is no point in sending a million of them.
const earlyStopAfter = 5

// stats gathers the outcome of every request of a run. Senders and the
// progress reporter share it; a mutex is cheap next to an HTTP round trip.
type stats struct {
	mu        sync.Mutex
	hist      histogram
	events    int // acknowledged
	failedEvs int // carried by failed requests
	requests  int
	errors    int
	bytes     int64
	status    map[int]int
	firstErr  string
}

func newStats() *stats { return &stats{status: make(map[int]int)} }

// success records a request acknowledged with a 2xx status.
func (s *stats) success(status, events, size int, latency time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hist.record(latency)
	s.events += events
	s.requests++
	s.bytes += int64(size)
	s.status[status]++
}

// failure records a failed request: status 0 for a transport error. It
// reports whether the run should stop because no request has succeeded
// and enough have failed to conclude none will.
// Its latency is left out: the percentiles are of acknowledgements, and a
// timeout or a quick 401 would only blur them.
func (s *stats) failure(status, events, size int, desc string) (stop bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failedEvs += events
	s.requests++
	s.errors++
	s.bytes += int64(size)
	s.status[status]++
	if s.firstErr == "" {
		s.firstErr = desc
	}
	return s.events == 0 && s.errors >= earlyStopAfter
}

// progress is what the progress line shows.
type progress struct {
	sent, acked, errors int
	p50                 time.Duration
}

func (s *stats) progress() progress {
	s.mu.Lock()
	defer s.mu.Unlock()
	return progress{
		sent:   s.events + s.failedEvs,
		acked:  s.events,
		errors: s.errors,
		p50:    s.hist.quantile(0.50),
	}
}

func (s *stats) result(elapsed time.Duration, seed int64) Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := Result{
		Events:       s.events,
		Requests:     s.requests,
		Errors:       s.errors,
		Bytes:        s.bytes,
		Elapsed:      elapsed,
		P50:          s.hist.quantile(0.50),
		P90:          s.hist.quantile(0.90),
		P99:          s.hist.quantile(0.99),
		Max:          s.hist.max,
		StatusCounts: maps.Clone(s.status),
		FirstError:   s.firstErr,
		Seed:         seed,
	}
	if elapsed > 0 {
		r.EventsPerSec = float64(s.events) / elapsed.Seconds()
	}
	return r
}

func (s *stats) firstError() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.firstErr
}
