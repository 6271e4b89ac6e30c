package main

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custos-dev/custos/internal/pgtest"
	"github.com/custos-dev/custos/internal/testenv"
	segment "github.com/segmentio/analytics-go/v3"
)

// statusCounter is the HTTP transport of the Segment client: it counts
// the answers the server gave, by status, and the 503s without a
// Retry-After header.
type statusCounter struct {
	mu           sync.Mutex
	byStatus     map[int]int
	noRetryAfter int
	transportErr int
	first503     time.Time
	last503      time.Time
}

func (c *statusCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.transportErr++
		return resp, err
	}
	c.byStatus[resp.StatusCode]++
	if resp.StatusCode == http.StatusServiceUnavailable {
		if resp.Header.Get("Retry-After") == "" {
			c.noRetryAfter++
		}
		now := time.Now()
		if c.first503.IsZero() {
			c.first503 = now
		}
		c.last503 = now
	}
	return resp, nil
}

// failoverCallback records which messages the client saw acknowledged.
type failoverCallback struct {
	mu       sync.Mutex
	acked    map[string][]string // user id → message ids
	n        atomic.Int64
	failures []error
}

func (c *failoverCallback) Success(m segment.Message) {
	tr := m.(segment.Track)
	c.mu.Lock()
	c.acked[tr.UserId] = append(c.acked[tr.UserId], tr.MessageId)
	c.mu.Unlock()
	c.n.Add(1)
}

func (c *failoverCallback) Failure(_ segment.Message, err error) {
	c.mu.Lock()
	c.failures = append(c.failures, err)
	c.mu.Unlock()
}

