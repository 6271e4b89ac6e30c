package main

import (
	"bytes"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestFairnessUnderFlood: tenant A offers ten times its share (its rate
// limit) from ten senders while tenant B sends within its share; B's p99
// acknowledgement latency with A flooding stays below twice its value
// with A idle. The two are measured in one run, in alternating rounds, so
// that the machine's other load weighs on both alike, and judged by the
// median of the rounds' ratios. Not parallel: it measures latency.
func TestFairnessUnderFlood(t *testing.T) {
	cfg := newServerConfig(t)
	const share = 1000 // messages per second per tenant
	cfg.extraArgs = append(cfg.extraArgs, "--rate-ingest", "1000", "--rate-ingest-burst", "1000")
	// The server runs in its own process, as in production, so that the
	// garbage of the test's ten flooding senders is not collected on the
	// server's time.
	child := startChild(t, cfg)
	srv := &testServer{cfg: cfg, URL: child.URL, http: &http.Client{Timeout: 20 * time.Second}}
	a, b := srv.createTenant(t, "flooder"), srv.createTenant(t, "victim")
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}

	post := func(writeKey string, body []byte) (int, time.Duration) {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/batch", bytes.NewReader(body))
		req.Header.Set("Authorization", basicAuth(writeKey))
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			t.Errorf("POST: %v", err)
			return 0, 0
		}
		var sink [512]byte
		for {
			if _, err := resp.Body.Read(sink[:]); err != nil {
				break
			}
		}
		resp.Body.Close()
		return resp.StatusCode, time.Since(start)
	}

	// A: 10 senders, 100-message batches, each 10 a second: 10,000
	// messages/s offered against a share of 1,000.
	var flooding atomic.Bool
	var aOK, aLimited atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for s := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			// Like an SDK, a sender retries a refused batch until it is
			// admitted, then makes the next.
			var body []byte
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				if !flooding.Load() {
					continue
				}
				if body == nil {
					body = batchBody(t, "", trackMessages("a-"+randomHex(4), "a-"+randomHex(8), 100))
				}
				switch code, _ := post(a.WriteKey, body); code {
				case 200:
					aOK.Add(1)
					body = nil
				case 429:
					aLimited.Add(1)
				default:
					t.Errorf("flooder sender %d: status %d", s, code)
				}
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()

	// B: 10-message batches every 20 ms (500 messages/s, half its share).
	var quiet, loaded []time.Duration
	sampleB := func(n int) []time.Duration {
		out := make([]time.Duration, 0, n)
		for range n {
			body := batchBody(t, "", trackMessages("b-"+randomHex(4), "b-"+randomHex(8), 10))
			code, took := post(b.WriteKey, body)
			if code != 200 {
				t.Fatalf("victim: status %d", code)
			}
			out = append(out, took)
			time.Sleep(20 * time.Millisecond)
		}
		return out
	}
	sampleB(20) // warm up connections and caches
	quantile := func(d []time.Duration, q float64) time.Duration {
		s := slices.Clone(d)
		slices.Sort(s)
		return s[int(float64(len(s))*q)]
	}
	p50 := func(d []time.Duration) time.Duration { return quantile(d, 0.50) }
	p99 := func(d []time.Duration) time.Duration { return quantile(d, 0.99) }
	// Short alternating rounds, so that the machine's other load, which
	// drifts, falls on both phases alike; each phase's p99 is taken over
	// all its rounds' samples (960 of them: the 10th slowest), since the
	// p99 of one round's 60 is its slowest request, which one stall of
	// the disk decides. Under -race only the limiting is checked (below),
	// so a few rounds do.
	rounds := 16
	if raceDetector {
		rounds = 3
	}
	for range rounds {
		flooding.Store(false)
		time.Sleep(300 * time.Millisecond) // A's last requests drain
		quiet = append(quiet, sampleB(60)...)
		flooding.Store(true)
		time.Sleep(300 * time.Millisecond)
		loaded = append(loaded, sampleB(60)...)
	}
	flooding.Store(false)
	ratio := float64(p99(loaded)) / float64(p99(quiet))
	t.Logf("victim ack latency with the flooder idle: p50 %v, p99 %v; flooding: p50 %v, p99 %v (%d requests each); flooder: %d batches admitted, %d answered 429",
		p50(quiet), p99(quiet), p50(loaded), p99(loaded), len(quiet), aOK.Load(), aLimited.Load())
	if aLimited.Load() == 0 {
		t.Errorf("the flooder was never limited: it did not send above its share")
	}
	// Under -race the flood's admitted messages cost the victim CPU time
	// several times over (ratios of 4 to 8 measured on two cores), which
	// says nothing of the queueing: the bound is checked without it, by
	// the second run of this test in .ci/run and the README's command.
	if ratio >= 2 && !raceDetector {
		t.Errorf("victim p99 ack latency flooding / idle = %.2f, want below 2", ratio)
	}
}
