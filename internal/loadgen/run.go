package loadgen

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Run sends load to cfg.Server as cfg describes and returns what it
// measured. While it runs it writes a progress line to progress every
// second (nil for none), and a last one ending in a newline when it stops.
//
// A failed request is counted, not retried. If the first requests all
// fail, as with a wrong write key or URL, Run stops early with an error
// naming the status and the start of the server's response. If ctx is
// cancelled, Run stops at once, abandoning requests in flight, and returns
// what it measured so far with ctx.Err(). The Result is filled in whatever
// the error, except for an invalid Config.
func Run(ctx context.Context, cfg Config, progress io.Writer) (Result, error) {
	cfg, err := cfg.resolve()
	if err != nil {
		return Result{}, err
	}
	seed := cfg.Seed
	for seed == 0 {
		seed = rand.Int64()
	}
	client := cfg.Client
	if client == nil {
		t := newTransport(cfg.Concurrency)
		defer t.CloseIdleConnections()
		client = &http.Client{Transport: t, Timeout: 60 * time.Second}
	}
	gen := newGenerator(seed, cfg.Users, cfg.Batch == 1)
	st := newStats()
	work := &plan{events: uint64(cfg.Events), batch: uint64(cfg.Batch)}

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	start := time.Now()
	if cfg.Duration > 0 {
		// Time is up for starting requests; those in flight still count.
		t := time.AfterFunc(cfg.Duration, func() { work.stopped.Store(true) })
		defer t.Stop()
	}

	var senders sync.WaitGroup
	for range cfg.Concurrency {
		s := newSender(cfg, gen, client, st)
		senders.Go(func() { s.run(runCtx, work, cancel) })
	}
	var pw *progressWriter
	done := make(chan struct{})
	var reporter sync.WaitGroup
	if progress != nil {
		pw = &progressWriter{w: progress, total: cfg.Events, duration: cfg.Duration, start: start}
		reporter.Go(func() { pw.report(st, done) })
	}
	senders.Wait()
	elapsed := time.Since(start)
	close(done)
	reporter.Wait()

	res := st.result(elapsed, seed)
	if pw != nil {
		pw.finish(st, res.EventsPerSec)
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if err := context.Cause(runCtx); err != nil {
		return res, err
	}
	if res.Events == 0 && res.Errors > 0 {
		return res, fmt.Errorf("all %d requests failed; the first: %s", res.Errors, res.FirstError)
	}
	return res, nil
}

// plan hands out batches to senders: batch b carries messages
// b*batch up to the event limit, if any.
type plan struct {
	events  uint64 // 0: no limit
	batch   uint64
	next    atomic.Uint64
	stopped atomic.Bool
}

func (p *plan) claim() (b, first uint64, n int, ok bool) {
	if p.stopped.Load() {
		return 0, 0, 0, false
	}
	b = p.next.Add(1) - 1
	first = b * p.batch
	n64 := p.batch
	if p.events > 0 {
		if first >= p.events {
			return 0, 0, 0, false
		}
		n64 = min(n64, p.events-first)
	}
	return b, first, int(n64), true
}

func newTransport(concurrency int) *http.Transport {
	return &http.Transport{
		Proxy:               nil, // the server under test is ours: never through a proxy
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        concurrency,
		MaxIdleConnsPerHost: concurrency,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
		DisableCompression:  true,
	}
}
