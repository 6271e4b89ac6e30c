package incident_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
	"github.com/custos-dev/custos/internal/incident"
	"github.com/custos-dev/custos/internal/keyring"
	"github.com/custos-dev/custos/internal/mail"
	"github.com/custos-dev/custos/internal/mail/mailtest"
	"github.com/custos-dev/custos/internal/pebble"
	"github.com/custos-dev/custos/internal/subjects"
	"github.com/custos-dev/custos/internal/tenants"
	"github.com/custos-dev/custos/internal/testenv"
	"github.com/custos-dev/custos/internal/webhook"
)

// clock is an injected, settable clock.
type clock = testenv.Clock

// env is a register over a real store, key ring, tenant registry,
// ingestion pipeline, webhook outbox and (optionally) SMTP server.
type env struct {
	dir    string
	master []byte
	clock  *clock // nil: the real clock
	mail   *mail.Config

	store  *pebble.Store
	keys   *pebble.KeyStore
	ring   *keyring.Ring
	reg    *tenants.Registry
	pipe   *subjects.Pipeline
	outbox *webhook.Outbox
	audit  *audit.Log
	inc    *incident.Register
	stop   func()
}

func newEnv(t testing.TB, c *clock, mc *mail.Config) *env {
	t.Helper()
	e := &env{dir: t.TempDir(), master: make([]byte, 32), clock: c, mail: mc}
	rand.Read(e.master)
	e.open(t)
	return e
}

func (e *env) now() time.Time {
	if e.clock == nil {
		return time.Now()
	}
	return e.clock.Now()
}

// open opens everything on e.dir; run starts the senders.
func (e *env) open(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	var err error
	st := testenv.Open(t, e.dir, e.master, pebble.Options{})
	e.store, e.keys, e.ring = st.Store, st.Keys, st.Ring
	if e.reg, err = tenants.Load(ctx, e.store, e.ring, "eu", e.now); err != nil {
		t.Fatal(err)
	}
	if e.pipe, err = subjects.New(ctx, e.store, e.ring, subjects.Options{Now: e.now, DedupeCapacity: 10000}); err != nil {
		t.Fatal(err)
	}
	e.audit = audit.New(e.store, e.now)
	var reg *incident.Register
	e.outbox = webhook.New(e.store, e.ring, webhook.Options{MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		OnResult: func(d custos.Delivery) { reg.RecordAttempt(d) }})
	reg = incident.New(incident.Deps{Store: e.store, Tenants: e.reg, Outbox: e.outbox, Profiles: subjects.NewReader(e.store, e.ring),
		Audit: e.audit, Mail: e.mail, Now: e.now, MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	e.inc = reg
	t.Cleanup(func() { e.close() })
}

// run starts the webhook outbox and the e-mail sender until close.
func (e *env) run() {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); e.outbox.Run(ctx) }()
	go func() { defer wg.Done(); e.inc.Run(ctx) }()
	e.stop = func() { cancel(); wg.Wait() }
}

func (e *env) close() {
	if e.pipe == nil {
		return
	}
	if e.stop != nil {
		e.stop()
		e.stop = nil
	}
	e.pipe.Close()
	e.store.Close()
	e.keys.Close()
	e.pipe = nil
}

// tenant creates a tenant with the settings patch (JSON), and returns it
// with its webhook signing secret.
func (e *env) tenant(t testing.TB, name, settings string) (*custos.Tenant, string) {
	t.Helper()
	ctx := context.Background()
	ten, keys, err := e.reg.Create(ctx, name, "")
	if err != nil {
		t.Fatal(err)
	}
	if settings != "" {
		if ten, _, err = e.reg.UpdateSettings(ctx, ten.ID, []byte(settings)); err != nil {
			t.Fatalf("settings %s: %v", settings, err)
		}
	}
	return ten, keys.CallbackSecret
}

var seq int

// track ingests one event of user at ts.
func (e *env) track(t *testing.T, ten custos.TenantID, user string, ts ...time.Time) {
	t.Helper()
	var msgs []custos.Message
	for _, at := range ts {
		seq++
		msgs = append(msgs, custos.Message{Type: custos.Track, MessageID: fmt.Sprintf("m%d", seq), UserID: user,
			Event: "Clicked", Timestamp: at, ReceivedAt: at})
	}
	if _, err := e.pipe.Ingest(context.Background(), ten, msgs); err != nil {
		t.Fatal(err)
	}
}

// openInput is a complete incident scoped to the tenants.
func openInput(detected time.Time, ts ...custos.TenantID) incident.OpenInput {
	return incident.OpenInput{DetectedAt: detected, Nature: "A backup of the event store was readable from the internet",
		DataCategories: []string{"contact.email", "behaviour.events"}, Consequences: "Phishing e-mails to the people affected",
		Measures: "The bucket was closed and the access logs reviewed", ContactPoint: "dpo@processor.example",
		Scope: custos.IncidentScope{Tenants: ts}}
}

// delivery is one POST a receiver got.
type delivery struct {
	header http.Header
	body   []byte
}

// receiver is a webhook receiver that answers failFirst with 503 before
// accepting.
type receiver struct {
	*httptest.Server
	mu        sync.Mutex
	failFirst int
	got       []delivery
	arrived   chan struct{}
}

func newReceiver(t *testing.T, failFirst int) *receiver {
	rc := &receiver{failFirst: failFirst, arrived: make(chan struct{}, 100)}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if rc.failFirst > 0 {
			rc.failFirst--
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		rc.got = append(rc.got, delivery{r.Header.Clone(), b})
		rc.arrived <- struct{}{}
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) wait(t *testing.T, n int) []delivery {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		rc.mu.Lock()
		got := append([]delivery(nil), rc.got...)
		rc.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-rc.arrived:
		case <-deadline:
			t.Fatalf("receiver got %d deliveries within 10s, want %d", len(got), n)
		}
	}
}

// mailConfig points at a mailtest server.
func mailConfig(s *mailtest.Server) *mail.Config {
	return &mail.Config{Host: s.Host, Port: s.Port, Username: s.Username, Password: s.Password, From: "security@processor.example",
		RootCAs: s.RootCAs, Timeout: 5 * time.Second}
}

// eventually polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.Poll(t, 10*time.Second, what, cond)
}

// auditActions lists the actions of a chain.
func (e *env) auditActions(t *testing.T, chain custos.TenantID) []string {
	t.Helper()
	es, err := e.store.AuditEntries(context.Background(), chain, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range es {
		out = append(out, a.Action)
	}
	return out
}
