package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestFairnessUnderFlood: tenant A offers ten times its share (its rate
// limit) from ten senders while tenant B sends within its share; B's p99
// acknowledgement latency with A flooding stays below twice its value
// with A idle. The two are measured in one run, in alternating rounds, so
// that the machine's other load weighs on both alike. Not parallel: it
// measures latency.
func TestFairnessUnderFlood(t *testing.T) {
	cfg := newServerConfig(t)
	const share = 1000 // messages per second per tenant
	cfg.extraArgs = append(cfg.extraArgs, "--rate-ingest", "1000", "--rate-ingest-burst", "1000")
	// The server runs in its own process, as in production, so that the
	// garbage of the test's clients is not collected on the server's time.
	child := startChild(t, cfg)
	srv := &testServer{cfg: cfg, URL: child.URL, http: &http.Client{Timeout: 20 * time.Second}}
	a, b := srv.createTenant(t, "flooder"), srv.createTenant(t, "victim")
	// A's senders run in a process of their own, as another client
	// would: in this one their garbage and goroutines would be collected
	// and scheduled on the time of B's measured requests.
	flooder := startFlooder(t, srv.URL, a.WriteKey)
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	post := func(writeKey string, body []byte) (int, time.Duration) {
		start := time.Now()
		code, err := postBatch(client, srv.URL, writeKey, body)
		if err != nil {
			t.Errorf("POST: %v", err)
		}
		return code, time.Since(start)
	}

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
	// Dirty pages left by earlier work (in CI, the whole race run's stores
	// and PostgreSQL's databases) would be written back during the
	// measurement, on the disk the victim's acknowledgements sync to.
	syscall.Sync()
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
	// all its rounds' samples (1,440 of them: the 15th slowest), since the
	// p99 of one round's 60 is its slowest request, which one stall of
	// the disk decides (with 960 of them, quiet runs measured ratios from
	// 1.08 to 2.05). Under -race only the limiting is checked (below), so
	// a few rounds do.
	rounds := 24
	if raceDetector {
		rounds = 3
	}
	for range rounds {
		flooder.set(false)
		time.Sleep(300 * time.Millisecond) // A's last requests drain
		quiet = append(quiet, sampleB(60)...)
		flooder.set(true)
		time.Sleep(300 * time.Millisecond)
		loaded = append(loaded, sampleB(60)...)
	}
	aOK, aLimited := flooder.stop(t)
	ratio := float64(p99(loaded)) / float64(p99(quiet))
	t.Logf("victim ack latency with the flooder idle: p50 %v, p99 %v; flooding: p50 %v, p99 %v (%d requests each); flooder: %d batches admitted, %d answered 429",
		p50(quiet), p99(quiet), p50(loaded), p99(loaded), len(quiet), aOK, aLimited)
	if aLimited == 0 {
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

// Environment of the test binary re-executed as TestFairnessUnderFlood's
// flooding tenant.
const (
	flooderEnv    = "CUSTOS_E2E_FLOODER"     // the server's URL
	flooderKeyEnv = "CUSTOS_E2E_FLOODER_KEY" // the tenant's write key
)

// flooderProcess is the flooding tenant's senders in a child process:
// "on" and "off" lines on its input start and pause them, and when its
// input closes it prints its counts and exits.
type flooderProcess struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out bytes.Buffer
}

func startFlooder(t *testing.T, url, writeKey string) *flooderProcess {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f := &flooderProcess{cmd: exec.Command(exe, "-test.run=^$")}
	f.cmd.Env = append(os.Environ(), flooderEnv+"="+url, flooderKeyEnv+"="+writeKey)
	f.cmd.Stdout = &f.out
	f.cmd.Stderr = &f.out
	if f.in, err = f.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := f.cmd.Start(); err != nil {
		t.Fatalf("start flooder: %v", err)
	}
	t.Cleanup(func() {
		if f.cmd.ProcessState == nil {
			f.cmd.Process.Kill()
			f.cmd.Wait()
		}
	})
	return f
}

// set starts or pauses the flooding.
func (f *flooderProcess) set(on bool) {
	line := "off\n"
	if on {
		line = "on\n"
	}
	io.WriteString(f.in, line)
}

// stop ends the flooder and returns how many of its batches were
// admitted and how many answers were 429.
func (f *flooderProcess) stop(t *testing.T) (admitted, limited int64) {
	t.Helper()
	f.in.Close()
	if err := f.cmd.Wait(); err != nil {
		t.Fatalf("flooder: %v; output:\n%s", err, f.out.String())
	}
	if _, err := fmt.Sscanf(f.out.String(), "admitted %d limited %d", &admitted, &limited); err != nil {
		t.Fatalf("flooder output %q: %v", f.out.String(), err)
	}
	return admitted, limited
}

// runFlooder is the flooder process's body: ten senders, each posting a
// 100-message batch every 100 ms while on (10,000 messages/s offered).
// Like an SDK, a sender resends a refused batch until it is admitted, then
// makes the next. Any other answer ends the process with an error.
func runFlooder(url, writeKey string, control io.Reader) error {
	var on atomic.Bool
	var admitted, limited atomic.Int64
	failed := make(chan error, 10)
	stop := make(chan struct{})
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			var body []byte
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				if !on.Load() {
					continue
				}
				if body == nil {
					var err error
					if body, err = encodeBatch("", trackMessages("a-"+randomHex(4), "a-"+randomHex(8), 100)); err != nil {
						failed <- err
						return
					}
				}
				switch code, err := postBatch(client, url, writeKey, body); {
				case err != nil:
					failed <- err
					return
				case code == http.StatusOK:
					admitted.Add(1)
					body = nil
				case code == http.StatusTooManyRequests:
					limited.Add(1)
				default:
					failed <- fmt.Errorf("status %d", code)
					return
				}
			}
		}()
	}
	lines := bufio.NewScanner(control)
	for lines.Scan() {
		on.Store(lines.Text() == "on")
	}
	close(stop)
	wg.Wait()
	select {
	case err := <-failed:
		return err
	default:
	}
	fmt.Printf("admitted %d limited %d\n", admitted.Load(), limited.Load())
	return nil
}

// postBatch posts a /v1/batch body and reads the whole answer.
func postBatch(client *http.Client, url, writeKey string, body []byte) (int, error) {
	req, err := http.NewRequest("POST", url+"/v1/batch", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", basicAuth(writeKey))
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}
