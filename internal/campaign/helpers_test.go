package campaign_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
	"github.com/custos-dev/custos/internal/campaign"
	"github.com/custos-dev/custos/internal/consent"
	"github.com/custos-dev/custos/internal/keyring"
	"github.com/custos-dev/custos/internal/pebble"
	"github.com/custos-dev/custos/internal/postgres"
	"github.com/custos-dev/custos/internal/subjects"
	"github.com/custos-dev/custos/internal/tenants"
	"github.com/custos-dev/custos/internal/testenv"
	"github.com/custos-dev/custos/internal/webhook"
)

// clock is a settable clock.
type clock = testenv.Clock

// env is the real thing in a temp dir: store, key store, keyring, ingest
// pipeline, consent ledger, tenant registry, outbox, audit log, engine.
type env struct {
	dir    string
	master []byte
	clock  *clock

	store  custos.Store
	keys   *pebble.KeyStore
	ring   *keyring.Ring
	pipe   *subjects.Pipeline
	reader *subjects.Reader
	ledger *consent.Ledger
	reg    *tenants.Registry
	outbox *webhook.Outbox
	audit  *audit.Log
	engine *campaign.Engine

	stopRun func()               // tells the engine's Run to stop
	runDone chan error           // Run's result, once it returns
	deps    func(*campaign.Deps) // adjusts the engine's deps on open
	// pgURL, if set, is a PostgreSQL database the data store is opened
	// on instead of the temp dir (the keys stay in the temp dir).
	pgURL string
	// used are the deps the engine was made with, for a second engine.
	used campaign.Deps
}

func newEnv(t *testing.T, adjust func(*campaign.Deps)) *env {
	t.Helper()
	return newEnvOn(t, "", adjust)
}

// newEnvOn is newEnv with the data store on the PostgreSQL database at
// pgURL (none: in the temp dir).
func newEnvOn(t *testing.T, pgURL string, adjust func(*campaign.Deps)) *env {
	t.Helper()
	e := &env{dir: t.TempDir(), master: make([]byte, 32), deps: adjust, pgURL: pgURL,
		clock: testenv.NewClock(time.Now().UTC().Truncate(time.Second))}
	rand.Read(e.master)
	e.open(t)
	t.Cleanup(func() { e.close(t) })
	return e
}

