package webhook_test

import (
	"bytes"
	"context"
	"github.com/custos-dev/custos/internal/testenv"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/webhook"
)

func TestRetriedThenDelivered(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t, e.clock.Now, http.StatusInternalServerError)
	var (
		logs    bytes.Buffer
		mu      sync.Mutex
		results []custos.Delivery
	)
	o := e.outbox(rcv.srv.Client(), webhook.Options{
		Log:      slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnResult: func(d custos.Delivery) { mu.Lock(); results = append(results, d); mu.Unlock() },
	})
	d := e.enqueue(o, rcv.srv.URL+"/hooks/custos")
	start := e.clock.Now()

	deliverDue(t, o, 1)
	got := e.delivery(d.ID)
	if got.Attempts != 1 || got.LastStatus != 500 || got.Final {
		t.Fatalf("after a 500: attempts %d, status %d, final %v; want 1, 500, false", got.Attempts, got.LastStatus, got.Final)
	}
	if wait := got.NextAt.Sub(start); wait < 900*time.Millisecond || wait > 1100*time.Millisecond {
		t.Errorf("after a 500 the retry is %v away, want MinBackoff 1s ±10%%", wait)
	}
	deliverDue(t, o, 0) // not due yet

	e.clock.Set(got.NextAt)
	deliverDue(t, o, 1)
	got = e.delivery(d.ID)
	if got.Attempts != 2 || got.LastStatus != 200 || !got.Final || !got.DeliveredAt.Equal(e.clock.Now()) || got.LastError != "" {
		t.Errorf("after a 200: %+v; want attempts 2, status 200, final, delivered at %v", got, e.clock.Now())
	}
	e.clock.Set(e.clock.Now().Add(24 * time.Hour))
	deliverDue(t, o, 0) // delivered: never again

	hits := rcv.Hits()
	if len(hits) != 2 {
		t.Fatalf("receiver got %d POSTs, want 2", len(hits))
	}
	for i, h := range hits {
		if h.verify != nil {
			t.Errorf("POST %d: Verify = %v, want nil", i+1, h.verify)
		}
		if !bytes.Equal(h.body, testBody) {
			t.Errorf("POST %d: body %q, want %q", i+1, h.body, testBody)
		}
		for name, want := range map[string]string{
			"Content-Type":         "application/json",
			"User-Agent":           "custos-webhook/1",
			webhook.HeaderDelivery: d.ID,
			webhook.HeaderKind:     "request.status",
		} {
			if got := h.header.Get(name); got != want {
				t.Errorf("POST %d: %s = %q, want %q", i+1, name, got, want)
			}
		}
	}

	mu.Lock()
	defer mu.Unlock()
	if len(results) != 2 || results[0].Final || !results[1].Final || results[1].Attempts != 2 {
		t.Errorf("OnResult got %+v, want a retry then the delivery", results)
	}
	for _, r := range results {
		if r.Body != nil || r.Secret != nil {
			t.Errorf("OnResult got Body %q, Secret %q; want neither", r.Body, r.Secret)
		}
	}
	for _, secret := range [][]byte{testSecret, []byte("ada.lovelace")} {
		if bytes.Contains(logs.Bytes(), secret) {
			t.Errorf("the log holds %q:\n%s", secret, logs.Bytes())
		}
	}
	if !strings.Contains(logs.String(), d.ID) {
		t.Errorf("the log does not name delivery %s:\n%s", d.ID, logs.Bytes())
	}
}

func TestRefusedSignatureIsFinal(t *testing.T) {
	for _, status := range []int{http.StatusUnauthorized, http.StatusForbidden} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			e := newEnv(t)
			rcv := newReceiver(t, e.clock.Now, status)
			o := e.outbox(rcv.srv.Client(), webhook.Options{})
			d := e.enqueue(o, rcv.srv.URL)
			deliverDue(t, o, 1)
			got := e.delivery(d.ID)
			if !got.Final || got.Attempts != 1 || got.LastStatus != status || !got.DeliveredAt.IsZero() {
				t.Errorf("after a %d: %+v; want final after 1 attempt, status %d, not delivered", status, got, status)
			}
			e.clock.Set(e.clock.Now().Add(48 * time.Hour))
			deliverDue(t, o, 0)
			if n := len(rcv.Hits()); n != 1 {
				t.Errorf("receiver got %d POSTs, want 1", n)
			}
		})
	}
}

