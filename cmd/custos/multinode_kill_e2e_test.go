package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/testenv"
	"github.com/custos-dev/custos/internal/webhook"
	"github.com/jackc/pgx/v5"
)

// killReceiver is a webhook endpoint that counts POSTs per delivery id.
// The first POST to /recipient is held until its sender goes away (the
// node is killed while delivering it); every other POST is answered 200.
type killReceiver struct {
	srv      *httptest.Server
	arrived  chan struct{} // closed when the held POST arrives
	once     sync.Once
	mu       sync.Mutex
	posts    map[string]int // delivery id → POSTs received
	answered map[string]int // delivery id → POSTs answered 2xx
	paths    map[string]string
}

func newKillReceiver(t *testing.T) *killReceiver {
	k := &killReceiver{arrived: make(chan struct{}), posts: map[string]int{}, answered: map[string]int{}, paths: map[string]string{}}
	k.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		id := r.Header.Get(webhook.HeaderDelivery)
		k.mu.Lock()
		k.posts[id]++
		k.paths[id] = r.URL.Path
		first := false
		if r.URL.Path == "/recipient" {
			k.once.Do(func() { first = true })
		}
		k.mu.Unlock()
		if first {
			close(k.arrived)
			<-r.Context().Done() // the sender died with the POST in flight
			return
		}
		k.mu.Lock()
		k.answered[id]++
		k.mu.Unlock()
	}))
	t.Cleanup(k.srv.Close)
	return k
}

// counts returns, for the deliveries POSTed to path, how many POSTs each
// got and how many were answered 2xx.
func (k *killReceiver) counts(path string) (posts, answered map[string]int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	posts, answered = map[string]int{}, map[string]int{}
	for id, p := range k.paths {
		if p == path {
			posts[id], answered[id] = k.posts[id], k.answered[id]
		}
	}
	return posts, answered
}

