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
	srv := startServer(t, cfg)
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
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				if !flooding.Load() {
					continue
				}
				body := batchBody(t, "", trackMessages("a-"+randomHex(4), "a-"+randomHex(8), 100))
				switch code, _ := post(a.WriteKey, body); code {
				case 200:
					aOK.Add(1)
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
	p99 := func(d []time.Duration) time.Duration {
		s := slices.Clone(d)
		slices.Sort(s)
		return s[len(s)*99/100]
	}
	// Short alternating rounds, so that the machine's other load, which
	// drifts, falls on both phases alike; the verdict is the median of
	// the rounds' ratios, so that a burst of other load during one round
	// does not decide it.
	var ratios []float64
	for range 10 {
		flooding.Store(false)
		time.Sleep(300 * time.Millisecond) // A's last requests drain
		q := sampleB(60)
		flooding.Store(true)
		time.Sleep(300 * time.Millisecond)
		l := sampleB(60)
		quiet, loaded = append(quiet, q...), append(loaded, l...)
		ratios = append(ratios, float64(p99(l))/float64(p99(q)))
	}
	flooding.Store(false)
	slices.Sort(ratios)
	ratio := (ratios[len(ratios)/2-1] + ratios[len(ratios)/2]) / 2
	t.Logf("victim p99 over all rounds: %v with the flooder idle, %v flooding; per-round ratios %.2f, median %.2f; flooder: %d batches admitted, %d answered 429",
		p99(quiet), p99(loaded), ratios, ratio, aOK.Load(), aLimited.Load())
	if aLimited.Load() == 0 {
		t.Errorf("the flooder was never limited: it did not send above its share")
	}
	// Under -race the flood's admitted messages cost the victim CPU time
	// several times over (ratios of 4 to 8 measured on two cores), which
	// says nothing of the queueing: the bound is checked without it, by
	// the second run of this test in .ci/run and the README's command.
	if ratio >= 2 && !raceDetector {
		t.Errorf("victim p99 ack latency flooding / idle = %.2f (median of the rounds' ratios %.2f), want below 2", ratio, ratios)
	}
}