// waitAcked waits until at least n messages were acknowledged.
func (c *failoverCallback) waitAcked(t *testing.T, n int64, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for c.n.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s: only %d of %d messages acknowledged within 30s", what, c.n.Load(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFailoverToSynchronousStandby runs `custos serve` on a primary with a
// synchronous standby (data and keys as two databases of that cluster,
// reached through a multi-host URL), sends load with the Segment Go
// client, kills the primary's postmaster with SIGKILL mid-load, promotes
// the standby and keeps sending. The node must reconnect by itself,
// answer 503 with Retry-After in the gap and never a 4xx, and every
// message the client saw acknowledged must be readable afterwards,
// exactly once, with nothing else stored.
func TestFailoverToSynchronousStandby(t *testing.T) {
	primary, standby := pgtest.NewReplicated(t)
	primary.Exec(t, "postgres", "CREATE DATABASE custos_data", "CREATE DATABASE custos_keys")
	multi := func(db string) string {
		return fmt.Sprintf("postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/%s?target_session_attrs=read-write&sslmode=disable&connect_timeout=5",
			primary.Port, standby.Port, db)
	}
	cfg := newServerConfig(t)
	cfg.extraArgs = []string{"--store", multi("custos_data"), "--keys", multi("custos_keys")}
	srv := startServer(t, cfg)
	if !strings.Contains(string(srv.logs.Bytes()), `"a commit waits for":"flush on the primary and on the synchronous standbys FIRST 1 (standby1)"`) {
		t.Errorf("the node did not log that a commit waits for the synchronous standby; log:\n%s", string(srv.logs.Bytes()))
	}
	tn := srv.createTenant(t, "failover")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("node log (errors and warnings):\n%s", grepLines(srv.logs.Bytes(), `"level":"ERROR"`)+grepLines(srv.logs.Bytes(), `"level":"WARN"`))
		}
	})

	counter := &statusCounter{byStatus: map[int]int{}}
	cb := &failoverCallback{acked: map[string][]string{}}
	client, err := segment.NewWithConfig(tn.WriteKey, segment.Config{
		Endpoint:  srv.URL,
		Interval:  20 * time.Millisecond,
		BatchSize: 20,
		Transport: counter,
		Callback:  cb,
		Logger:    &clientLog{},
		// Ten attempts over about 15 s: the fail-over must fit in them.
		RetryAfter: func(i int) time.Duration { return time.Duration(min(i+1, 4)) * 400 * time.Millisecond },
	})
	if err != nil {
		t.Fatal(err)
	}
	label := "fo-" + randomHex(4)
	var sent atomic.Int64
	stop := make(chan struct{})
	var senders sync.WaitGroup
	for s := range 4 {
		senders.Add(1)
		go func() {
			defer senders.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(25 * time.Millisecond):
				}
				// A new user every 15 messages, so that subjects, their keys
				// and identifier links are being created when the primary dies.
				err := client.Enqueue(segment.Track{
					MessageId:  fmt.Sprintf("%s-s%d-m%d", label, s, i),
					UserId:     fmt.Sprintf("%s-s%d-u%d", label, s, i/15),
					Event:      "Tick",
					Properties: segment.NewProperties().Set("i", i),
				})
				if err != nil {
					t.Errorf("enqueue: %v", err)
					return
				}
				sent.Add(1)
			}
		}()
	}

	cb.waitAcked(t, 200, "before the fail-over")
	killedAt := time.Now()
	primary.Kill(t)
	ackedAtKill := cb.n.Load()

	// In the gap, with no primary, the node notices (readiness fails),
	// reads and writes are answered 503 with Retry-After, and the load's
	// client sees 503s.
	testenv.Poll(t, 10*time.Second, "/readyz failing with the primary dead", func() bool {
		return srv.do(t, "GET", "/readyz", nil).status == http.StatusServiceUnavailable
	})
	gapUser := "fo-gap-" + randomHex(4)
	for _, c := range []struct {
		method, path string
		body         []byte
		headers      []string
	}{
		{"POST", "/v1/batch", batchBody(t, "", trackMessages(gapUser, "gap-"+randomHex(4), 2)), []string{"Authorization", basicAuth(tn.WriteKey), "Content-Type", "application/json"}},
		{"GET", "/api/v1/profiles?user_id=" + label + "-s0-u0", nil, []string{"Authorization", "Bearer " + tn.SecretKey}},
		{"GET", "/readyz", nil, nil},
	} {
		t0 := time.Now()
		r := srv.do(t, c.method, c.path, c.body, c.headers...)
		t.Logf("gap: %s %s answered %d in %v", c.method, c.path, r.status, time.Since(t0))
		if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
			t.Errorf("%s %s with the primary dead: %d (Retry-After %q) %s; want 503 with Retry-After", c.method, strings.SplitN(c.path, "?", 2)[0], r.status, r.header.Get("Retry-After"), r.body)
		}
	}
	testenv.Poll(t, 10*time.Second, "the load's client answered 503", func() bool {
		counter.mu.Lock()
		defer counter.mu.Unlock()
		return counter.byStatus[http.StatusServiceUnavailable] > 0
	})

	promotedAt := time.Now()
	standby.Run(t, "pg_ctl", "promote", "-w", "-t", "30", "-D", standby.Dir)
	promoteTook := time.Since(promotedAt)
	cb.waitAcked(t, ackedAtKill+200, "after promoting the standby")
	close(stop)
	senders.Wait()
	// Every batch in flight or waiting to be retried ends, acknowledged
	// or given up, before the client is closed (Close abandons retries).
	testenv.Poll(t, 30*time.Second, "every message sent acknowledged or given up by the client", func() bool {
		cb.mu.Lock()
		defer cb.mu.Unlock()
		return cb.n.Load()+int64(len(cb.failures)) == sent.Load()
	}, func() string {
		return fmt.Sprintf("%d sent, %d acknowledged, %d given up", sent.Load(), cb.n.Load(), len(cb.failures))
	})
	client.Close()
	if err := srv.do(t, "GET", "/readyz", nil); err.status != http.StatusOK {
		t.Errorf("GET /readyz after the fail-over: %d %s", err.status, err.body)
	}

	counter.mu.Lock()
	statuses := fmt.Sprint(counter.byStatus)
	n503, noRA, transportErr := counter.byStatus[503], counter.noRetryAfter, counter.transportErr
	gap := counter.last503.Sub(killedAt)
	for status, n := range counter.byStatus {
		if status/100 != 2 && status != http.StatusServiceUnavailable {
			t.Errorf("the server answered %d %d times; only 2xx and 503 are allowed (a 4xx makes clients drop the batch)", status, n)
		}
	}
	counter.mu.Unlock()
	t.Logf("fail-over: %d messages sent, %d acknowledged (%d before the kill); answers by status %s; "+
		"503s: %d, the last %v after the kill; pg_ctl promote took %v; gap kept open for %v before promoting",
		sent.Load(), cb.n.Load(), ackedAtKill, statuses, n503, gap.Round(time.Millisecond), promoteTook.Round(time.Millisecond), promotedAt.Sub(killedAt).Round(time.Millisecond))
	if n503 == 0 {
		t.Errorf("the client never saw a 503 although the primary was dead for %v", promotedAt.Sub(killedAt))
	}
	if noRA > 0 {
		t.Errorf("%d of the 503s had no Retry-After header", noRA)
	}
	if transportErr > 0 {
		t.Errorf("%d requests got no HTTP answer at all", transportErr)
	}
	if len(cb.failures) > 0 {
		t.Errorf("the client gave up on %d messages (first: %v): the node did not recover within its retries", len(cb.failures), cb.failures[0])
	}
	if got := cb.n.Load(); got != sent.Load() {
		t.Errorf("%d messages sent, %d acknowledged: every message must end up acknowledged", sent.Load(), got)
	}
	// Every acknowledged message is readable, once, and nothing else was
	// stored for these users.
	checkStored(t, srv, tn.SecretKey, "after the fail-over", cb.acked)
	stored := 0
	for u := range cb.acked {
		p := srv.findProfile(t, tn.SecretKey, "user_id", u)
		stored += len(srv.events(t, tn.SecretKey, p.SubjectID, 0))
	}
	if want := int(cb.n.Load()); stored != want {
		t.Errorf("%d events stored for the load's users, want exactly the %d acknowledged", stored, want)
	}
	if r := srv.lookup(t, tn.SecretKey, "user_id", gapUser); r.status != http.StatusNotFound {
		t.Errorf("the batch answered 503 in the gap left a profile behind: %d %s", r.status, r.body)
	}
}