// waitingLocks returns the relations of the data database on which a
// session waits for a lock.
func waitingLocks(t *testing.T, conn *pgx.Conn) []string {
	t.Helper()
	rows, err := conn.Query(t.Context(), `SELECT c.relname FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
		WHERE NOT l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestTwoNodesKilledNodeWorkIsFinishedOnce kills (SIGKILL) node A, a
// separate process, in the middle of three pieces of background work,
// and node B finishes each exactly once once A's leases expired:
//
//   - an erasure stopped between its first and second step (A waits on a
//     lock of the tombstones table the test holds);
//   - an outbox delivery whose POST is in flight (the receiver holds it);
//   - a campaign run stopped at its first recipient, whose send record
//     says "sending" (A waits on a lock of the deliveries table).
func TestTwoNodesKilledNodeWorkIsFinishedOnce(t *testing.T) {
	cfgA := pgConfig(t)
	cfgA.extraArgs = append(cfgA.extraArgs, "--lease-ttl", "1s")
	child := startChild(t, cfgA)
	a := &testServer{cfg: cfgA, URL: child.URL, http: &http.Client{Timeout: 20 * time.Second}}
	eraseTen, sendTen := a.createTenant(t, "erase"), a.createTenant(t, "send")
	cfgB := cfgA
	cfgB.dir = t.TempDir()
	b := startServer(t, cfgB)

	db, err := pgx.Connect(t.Context(), cfgA.extraArgs[1])
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(t.Context())
	// A started first: it holds the cluster-wide leases (the outbox's).
	var holder string
	if err := db.QueryRow(t.Context(), "SELECT holder FROM leases WHERE name = 'outbox'").Scan(&holder); err != nil {
		t.Fatalf("read the outbox lease: %v", err)
	}
	if !strings.Contains(holder, ":"+strconv.Itoa(child.cmd.Process.Pid)+"/") {
		t.Fatalf("the outbox lease is held by %q, want node A (pid %d)", holder, child.cmd.Process.Pid)
	}

	recv := newKillReceiver(t)
	auth := func(ten tenantInfo) []string { return []string{"Authorization", "Bearer " + ten.SecretKey} }

	// The campaign's audience: five subjects who consented, through B.
	const audience = 5
	for i := range audience {
		user := fmt.Sprintf("kill-send-%d-%s", i, randomHex(3))
		b.ingestRetrying(t, sendTen.WriteKey, batchBody(t, "", []map[string]any{{"type": "track", "userId": user, "event": "Order Completed", "messageId": "m-" + user}}))
		b.postConsent(t, sendTen.SecretKey, map[string]any{"identity": map[string]string{"type": "user_id", "value": user},
			"purpose": "marketing", "channel": "", "granted": true})
	}
	b.patchSettings(t, sendTen.SecretKey, map[string]any{"delivery_webhook": map[string]any{"url": recv.srv.URL + "/campaign", "region": "eu"}})
	camp := b.createCampaign(t, sendTen.SecretKey, map[string]any{"name": "kill", "purpose": "marketing", "channel": "webhook",
		"audience": map[string]any{"events": []map[string]any{{"name": "Order Completed", "within_days": 30}}},
		"message":  map[string]any{"subject": "Hi", "body": "Thanks"}})

	// 1. An outbox delivery in flight at A: a restriction through B is
	// noticed to a recipient; A, holding the outbox lease, POSTs it.
	if r := b.do(t, "POST", "/api/v1/recipients", []byte(`{"name":"crm","url":"`+recv.srv.URL+`/recipient","secret":"crm-signing-secret-0123","region":"eu"}`), auth(sendTen)...); r.status != http.StatusCreated {
		t.Fatalf("create recipient: %d %s", r.status, r.body)
	}
	r := b.do(t, "POST", "/api/v1/requests", []byte(`{"type":"restrict","identity":{"type":"user_id","value":"kill-restricted"}}`), auth(sendTen)...)
	var restrict struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(r.body, &restrict); err != nil || r.status != http.StatusCreated {
		t.Fatalf("restrict through B: %d %s", r.status, r.body)
	}
	select {
	case <-recv.arrived:
	case <-time.After(30 * time.Second):
		t.Fatal("node A did not POST the recipient notice within 30s")
	}

	// 2. and 3.: the test holds locks that A's erasure and campaign run wait on.
	user := "kill-erase-" + randomHex(4)
	b.ingestRetrying(t, eraseTen.WriteKey, batchBody(t, "", trackMessages(user, "k-"+randomHex(4), 3)))
	lock, err := db.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(t.Context(), "LOCK TABLE tombstones, deliveries IN EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	erasureDone := make(chan struct{})
	go func() {
		defer close(erasureDone)
		// A dies before answering: the error is expected, and ignored.
		req, _ := http.NewRequest("POST", a.URL+"/api/v1/requests", strings.NewReader(`{"type":"erasure","identity":{"type":"user_id","value":"`+user+`"}}`))
		req.Header.Set("Authorization", "Bearer "+eraseTen.SecretKey)
		if resp, err := a.http.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	if r := a.do(t, "POST", "/api/v1/campaigns/"+camp.ID+"/send", nil, auth(sendTen)...); r.status != http.StatusAccepted {
		t.Fatalf("send the campaign through A: %d %s", r.status, r.body)
	}
	testenv.Poll(t, 30*time.Second, "node A waiting on the tombstones and deliveries locks", func() bool {
		w := strings.Join(waitingLocks(t, db), ",")
		return strings.Contains(w, "tombstones") && strings.Contains(w, "deliveries")
	}, func() string { return fmt.Sprint(waitingLocks(t, db)) })

	// A dies: SIGKILL, no shutdown.
	if err := child.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-child.exit
	<-erasureDone
	if err := lock.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}

	// The erasure: B resumes it from its last recorded step and completes it.
	var erasureID string
	testenv.Poll(t, 60*time.Second, "node B completing the erasure node A began", func() bool {
		r := b.do(t, "GET", "/api/v1/requests?type=erasure", nil, auth(eraseTen)...)
		var page struct {
			Requests []struct {
				ID     string `json:"id"`
				Status string `json:"status"`
			} `json:"requests"`
		}
		if err := json.Unmarshal(r.body, &page); err != nil {
			t.Fatalf("list requests: %d %s: %v", r.status, r.body, err)
		}
		if len(page.Requests) != 1 {
			return false
		}
		erasureID = page.Requests[0].ID
		return page.Requests[0].Status == "completed"
	}, func() string { return string(b.do(t, "GET", "/api/v1/requests", nil, auth(eraseTen)...).body) })
	if r := b.do(t, "GET", "/api/v1/requests/"+erasureID+"/certificate", nil, auth(eraseTen)...); r.status != http.StatusOK {
		t.Errorf("certificate of the resumed erasure: %d %s", r.status, r.body)
	}
	if r := b.lookup(t, eraseTen.SecretKey, "user_id", user); r.status != http.StatusNotFound {
		t.Errorf("lookup after the resumed erasure: %d %s, want 404", r.status, r.body)
	}
	// The request record is stored before its audit entry is appended.
	steps := map[string]int{}
	testenv.Poll(t, 10*time.Second, "the audit entry of the erasure's completion", func() bool {
		steps = map[string]int{}
		for _, e := range auditEntries(t, b, eraseTen) {
			if e.RequestID == erasureID {
				steps[e.Action]++
			}
		}
		return steps["request.completed"] > 0
	}, func() string { return fmt.Sprint(steps) })
	for _, action := range []string{"erasure.resolved", "erasure.tombstoned", "erasure.shredded", "erasure.deleted", "erasure.purged", "erasure.verified", "request.completed"} {
		if steps[action] != 1 {
			t.Errorf("audit entries %s of the erasure = %d, want exactly 1 (all: %v)", action, steps[action], steps)
		}
	}

	// The outbox: B took the lease over and delivered the notice A was
	// POSTing when it died — once answered, never again.
	testenv.Poll(t, 60*time.Second, "node B showing the recipient notice delivered", func() bool {
		r := b.do(t, "GET", "/api/v1/requests/"+restrict.ID, nil, auth(sendTen)...)
		return strings.Contains(string(r.body), `"status":"delivered"`)
	}, func() string {
		return string(b.do(t, "GET", "/api/v1/requests/"+restrict.ID, nil, auth(sendTen)...).body)
	})

	// The campaign: B took the run over and completed it; each recipient
	// got one message.
	var c campaignOut
	testenv.Poll(t, 60*time.Second, "node B completing the campaign node A began", func() bool {
		r := b.do(t, "GET", "/api/v1/campaigns/"+camp.ID, nil, auth(sendTen)...)
		c = campaignOut{}
		if err := json.Unmarshal(r.body, &c); err != nil {
			t.Fatalf("GET campaign: %d %s: %v", r.status, r.body, err)
		}
		return c.Status == "completed"
	}, func() string { return fmt.Sprintf("%+v", c) })
	if c.Progress.Audience != audience || c.Progress.Sent != audience {
		t.Errorf("campaign progress = %+v, want audience %d, all sent", c.Progress, audience)
	}
	// Once no delivery is left pending, nothing more can be POSTed.
	testenv.Poll(t, 60*time.Second, "every delivery final", func() bool {
		var pending int
		if err := db.QueryRow(t.Context(), "SELECT count(*) FROM deliveries WHERE NOT final").Scan(&pending); err != nil {
			t.Fatal(err)
		}
		return pending == 0
	})
	posts, answered := recv.counts("/campaign")
	if len(posts) != audience {
		t.Errorf("campaign messages received for %d deliveries, want %d: %v", len(posts), audience, posts)
	}
	for id, n := range posts {
		if n != 1 || answered[id] != 1 {
			t.Errorf("campaign delivery %s: %d POSTs, %d answered; want exactly one", id, n, answered[id])
		}
	}
	posts, answered = recv.counts("/recipient")
	if len(posts) != 1 {
		t.Fatalf("recipient notices: %v, want one delivery", posts)
	}
	for id, n := range posts {
		// A's POST, cut off by the kill, and B's, answered: the receiver
		// recognises the repeat by its delivery id.
		if n != 2 || answered[id] != 1 {
			t.Errorf("recipient notice %s: %d POSTs, %d answered 2xx; want A's cut-off POST and B's one answered", id, n, answered[id])
		}
	}
}

// auditEntries reads a tenant's audit chain through a node.
func auditEntries(t *testing.T, s *testServer, ten tenantInfo) []custos.AuditEntry {
	t.Helper()
	var all []custos.AuditEntry
	path := "/api/v1/audit?limit=1000"
	for {
		r := s.do(t, "GET", path, nil, "Authorization", "Bearer "+ten.SecretKey)
		var page struct {
			Entries    []custos.AuditEntry `json:"entries"`
			NextCursor string              `json:"next_cursor"`
		}
		if err := json.Unmarshal(r.body, &page); err != nil || r.status != http.StatusOK {
			t.Fatalf("GET %s: %d %s: %v", path, r.status, r.body, err)
		}
		all = append(all, page.Entries...)
		if page.NextCursor == "" {
			return all
		}
		path = "/api/v1/audit?limit=1000&cursor=" + page.NextCursor
	}
}