func (e *env) open(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	var err error
	st := testenv.Open(t, e.dir, e.master, pebble.Options{CacheSize: 128 << 20, MemTableSize: 16 << 20})
	e.store, e.keys, e.ring = st.Store, st.Keys, st.Ring
	if e.pgURL != "" {
		st.Store.Close()
		if e.store, err = postgres.Open(ctx, e.pgURL, postgres.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	if e.pipe, err = subjects.New(ctx, e.store, e.ring, subjects.Options{Now: e.clock.Now, DedupeCapacity: 10_000}); err != nil {
		t.Fatal(err)
	}
	e.reader = subjects.NewReader(e.store, e.ring)
	e.ledger = consent.New(e.pipe, e.store, e.ring, e.clock.Now)
	if e.reg, err = tenants.Load(ctx, e.store, e.ring, "eu", e.clock.Now); err != nil {
		t.Fatal(err)
	}
	e.outbox = webhook.New(e.store, e.ring, webhook.Options{Now: e.clock.Now, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	e.audit = audit.New(e.store, e.clock.Now)
	d := campaign.Deps{Store: e.store, Profiles: e.reader, Gate: e.pipe, Consents: e.ledger, Keys: e.ring, Tenants: e.reg,
		Outbox: e.outbox, Audit: e.audit, PublicURL: "https://custos.example.test/", Now: e.clock.Now,
		MailAttempts: 3, MailBackoff: 10 * time.Millisecond,
		Resume: func() []custos.TenantID {
			var ids []custos.TenantID
			for _, tn := range e.reg.List() {
				ids = append(ids, tn.ID)
			}
			return ids
		}}
	if e.deps != nil {
		e.deps(&d)
	}
	e.engine, e.used = campaign.New(d), d
	ctx, stop := context.WithCancel(context.Background())
	e.stopRun, e.runDone = stop, make(chan error, 1)
	go func() { e.runDone <- e.engine.Run(ctx) }()
}

// waitRun waits until the engine's Run has returned (after stopRun).
func (e *env) waitRun(t tb) {
	t.Helper()
	if e.runDone == nil {
		return
	}
	if err := <-e.runDone; err != nil {
		t.Errorf("campaign engine Run: %v", err)
	}
	e.runDone = nil
}

// close stops the engine's runs (each finishing the recipient in hand)
// and closes everything, as an orderly shutdown does.
func (e *env) close(t *testing.T) {
	if e.pipe == nil {
		return
	}
	e.stopRun()
	e.waitRun(t)
	e.pipe.Close()
	e.pipe = nil
	if err := e.store.Close(); err != nil {
		t.Error(err)
	}
	if err := e.keys.Close(); err != nil {
		t.Error(err)
	}
}

func (e *env) restart(t *testing.T) {
	t.Helper()
	e.close(t)
	e.open(t)
}

// tenant creates a tenant and applies a settings patch to it.
func (e *env) tenant(t tb, patch string) *custos.Tenant {
	t.Helper()
	tn, _, err := e.reg.Create(context.Background(), "acme", "eu")
	if err != nil {
		t.Fatal(err)
	}
	if patch != "" {
		if tn, _, err = e.reg.UpdateSettings(context.Background(), tn.ID, []byte(patch)); err != nil {
			t.Fatalf("UpdateSettings(%s) = %v", patch, err)
		}
	}
	return tn
}

// current returns the tenant as the registry holds it now.
func (e *env) current(t tb, id custos.TenantID) *custos.Tenant {
	t.Helper()
	tn, ok := e.reg.Get(id)
	if !ok {
		t.Fatalf("no tenant %s", id)
	}
	return tn
}

func randomID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// identify ingests an identify call and returns the subject.
func (e *env) identify(t tb, tn custos.TenantID, user, email string, traits map[string]any) custos.SubjectID {
	t.Helper()
	if traits == nil {
		traits = map[string]any{}
	}
	if email != "" {
		traits["email"] = email
	}
	raw, _ := json.Marshal(traits)
	now := e.clock.Now()
	m := custos.Message{Type: custos.Identify, MessageID: randomID(), UserID: user, Email: custos.NormalizeEmail(email),
		Traits: raw, Timestamp: now, ReceivedAt: now}
	if _, err := e.pipe.Ingest(context.Background(), tn, []custos.Message{m}); err != nil {
		t.Fatal(err)
	}
	s, err := e.reader.Find(context.Background(), tn, custos.Identifier{Type: custos.UserID, Value: user})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// track ingests a track event of a user at a time.
func (e *env) track(t tb, tn custos.TenantID, user, event string, at time.Time) {
	t.Helper()
	m := custos.Message{Type: custos.Track, MessageID: randomID(), UserID: user, Event: event, Timestamp: at, ReceivedAt: e.clock.Now()}
	if _, err := e.pipe.Ingest(context.Background(), tn, []custos.Message{m}); err != nil {
		t.Fatal(err)
	}
}

// consent records a grant or withdrawal for a user.
func (e *env) consent(t tb, tn custos.TenantID, user, purpose, channel string, granted bool) {
	t.Helper()
	_, err := e.ledger.Record(context.Background(), tn, custos.Identifier{Type: custos.UserID, Value: user},
		custos.ConsentRecord{Purpose: purpose, Channel: channel, Granted: granted, Source: custos.SourceAPI})
	if err != nil {
		t.Fatal(err)
	}
}

func (e *env) create(t tb, tn *custos.Tenant, in campaign.Input) *custos.Campaign {
	t.Helper()
	if in.Name == "" {
		in.Name = "spring"
	}
	if in.Purpose == "" {
		in.Purpose = "marketing"
	}
	c, err := e.engine.Create(context.Background(), tn, in)
	if err != nil {
		t.Fatalf("Create = %v", err)
	}
	return c
}

// sendAndWait sends a campaign and waits until it is no longer sending.
func (e *env) sendAndWait(t tb, tn *custos.Tenant, id string) *custos.Campaign {
	t.Helper()
	if _, err := e.engine.Send(context.Background(), e.current(t, tn.ID), id); err != nil {
		t.Fatalf("Send = %v", err)
	}
	return e.waitDone(t, tn.ID, id)
}

func (e *env) waitDone(t tb, tn custos.TenantID, id string) *custos.Campaign {
	t.Helper()
	var c *custos.Campaign
	testenv.Poll(t, 20*time.Second, "campaign "+id+" done sending", func() bool {
		var err error
		if c, err = e.engine.Get(context.Background(), tn, id); err != nil {
			t.Fatal(err)
		}
		return c.Status != custos.CampaignSending
	}, func() string { return fmt.Sprintf("progress %+v", c.Progress) })
	return c
}

// receiver is a delivery webhook that checks each POST's signature.
type receiver struct {
	srv    *httptest.Server
	secret []byte
	now    func() time.Time
	status int

	mu   sync.Mutex
	msgs []campaign.WebhookMessage
	bad  []string
}

func newReceiver(t tb, now func() time.Time) *receiver {
	r := &receiver{now: now, status: http.StatusOK}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if err := webhook.Verify(r.secret, body, req.Header.Get(webhook.HeaderSignature), r.now(), time.Minute); err != nil {
			r.bad = append(r.bad, err.Error())
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var m campaign.WebhookMessage
		if err := json.Unmarshal(body, &m); err != nil || req.Header.Get(webhook.HeaderKind) != campaign.DeliveryKind || req.Header.Get(webhook.HeaderDelivery) != m.DeliveryID {
			r.bad = append(r.bad, "malformed: "+string(body))
		}
		r.msgs = append(r.msgs, m)
		w.WriteHeader(r.status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) messages() []campaign.WebhookMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]campaign.WebhookMessage(nil), r.msgs...)
}

// webhookTenant creates a tenant delivering to r, and sets r's secret.
func (e *env) webhookTenant(t tb, r *receiver, extra string) *custos.Tenant {
	t.Helper()
	patch := `{"delivery_webhook":{"url":"` + r.srv.URL + `","region":"eu"}` + extra + `}`
	tn := e.tenant(t, patch)
	secret, err := e.reg.DeliverySecret(tn)
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.secret = []byte(secret)
	r.mu.Unlock()
	return tn
}

// deliver runs the outbox until nothing is due.
func (e *env) deliver(t tb) {
	t.Helper()
	for range 10 {
		n, err := e.outbox.DeliverDue(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

// tb is what the helpers need of a test: *testing.T, or the *rapid.T of
// a property test, so that its failures shrink.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Errorf(format string, args ...any)
	Cleanup(func())
}
