package main

import (
	"crypto"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custos-dev/custos/internal/certificate"
	"github.com/custos-dev/custos/internal/opendsr"
	"github.com/custos-dev/custos/internal/testenv"
)

// switchProxy is a reverse proxy in front of a server whose address may
// change (a restart), that can answer 503 instead, and that records the
// bodies it forwards.
type switchProxy struct {
	srv     *httptest.Server
	target  atomic.Pointer[url.URL]
	blocked atomic.Bool
	mu      sync.Mutex
	bodies  [][]byte
}

func newSwitchProxy(t *testing.T, tlsOn bool) *switchProxy {
	p := &switchProxy{}
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(p.target.Load())
		r.Out.Host = r.In.Host
	}}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.blocked.Load() || p.target.Load() == nil {
			http.Error(w, "blocked by the test", http.StatusServiceUnavailable)
			return
		}
		b, _ := io.ReadAll(r.Body)
		p.mu.Lock()
		p.bodies = append(p.bodies, b)
		p.mu.Unlock()
		r.Body = io.NopCloser(strings.NewReader(string(b)))
		r.ContentLength = int64(len(b))
		rp.ServeHTTP(w, r)
	})
	if tlsOn {
		p.srv = httptest.NewTLSServer(h)
	} else {
		p.srv = httptest.NewServer(h)
	}
	t.Cleanup(p.srv.Close)
	return p
}

func (p *switchProxy) point(t *testing.T, rawURL string) {
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	p.target.Store(u)
}

// submitted returns the OpenDSR request bodies that went through the
// proxy, by subject_request_id.
func (p *switchProxy) submitted() map[string]opendsr.Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]opendsr.Request{}
	for _, b := range p.bodies {
		var r opendsr.Request
		if json.Unmarshal(b, &r) == nil && r.SubjectRequestID != "" {
			out[r.SubjectRequestID] = r
		}
	}
	return out
}

// forwardView is what the request view shows of a forward.
type forwardView struct {
	RecipientID       string `json:"recipient_id"`
	Recipient         string `json:"recipient"`
	SubjectRequestID  string `json:"subject_request_id"`
	Status            string `json:"status"`
	Reason            string `json:"reason"`
	Attempts          int    `json:"attempts"`
	LastError         string `json:"last_error"`
	Polls             int    `json:"polls"`
	Callbacks         int    `json:"callbacks"`
	RejectedCallbacks int    `json:"rejected_callbacks"`
	LastRejection     string `json:"last_rejection"`
}

type forwardedRequest struct {
	ID            string                `json:"id"`
	Status        string                `json:"status"`
	Forwards      []forwardView         `json:"forwards"`
	Recipients    []certificate.Outcome `json:"recipients"`
	ForwardBodies json.RawMessage       `json:"forward_bodies"`
}

func getForwarded(t *testing.T, srv *testServer, key, id string) forwardedRequest {
	t.Helper()
	r := srv.do(t, "GET", "/api/v1/requests/"+id, nil, "Authorization", "Bearer "+key)
	if r.status != http.StatusOK {
		t.Fatalf("GET request %s: %d %s", id, r.status, r.body)
	}
	var fr forwardedRequest
	if err := json.Unmarshal(r.body, &fr); err != nil {
		t.Fatalf("GET request %s: %v", id, err)
	}
	if fr.ForwardBodies != nil {
		t.Errorf("the request view shows the sealed forward bodies: %s", r.body)
	}
	return fr
}

// waitForward waits until the forward to the named recipient satisfies ok.
func waitForward(t *testing.T, srv *testServer, key, id, recipient string, within time.Duration, ok func(forwardView) bool) (forwardedRequest, forwardView) {
	t.Helper()
	var fr forwardedRequest
	var found forwardView
	testenv.Poll(t, within, fmt.Sprintf("request %s: forward to %s as wanted", id, recipient), func() bool {
		fr = getForwarded(t, srv, key, id)
		for _, f := range fr.Forwards {
			if f.Recipient == recipient && ok(f) {
				found = f
				return true
			}
		}
		return false
	}, func() string { return fmt.Sprintf("forwards %+v", fr.Forwards) })
	return fr, found
}