func TestNetworkErrorBacksOff(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t, e.clock.Now)
	url, client := rcv.srv.URL, rcv.srv.Client()
	rcv.srv.Close() // nothing listens any more
	o := e.outbox(client, webhook.Options{MinBackoff: time.Second, MaxBackoff: 8 * time.Second})
	d := e.enqueue(o, url)
	for i, want := range []time.Duration{1, 2, 4, 8, 8, 8} {
		want *= time.Second
		now := e.clock.Now()
		deliverDue(t, o, 1)
		got := e.delivery(d.ID)
		if got.Attempts != i+1 || got.Final || got.LastStatus != 0 || got.LastError == "" {
			t.Fatalf("attempt %d: %+v; want attempts %d, not final, no status, an error", i+1, got, i+1)
		}
		if strings.Contains(got.LastError, url) {
			t.Errorf("attempt %d: LastError %q repeats the URL", i+1, got.LastError)
		}
		if wait := got.NextAt.Sub(now); wait < want*9/10 || wait > want*11/10 {
			t.Errorf("attempt %d: next attempt in %v, want %v ±10%%", i+1, wait, want)
		}
		e.clock.Set(got.NextAt.Add(-time.Nanosecond))
		deliverDue(t, o, 0) // not yet
		e.clock.Set(got.NextAt)
	}
}

func TestDeliveredAfterRestart(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t, e.clock.Now)
	d := e.enqueue(e.outbox(rcv.srv.Client(), webhook.Options{}), rcv.srv.URL)
	e.reopen() // the process dies before sending; a new one starts
	o := e.outbox(rcv.srv.Client(), webhook.Options{})
	deliverDue(t, o, 1)
	if got := e.delivery(d.ID); !got.Final || got.LastStatus != 200 {
		t.Errorf("after restart: %+v, want delivered", got)
	}
	if hits := rcv.Hits(); len(hits) != 1 || hits[0].verify != nil || !bytes.Equal(hits[0].body, testBody) {
		t.Errorf("receiver got %+v, want the body, signed", hits)
	}
}

