package admission_test

import (
	"net"
	"testing"
	"time"

	"github.com/custos-dev/custos/internal/admission"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestLimiterTenantAndKey(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := admission.NewLimiter(map[admission.Scope]admission.Limits{
		admission.Ingest: {Tenant: admission.Rate{PerSecond: 10, Burst: 20}, Key: admission.Rate{PerSecond: 5, Burst: 10}},
	}, c.now)
	// Key k1 may take its burst of 10, then is short.
	if ok, _ := l.Allow(admission.Ingest, "A", "k1", 10); !ok {
		t.Fatal("first 10 of a key with a burst of 10: refused")
	}
	ok, wait := l.Allow(admission.Ingest, "A", "k1", 1)
	if ok || wait != 200*time.Millisecond {
		t.Errorf("11th message of k1: ok %v, wait %v; want refused, 200ms (5/s)", ok, wait)
	}
	// Another key of the same tenant draws on the tenant's remaining 10.
	if ok, _ := l.Allow(admission.Ingest, "A", "k2", 10); !ok {
		t.Error("k2's first 10: refused though the tenant has 10 left")
	}
	if ok, wait := l.Allow(admission.Ingest, "A", "k3", 1); ok || wait != 100*time.Millisecond {
		t.Errorf("tenant A exhausted: ok %v, wait %v; want refused, 100ms (10/s)", ok, wait)
	}
	// Another tenant is untouched.
	if ok, _ := l.Allow(admission.Ingest, "B", "k9", 10); !ok {
		t.Error("tenant B refused because of A")
	}
	if ok, _ := l.Reserve(admission.Ingest, "A", "k3"); ok {
		t.Error("Reserve(A) admitted a request with A's bucket empty")
	}
	// Refill: after 1s the tenant has 10 again, k1 5.
	c.t = c.t.Add(time.Second)
	if ok, _ := l.Allow(admission.Ingest, "A", "k1", 5); !ok {
		t.Error("after 1s k1 may take 5")
	}
	if ok, _ := l.Allow(admission.Ingest, "A", "k1", 1); ok {
		t.Error("after 1s k1 took more than its 5")
	}
	// A request is admitted while the buckets are not empty and takes its
	// whole cost, into debt: a batch above the burst is not refused for
	// ever, and its tenant then waits until the debt is paid back.
	c.t = c.t.Add(time.Hour)
	if ok, _ := l.Allow(admission.Ingest, "C", "kc", 1000); !ok {
		t.Error("a batch above the burst with full buckets: refused")
	}
	// The key's bucket (5/s, size 10) owes 990 and needs one more token:
	// 991/5 s.
	if ok, wait := l.Reserve(admission.Ingest, "C", "kc"); ok || wait != 198200*time.Millisecond {
		t.Errorf("after 1000 messages against a burst of 10: Reserve %v, wait %v; want refused, 3m18.2s", ok, wait)
	}
	c.t = c.t.Add(198 * time.Second)
	if ok, _ := l.Allow(admission.Ingest, "C", "kc", 1); ok {
		t.Error("the key took a message before its debt was paid back")
	}
	c.t = c.t.Add(time.Second)
	if ok, _ := l.Allow(admission.Ingest, "C", "kc", 1); !ok {
		t.Error("debt paid back, yet refused")
	}
	// Scopes without limits admit everything.
	for range 1000 {
		if ok, _ := l.Allow(admission.API, "A", "k1", 1); !ok {
			t.Fatal("API scope has no limit here but refused")
		}
	}
	if got := admission.RetryAfter(100 * time.Millisecond); got != 1 {
		t.Errorf("RetryAfter(100ms) = %d, want 1", got)
	}
	if got := admission.RetryAfter(2100 * time.Millisecond); got != 3 {
		t.Errorf("RetryAfter(2.1s) = %d, want 3", got)
	}
}

// TestReserve: the test before a body is read takes a token, so of
// requests arriving together on a bucket with one token left only the
// first is read; the request admitted is then charged its whole cost, and
// one refused once its cost is known gets its token back.
func TestReserve(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := admission.NewLimiter(map[admission.Scope]admission.Limits{
		admission.Ingest: {Tenant: admission.Rate{PerSecond: 10, Burst: 20}},
	}, c.now)
	// In debt by 100, then paid back to one token after 10.1 s.
	if ok, _ := l.Allow(admission.Ingest, "A", "k", 120); !ok {
		t.Fatal("a first batch refused")
	}
	c.t = c.t.Add(10100 * time.Millisecond)
	if ok, _ := l.Reserve(admission.Ingest, "A", "k"); !ok {
		t.Fatal("the first request on a bucket holding a token: refused")
	}
	for i := range 9 {
		if ok, _ := l.Reserve(admission.Ingest, "A", "k"); ok {
			t.Fatalf("request %d arriving with the first: admitted to have its body read", i+2)
		}
	}
	// The first, 100 messages, is charged 100 in all: 1 - 100 = -99.
	if ok, _ := l.AllowReserved(admission.Ingest, "A", "k", 100); !ok {
		t.Fatal("the reserved request refused once its cost was known")
	}
	c.t = c.t.Add(9900 * time.Millisecond) // -99 + 99 = 0: short of one
	if ok, _ := l.Reserve(admission.Ingest, "A", "k"); ok {
		t.Error("admitted before the debt of the reserved request was paid back")
	}
	c.t = c.t.Add(100 * time.Millisecond) // 1
	// Two reserve together with a full token each (2.5 after 150 ms);
	// the first takes 50, the second, judged after, is refused and gets
	// its token back.
	c.t = c.t.Add(150 * time.Millisecond)
	okA, _ := l.Reserve(admission.Ingest, "A", "k")
	okB, _ := l.Reserve(admission.Ingest, "A", "k")
	if !okA || !okB {
		t.Fatalf("two requests on 2.5 tokens: reserved %v, %v; want both", okA, okB)
	}
	if ok, _ := l.AllowReserved(admission.Ingest, "A", "k", 50); !ok {
		t.Fatal("the first of two reserved requests refused")
	}
	if ok, wait := l.AllowReserved(admission.Ingest, "A", "k", 50); ok || wait != 4850*time.Millisecond {
		t.Errorf("the second, after the first took 50: ok %v, wait %v; want refused, 4.85s (its token back, -47.5: 48.5 tokens at 10/s)", ok, wait)
	}
}

func TestLimitListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := admission.LimitListener(inner, 2)
	defer ln.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	var clients []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	var got []net.Conn
	for range 2 {
		select {
		case c := <-accepted:
			got = append(got, c)
		case <-time.After(2 * time.Second):
			t.Fatal("the first two connections were not accepted")
		}
	}
	select {
	case <-accepted:
		t.Fatal("a third connection was accepted with a limit of 2")
	case <-time.After(100 * time.Millisecond):
	}
	got[0].Close()
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(2 * time.Second):
		t.Fatal("the third connection was not accepted after one closed")
	}
	got[1].Close()
}
