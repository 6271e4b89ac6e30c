package webhook_test

import (
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/keyring"
	"github.com/custos-dev/custos/internal/pebble"
	"github.com/custos-dev/custos/internal/webhook"
)

// clock is a settable clock for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 5, 25, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

// env is a real store and a real keyring, each in a temp dir, with one
// tenant, that a test can close and open again as after a crash.
type env struct {
	t       *testing.T
	dataDir string
	keyDir  string
	master  []byte
	tenant  custos.TenantID
	clock   *clock

	store *pebble.Store
	keys  *pebble.KeyStore
	ring  *keyring.Ring
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, dataDir: filepath.Join(dir, "data"), keyDir: filepath.Join(dir, "keys"),
		master: make([]byte, 32), tenant: custos.NewTenantID(), clock: newClock()}
	rand.Read(e.master)
	e.open()
	if err := e.ring.CreateTenant(context.Background(), e.tenant); err != nil {
		t.Fatalf("CreateTenant = %v, want nil", err)
	}
	t.Cleanup(e.close)
	return e
}

func (e *env) open() {
	e.t.Helper()
	var err error
	if e.store, err = pebble.Open(e.dataDir, pebble.Options{CacheSize: 1 << 20, MemTableSize: 1 << 20}); err != nil {
		e.t.Fatalf("pebble.Open = %v, want nil", err)
	}
	if e.keys, err = pebble.OpenKeyStore(e.keyDir); err != nil {
		e.t.Fatalf("pebble.OpenKeyStore = %v, want nil", err)
	}
	if e.ring, err = keyring.New(context.Background(), e.keys, e.master, keyring.Options{CacheSize: 16}); err != nil {
		e.t.Fatalf("keyring.New = %v, want nil", err)
	}
}

func (e *env) close() {
	if e.store == nil {
		return
	}
	if err := e.store.Close(); err != nil {
		e.t.Errorf("store Close = %v, want nil", err)
	}
	if err := e.keys.Close(); err != nil {
		e.t.Errorf("key store Close = %v, want nil", err)
	}
	e.store, e.keys, e.ring = nil, nil, nil
}

// reopen closes the stores and opens them again, with a new Ring: what a
// restarted process finds.
func (e *env) reopen() {
	e.t.Helper()
	e.close()
	e.open()
}

// outbox returns an Outbox over the env's store and ring, on its clock.
func (e *env) outbox(client *http.Client, opts webhook.Options) *webhook.Outbox {
	opts.Client, opts.Now = client, e.clock.Now
	return webhook.New(e.store, e.ring, opts)
}

// delivery returns the env's delivery as stored, by id.
func (e *env) delivery(id string) custos.Delivery {
	e.t.Helper()
	ds, err := e.store.Deliveries(context.Background(), e.tenant, testRequest)
	if err != nil {
		e.t.Fatalf("Deliveries = %v, want nil", err)
	}
	for _, d := range ds {
		if d.ID == id {
			return d
		}
	}
	e.t.Fatalf("delivery %s is not stored", id)
	return custos.Delivery{}
}

// enqueue enqueues a test delivery to url through o.
func (e *env) enqueue(o *webhook.Outbox, url string) custos.Delivery {
	e.t.Helper()
	d, err := o.Enqueue(context.Background(), custos.Delivery{
		Tenant: e.tenant, Kind: "request.status", RequestID: testRequest, Target: "callback",
		URL: url, Secret: testSecret, Body: testBody,
	})
	if err != nil {
		e.t.Fatalf("Enqueue = %v, want nil", err)
	}
	return d
}

// deliverDue runs one pass and checks how many POSTs it made.
func deliverDue(t *testing.T, o *webhook.Outbox, want int) {
	t.Helper()
	n, err := o.DeliverDue(context.Background())
	if err != nil || n != want {
		t.Fatalf("DeliverDue = %d, %v; want %d, nil", n, err, want)
	}
}

const testRequest = "req_20250525T090000.000000000_0011223344556677"

var (
	testSecret = []byte("whsec_6d1f0e3c9a7b5d2f")
	// testBody carries personal data, as a request's callback may.
	testBody = []byte(`{"request_id":"req_1","status":"completed","email":"ada.lovelace@example.test"}`)
)

// hit is one POST a receiver got.
type hit struct {
	header http.Header
	body   []byte
	verify error // Verify's verdict on the signature
}

// receiver is a TLS endpoint that verifies each POST's signature and
// answers with scripted statuses, then 200.
type receiver struct {
	srv      *httptest.Server
	now      func() time.Time
	mu       sync.Mutex
	statuses []int
	hits     []hit
	got      chan struct{} // one value per POST
}

func newReceiver(t *testing.T, now func() time.Time, statuses ...int) *receiver {
	t.Helper()
	r := &receiver{now: now, statuses: statuses, got: make(chan struct{}, 100)}
	r.srv = httptest.NewTLSServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	h := hit{header: req.Header.Clone(), body: body,
		verify: webhook.Verify(testSecret, body, req.Header.Get(webhook.HeaderSignature), r.now(), time.Minute)}
	r.mu.Lock()
	r.hits = append(r.hits, h)
	status := http.StatusOK
	if len(r.statuses) > 0 {
		status, r.statuses = r.statuses[0], r.statuses[1:]
	}
	r.mu.Unlock()
	w.WriteHeader(status)
	r.got <- struct{}{}
}

func (r *receiver) Hits() []hit {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hit(nil), r.hits...)
}