// TestSealedAtRest scans every file of both stores, while open (the
// write-ahead log) and after a close (the tables), for the body and the
// secret of a pending delivery.
func TestSealedAtRest(t *testing.T) {
	e := newEnv(t)
	const marker = "custos-at-rest-marker"
	e.enqueue(e.outbox(http.DefaultClient, webhook.Options{}), "https://receiver.test/"+marker)
	root := filepath.Dir(e.dataDir)
	scan := func(phase string) {
		t.Helper()
		found := map[string][]string{}
		err := filepath.WalkDir(root, func(path string, de fs.DirEntry, err error) error {
			if err != nil || de.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, s := range []string{marker, "ada.lovelace", string(testSecret)} {
				if bytes.Contains(b, []byte(s)) {
					found[s] = append(found[s], filepath.Base(path))
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(found[marker]) == 0 {
			t.Fatalf("%s: the delivery's URL is in no file; the scan proves nothing", phase)
		}
		for _, s := range []string{"ada.lovelace", string(testSecret)} {
			if len(found[s]) > 0 {
				t.Errorf("%s: %q is in plaintext in %v", phase, s, found[s])
			}
		}
	}
	scan("open")
	e.close()
	scan("closed")
}

func TestDeletedTenantEndsDelivery(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t, e.clock.Now)
	o := e.outbox(rcv.srv.Client(), webhook.Options{})
	d := e.enqueue(o, rcv.srv.URL)
	if err := e.ring.DeleteTenant(context.Background(), e.tenant); err != nil {
		t.Fatal(err)
	}
	deliverDue(t, o, 0)
	if got := e.delivery(d.ID); !got.Final || got.Attempts != 0 || !strings.Contains(got.LastError, "unreadable") {
		t.Errorf("after the tenant key is destroyed: %+v, want final, unattempted, unreadable", got)
	}
	if n := len(rcv.Hits()); n != 0 {
		t.Errorf("receiver got %d POSTs, want 0", n)
	}
}

func TestEnqueue(t *testing.T) {
	e := newEnv(t)
	o := e.outbox(http.DefaultClient, webhook.Options{})
	valid := func() custos.Delivery {
		return custos.Delivery{Tenant: e.tenant, Kind: "recipient.erasure", RequestID: testRequest,
			URL: "https://crm.test/hook", Secret: testSecret, Body: testBody}
	}
	invalid := []struct {
		name string
		edit func(*custos.Delivery)
	}{
		{"no tenant", func(d *custos.Delivery) { d.Tenant = custos.TenantID{} }},
		{"no kind", func(d *custos.Delivery) { d.Kind = "" }},
		{"kind with a newline", func(d *custos.Delivery) { d.Kind = "a\r\nX-Evil: 1" }},
		{"id with a space", func(d *custos.Delivery) { d.ID = "dlv 1" }},
		{"no secret", func(d *custos.Delivery) { d.Secret = nil }},
		{"no URL", func(d *custos.Delivery) { d.URL = "" }},
		{"relative URL", func(d *custos.Delivery) { d.URL = "/hook" }},
		{"ftp URL", func(d *custos.Delivery) { d.URL = "ftp://crm.test/hook" }},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			d := valid()
			tt.edit(&d)
			if _, err := o.Enqueue(context.Background(), d); custos.ErrorCode(err) != custos.Invalid {
				t.Errorf("Enqueue(%s) = %v, want code %s", tt.name, err, custos.Invalid)
			}
		})
	}

	// Ids are filled, and sort by creation.
	var got []string
	for range 3 {
		d, err := o.Enqueue(context.Background(), valid())
		if err != nil {
			t.Fatalf("Enqueue = %v, want nil", err)
		}
		if !d.CreatedAt.Equal(e.clock.Now()) || !d.NextAt.Equal(e.clock.Now()) || d.Attempts != 0 || d.Final {
			t.Errorf("Enqueue = %+v, want created and due now, unattempted", d)
		}
		got = append(got, d.ID)
		e.clock.Set(e.clock.Now().Add(time.Microsecond))
	}
	if !slices.IsSorted(got) || got[0] == got[1] {
		t.Errorf("ids %v do not sort by creation", got)
	}
	// A caller's id and creation time are kept; a stale state is not.
	d := valid()
	d.ID, d.CreatedAt, d.Attempts, d.Final = "notice_42", e.clock.Now().Add(-time.Hour), 7, true
	d, err := o.Enqueue(context.Background(), d)
	if err != nil || d.ID != "notice_42" || !d.CreatedAt.Equal(e.clock.Now().Add(-time.Hour)) || d.Attempts != 0 || d.Final {
		t.Errorf("Enqueue(caller id) = %+v, %v; want id and creation kept, state reset", d, err)
	}
}

// TestRunDeliversOnKick runs the sender on the real clock with a poll
// interval of an hour, so only Kick (from Enqueue) can wake it in time.
// Each delivery is enqueued once Run has gone idle: after the reads of a
// pass and of the next due time.
func TestRunDeliversOnKick(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t, time.Now)
	st := &watchedStore{OutboxStore: e.store, reads: make(chan struct{}, 100)}
	o := webhook.New(st, e.ring, webhook.Options{Client: rcv.srv.Client(), MinBackoff: time.Hour})
	runOutbox(t, o)
	for i := range 2 {
		st.waitReads(t, 2)
		e.enqueue(o, rcv.srv.URL)
		waitHit(t, rcv, i+1)
	}
}

// watchedStore tells when DueDeliveries has answered.
type watchedStore struct {
	custos.OutboxStore
	reads chan struct{}
}

func (s *watchedStore) DueDeliveries(ctx context.Context, q custos.DueQuery) ([]custos.Delivery, [][]byte, error) {
	defer func() { s.reads <- struct{}{} }()
	return s.OutboxStore.DueDeliveries(ctx, q)
}

func (s *watchedStore) waitReads(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-s.reads:
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not read the store in 10s")
		}
	}
}