// processorKey is the key a server signs its OpenDSR answers with (its
// development certificate's).
func processorKey(t *testing.T, dir string) (crypto.Signer, []byte) {
	t.Helper()
	certPEM, err := os.ReadFile(filepath.Join(dir, "opendsr", "opendsr-dev-cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, "opendsr", "opendsr-dev-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pair.PrivateKey.(crypto.Signer), certPEM
}

// postCallback POSTs a status callback signed with key, as the processor
// does, and returns the status.
func postCallback(t *testing.T, client *http.Client, callbackURL string, key crypto.Signer, cb opendsr.Callback) int {
	t.Helper()
	body, _ := json.Marshal(cb)
	sig, err := opendsr.Sign(key, body)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", callbackURL, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(opendsr.HeaderProcessorDomain, "localhost")
	req.Header.Set(opendsr.HeaderSignature, sig)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST callback: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func createErasure(t *testing.T, srv *testServer, key, user string) string {
	t.Helper()
	r := srv.do(t, "POST", "/api/v1/requests", []byte(`{"type":"erasure","identity":{"type":"user_id","value":"`+user+`"}}`), "Authorization", "Bearer "+key)
	var req struct {
		ID string `json:"id"`
	}
	json.Unmarshal(r.body, &req)
	if r.status != http.StatusCreated || req.ID == "" {
		t.Fatalf("erasure: %d %s", r.status, r.body)
	}
	return req.ID
}

func addOpenDSRRecipient(t *testing.T, srv *testServer, key string, body map[string]any) response {
	t.Helper()
	return srv.do(t, "POST", "/api/v1/recipients", mustJSON(t, body), "Authorization", "Bearer "+key, "Content-Type", "application/json")
}

// TestOpenDSRForwarding runs Custos A as the controller of Custos B, its
// OpenDSR recipient: an erasure at A is forwarded to B over OpenDSR, B
// erases, and A follows B's progress through B's signed callbacks, or
// polls of B's signed status answers; A's request and its erasure
// certificate show B's outcome.
func TestOpenDSRForwarding(t *testing.T) {
	t.Parallel()
	// B calls A back at A's public address; in the test that address is
	// plain http, which B accepts only with the development flag.
	bCfg := newServerConfig(t)
	bCfg.extraArgs = []string{"--opendsr-allow-http-callbacks"}
	b := startServer(t, bCfg)
	tb := b.createTenant(t, "processor-b")
	bKey, bCertPEM := processorKey(t, b.cfg.dir)
	bProxy := newSwitchProxy(t, false) // A → B, recording the requests
	bProxy.point(t, b.URL)

	aFront := newSwitchProxy(t, false) // B → A: A's public address
	aCfg := newServerConfig(t)
	// Polls far apart: here B's callbacks carry the progress.
	aCfg.extraArgs = []string{"--public-url", aFront.srv.URL, "--opendsr-poll-interval", "1h"}
	a := startServer(t, aCfg)
	aFront.point(t, a.URL)
	ta := a.createTenant(t, "controller-a")

	user, email := "fwd-"+randomHex(6), "fwd-"+randomHex(4)+"@example.com"
	for _, s := range []struct {
		srv *testServer
		key string
	}{{a, ta.WriteKey}, {b, tb.WriteKey}} {
		msgs := append(trackMessages(user, "m-"+randomHex(4), 2), map[string]any{"type": "identify", "messageId": "id-" + randomHex(6),
			"userId": user, "traits": map[string]any{"email": email}, "timestamp": time.Now().UTC().Format(time.RFC3339Nano)})
		s.srv.ingest(t, s.key, "/v1/batch", batchBody(t, "", msgs))
	}
	b.findProfile(t, tb.SecretKey, "user_id", user)

	// Validation names the field.
	for _, tc := range []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"bad kind", map[string]any{"name": "x", "kind": "ftp", "url": bProxy.srv.URL, "secret": tb.SecretKey}, "kind"},
		{"no secret", map[string]any{"name": "x", "kind": "opendsr", "url": bProxy.srv.URL + "/opendsr/v2"}, "secret"},
		{"http to a remote host", map[string]any{"name": "x", "kind": "opendsr", "url": "http://processor.example/opendsr/v2", "secret": tb.SecretKey}, "https"},
		{"pin for another domain", map[string]any{"name": "x", "kind": "opendsr", "url": bProxy.srv.URL + "/opendsr/v2", "secret": tb.SecretKey,
			"domain": "other.example", "certificate_pem": string(bCertPEM)}, "certificate_pem"},
		{"not a certificate", map[string]any{"name": "x", "kind": "opendsr", "url": bProxy.srv.URL + "/opendsr/v2", "secret": tb.SecretKey,
			"domain": "localhost", "certificate_pem": "hello"}, "certificate_pem"},
	} {
		if r := addOpenDSRRecipient(t, a, ta.SecretKey, tc.body); r.status != http.StatusBadRequest || !strings.Contains(r.errorMessage(), tc.field) {
			t.Errorf("%s: %d %s, want 400 naming %s", tc.name, r.status, r.body, tc.field)
		}
	}

	// B is A's recipient; A pins B's development certificate.
	r := addOpenDSRRecipient(t, a, ta.SecretKey, map[string]any{"name": "custos-b", "kind": "opendsr", "url": bProxy.srv.URL + "/opendsr/v2",
		"secret": tb.SecretKey, "domain": "localhost", "certificate_pem": string(bCertPEM), "region": "eu"})
	if r.status != http.StatusCreated || strings.Contains(string(r.body), tb.SecretKey) || !strings.Contains(string(r.body), `"kind":"opendsr"`) {
		t.Fatalf("create the opendsr recipient: %d %s", r.status, r.body)
	}
	other := a.createTenant(t, "other")
	if r := a.do(t, "GET", "/api/v1/recipients", nil, "Authorization", "Bearer "+other.SecretKey); strings.Contains(string(r.body), "custos-b") {
		t.Errorf("another tenant lists the recipient: %s", r.body)
	}

	// B erases and calls back, signed with its certificate's key: A
	// completes the forward on B's own callbacks, without polling.
	id := createErasure(t, a, ta.SecretKey, user)
	fr, f := waitForward(t, a, ta.SecretKey, id, "custos-b", 5*time.Second, func(f forwardView) bool { return f.Status == "completed" })
	if f.Callbacks < 1 || f.Polls != 0 || f.RejectedCallbacks != 0 {
		t.Errorf("completed forward = %+v, want B's callbacks, verified, and no poll", f)
	}
	sent, ok := bProxy.submitted()[f.SubjectRequestID]
	if !ok || len(sent.StatusCallbackURLs) != 1 || !strings.HasPrefix(sent.StatusCallbackURLs[0], aFront.srv.URL+"/opendsr/v2/callbacks/") {
		t.Fatalf("request sent to B = %+v, want subject_request_id %s and one callback URL on %s", sent, f.SubjectRequestID, aFront.srv.URL)
	}
	if sent.SubjectRequestType != "erasure" || len(sent.SubjectIdentities) < 2 ||
		sent.SubjectIdentities[0] != (opendsr.SubjectIdentity{IdentityType: "controller_customer_id", IdentityValue: user, IdentityFormat: "raw"}) ||
		sent.SubjectIdentities[1] != (opendsr.SubjectIdentity{IdentityType: "email", IdentityValue: email, IdentityFormat: "raw"}) {
		t.Errorf("request sent to B = %+v, want an erasure of the user id, then the e-mail", sent)
	}
	if r := b.lookup(t, tb.SecretKey, "user_id", user); r.status != http.StatusNotFound {
		t.Errorf("B still holds the person after completing the forwarded erasure: %d", r.status)
	}
	if len(fr.Recipients) != 1 || fr.Recipients[0].Status != "completed" || !strings.Contains(fr.Recipients[0].Detail, f.SubjectRequestID) {
		t.Errorf("request outcomes = %+v, want custos-b completed", fr.Recipients)
	}
	// Other tenants cannot see A's request.
	if r := a.do(t, "GET", "/api/v1/requests/"+id, nil, "Authorization", "Bearer "+other.SecretKey); r.status != http.StatusNotFound {
		t.Errorf("another tenant reads the request: %d, want 404", r.status)
	}

	// A callback signed with another key is refused and recorded; one to a
	// forged token finds nothing; B's key still verifies.
	cbURL := sent.StatusCallbackURLs[0]
	cb := opendsr.Callback{ControllerID: tb.ID, ExpectedCompletionTime: time.Now().Add(720 * time.Hour), StatusCallbackURL: cbURL,
		SubjectRequestID: f.SubjectRequestID, RequestStatus: opendsr.StatusCompleted}
	client := aFront.srv.Client()
	otherDir := t.TempDir()
	if _, _, err := opendsr.SelfSigned("localhost", filepath.Join(otherDir, "opendsr")); err != nil {
		t.Fatal(err)
	}
	forged, _ := processorKey(t, otherDir)
	if st := postCallback(t, client, cbURL, forged, cb); st != http.StatusUnauthorized {
		t.Errorf("callback signed with another key: %d, want 401", st)
	}
	if st := postCallback(t, client, cbURL+"x", bKey, cb); st != http.StatusNotFound {
		t.Errorf("callback to a forged token: %d, want 404", st)
	}
	fr, f = waitForward(t, a, ta.SecretKey, id, "custos-b", time.Second, func(f forwardView) bool { return f.RejectedCallbacks == 1 })
	if f.Status != "completed" || !strings.Contains(f.LastRejection, "signature") {
		t.Errorf("after a forged callback: %+v, want still completed, the rejection recorded", f)
	}
	if st := postCallback(t, client, cbURL, bKey, cb); st != http.StatusNoContent {
		t.Errorf("a repeated callback signed by B: %d, want 204", st)
	}

	// The certificate, issued anew, shows it, and still verifies.
	cr := a.do(t, "GET", "/api/v1/requests/"+id+"/certificate", nil, "Authorization", "Bearer "+ta.SecretKey)
	pub := a.do(t, "GET", "/.well-known/custos/signing-key", nil)
	c, err := certificate.VerifyFile(cr.body, pub.body)
	if err != nil {
		t.Fatalf("certificate: %v (%d %s)", err, cr.status, cr.body)
	}
	if len(c.Recipients) != 1 || c.Recipients[0].Recipient != "custos-b" || c.Recipients[0].Status != "completed" {
		t.Errorf("certificate recipients = %+v, want custos-b completed", c.Recipients)
	}
	// A's audit names the forward and the refused callback.
	audit := a.do(t, "GET", "/api/v1/audit?limit=1000", nil, "Authorization", "Bearer "+ta.SecretKey)
	for _, want := range []string{"opendsr.forward.submitted", "opendsr.callback_rejected", "opendsr.forward.completed"} {
		if !strings.Contains(string(audit.body), want) {
			t.Errorf("audit has no %s: %s", want, audit.body)
		}
	}
	if strings.Contains(string(audit.body), email) || strings.Contains(string(audit.body), user) {
		t.Error("the audit log names the person")
	}
}

// TestOpenDSRForwardingPollsAndResumes: without callbacks A polls B; a
// recipient whose certificate does not match fails with the reason; and a
// forward B could not take yet survives a restart of A.
func TestOpenDSRForwardingPollsAndResumes(t *testing.T) {
	t.Parallel()
	b := startServer(t, newServerConfig(t))
	tb := b.createTenant(t, "processor-b")
	_, bCertPEM := processorKey(t, b.cfg.dir)
	bProxy := newSwitchProxy(t, false)
	bProxy.point(t, b.URL)

	// Callbacks to A are blocked: its public address answers 503.
	aFront := newSwitchProxy(t, true)
	aFront.blocked.Store(true)
	aCfg := newServerConfig(t)
	aCfg.extraArgs = []string{"--public-url", aFront.srv.URL, "--opendsr-poll-interval", "200ms"}
	a := startServer(t, aCfg)
	ta := a.createTenant(t, "controller-a")

	otherDir := t.TempDir()
	if _, _, err := opendsr.SelfSigned("localhost", filepath.Join(otherDir, "opendsr")); err != nil {
		t.Fatal(err)
	}
	_, wrongPEM := processorKey(t, otherDir)
	for _, rc := range []map[string]any{
		{"name": "custos-b", "certificate_pem": string(bCertPEM)},
		{"name": "wrong-cert", "certificate_pem": string(wrongPEM)},
	} {
		rc["kind"], rc["url"], rc["secret"], rc["domain"] = "opendsr", bProxy.srv.URL+"/opendsr/v2", tb.SecretKey, "localhost"
		if r := addOpenDSRRecipient(t, a, ta.SecretKey, rc); r.status != http.StatusCreated {
			t.Fatalf("create recipient %s: %d %s", rc["name"], r.status, r.body)
		}
	}

	user := "poll-" + randomHex(6)
	for _, s := range []struct {
		srv *testServer
		key string
	}{{a, ta.WriteKey}, {b, tb.WriteKey}} {
		s.srv.ingest(t, s.key, "/v1/batch", batchBody(t, "", trackMessages(user, "m-"+randomHex(4), 2)))
	}
	id := createErasure(t, a, ta.SecretKey, user)
	_, f := waitForward(t, a, ta.SecretKey, id, "custos-b", 10*time.Second, func(f forwardView) bool { return f.Status == "completed" })
	if f.Polls < 1 || f.Callbacks != 0 {
		t.Errorf("forward completed by polling = %+v, want polls and no callback", f)
	}
	fr, f := waitForward(t, a, ta.SecretKey, id, "wrong-cert", 5*time.Second, func(f forwardView) bool { return f.Status == "failed" })
	if !strings.Contains(f.Reason, "pinned") {
		t.Errorf("wrong certificate: reason %q, want it to say the certificate is not the pinned one", f.Reason)
	}
	var sawWrong bool
	for _, o := range fr.Recipients {
		sawWrong = sawWrong || o.Recipient == "wrong-cert" && o.Status == "failed" && strings.Contains(o.Detail, "pinned")
	}
	if !sawWrong {
		t.Errorf("request outcomes = %+v, want wrong-cert failed with the reason", fr.Recipients)
	}

	// B is unreachable: the forward waits, retried, and survives A's restart.
	bProxy.blocked.Store(true)
	user2 := "restart-" + randomHex(6)
	a.ingest(t, ta.WriteKey, "/v1/batch", batchBody(t, "", trackMessages(user2, "m-"+randomHex(4), 2)))
	b.ingest(t, tb.WriteKey, "/v1/batch", batchBody(t, "", trackMessages(user2, "m-"+randomHex(4), 2)))
	id2 := createErasure(t, a, ta.SecretKey, user2)
	_, f = waitForward(t, a, ta.SecretKey, id2, "custos-b", 5*time.Second, func(f forwardView) bool { return f.Attempts >= 2 })
	if f.Status != "queued" || !strings.Contains(f.LastError, "503") {
		t.Errorf("forward while B is unreachable = %+v, want queued, retried, the 503 recorded", f)
	}
	a.stop(t)
	// The request to B waits sealed: no byte of the data directory names the person.
	assertNotInDir(t, aCfg.dir, user2)
	bProxy.blocked.Store(false)
	a = startServer(t, aCfg)
	_, g := waitForward(t, a, ta.SecretKey, id2, "custos-b", 10*time.Second, func(f forwardView) bool { return f.Status == "completed" })
	if g.SubjectRequestID != f.SubjectRequestID {
		t.Errorf("subject_request_id changed across the restart: %s, then %s", f.SubjectRequestID, g.SubjectRequestID)
	}
	if r := b.lookup(t, tb.SecretKey, "user_id", user2); r.status != http.StatusNotFound {
		t.Errorf("B after the resumed forward: %d, want 404", r.status)
	}
}