// TestRunRetries runs the sender on the real clock with a short backoff:
// a failed delivery is retried without a Kick.
func TestRunRetries(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t, time.Now, http.StatusServiceUnavailable, http.StatusBadGateway)
	final := make(chan custos.Delivery, 1)
	o := webhook.New(e.store, e.ring, webhook.Options{
		Client:     rcv.srv.Client(),
		MinBackoff: 5 * time.Millisecond,
		OnResult: func(d custos.Delivery) {
			if d.Final {
				final <- d
			}
		},
	})
	runOutbox(t, o)
	d := e.enqueue(o, rcv.srv.URL)
	select {
	case got := <-final:
		if got.ID != d.ID || got.Attempts != 3 || got.LastStatus != 200 {
			t.Errorf("Run ended with %+v, want delivered on attempt 3", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("not delivered in 10s; receiver got %d POSTs", len(rcv.Hits()))
	}
	if got := e.delivery(d.ID); !got.Final || got.Attempts != 3 {
		t.Errorf("stored: %+v, want delivered on attempt 3", got)
	}
	for i, h := range rcv.Hits() {
		if h.verify != nil {
			t.Errorf("POST %d: Verify = %v, want nil", i+1, h.verify)
		}
	}
}

// runOutbox runs o.Run until the returned stop is called.
func runOutbox(t *testing.T, o *webhook.Outbox) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { o.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Error("Run did not return after its context ended")
			}
		})
	}
	t.Cleanup(stop) // before the stores close, if the test ends early
	return stop
}

// waitHit waits for the receiver's nth POST.
func waitHit(t *testing.T, rcv *receiver, n int) {
	t.Helper()
	select {
	case <-rcv.got:
	case <-time.After(10 * time.Second):
		t.Fatalf("receiver got %d POSTs in 10s, want %d", len(rcv.Hits()), n)
	}
	if h := rcv.Hits()[n-1]; h.verify != nil {
		t.Errorf("POST %d: Verify = %v, want nil", n, h.verify)
	}
}

// TestRequestCallbacksInOrder: two callbacks of one request to one URL,
// due together, are delivered in the order they were made, though
// attempts run concurrently: the second is not POSTed while the first's
// attempt is in flight; a callback of the same request to another URL
// does not wait.
func TestRequestCallbacksInOrder(t *testing.T) {
	e := newEnv(t)
	release := make(chan struct{})
	var mu sync.Mutex
	var order []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		order = append(order, r.URL.Path+" "+r.Header.Get(webhook.HeaderDelivery))
		mu.Unlock()
		if r.URL.Path == "/slow" {
			<-release
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	releaseAll := sync.OnceFunc(func() { close(release) })
	defer releaseAll() // before the server closes, should the test fail
	posts := func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(order) }
	o := e.outbox(srv.Client(), webhook.Options{})
	first := e.enqueue(o, srv.URL+"/slow")
	e.clock.Set(e.clock.Now().Add(time.Millisecond))
	second := e.enqueue(o, srv.URL+"/slow")
	elsewhere := e.enqueue(o, srv.URL+"/other")

	n := make(chan int, 1)
	go func() {
		got, err := o.DeliverDue(context.Background())
		if err != nil {
			t.Error(err)
		}
		n <- got
	}()
	testenv.Poll(t, 5*time.Second, "the first callback and the one to another URL POSTed", func() bool { return len(posts()) == 2 })
	time.Sleep(100 * time.Millisecond) // room for a wrong POST of the second
	if got := posts(); slices.Contains(got, "/slow "+second.ID) {
		t.Fatalf("the second callback was POSTed while the first's attempt was in flight: %v", got)
	}
	releaseAll()
	if got := <-n; got != 3 {
		t.Errorf("DeliverDue made %d POSTs, want 3", got)
	}
	got := posts()
	if want := []string{"/slow " + first.ID, "/slow " + second.ID}; !slices.Equal(slices.DeleteFunc(got, func(p string) bool { return p == "/other "+elsewhere.ID }), want) {
		t.Errorf("POSTs to /slow in order %v, want %v", got, want)
	}
}
