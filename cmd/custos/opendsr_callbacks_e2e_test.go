package main

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos-dev/custos/internal/opendsr"
	"github.com/custos-dev/custos/internal/testenv"
)

// callbackReceiver is a controller's status callback endpoint: it keeps
// every callback and answers with the status its answer function picks.
type callbackReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []receivedCallback
	answer func(n int) int // status for the n-th callback (from 0)
	ch     chan struct{}
}

type receivedCallback struct {
	path   string
	header http.Header
	body   []byte
	at     time.Time
}

func newCallbackReceiver(t *testing.T) *callbackReceiver {
	cr := &callbackReceiver{answer: func(int) int { return http.StatusOK }, ch: make(chan struct{}, 100)}
	cr.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		cr.mu.Lock()
		n := len(cr.got)
		cr.got = append(cr.got, receivedCallback{path: r.URL.Path, header: r.Header.Clone(), body: b, at: time.Now()})
		status := cr.answer(n)
		cr.mu.Unlock()
		w.WriteHeader(status)
		cr.ch <- struct{}{}
	}))
	t.Cleanup(cr.Close)
	return cr
}

// wait returns the callbacks received once cond holds for them, or fails
// the test after timeout.
func (cr *callbackReceiver) wait(t *testing.T, timeout time.Duration, what string, cond func([]receivedCallback) bool) []receivedCallback {
	t.Helper()
	deadline := time.After(timeout)
	for {
		cr.mu.Lock()
		got := slices.Clone(cr.got)
		cr.mu.Unlock()
		if cond(got) {
			return got
		}
		select {
		case <-cr.ch:
		case <-deadline:
			t.Fatalf("%s: not within %s; received %d callbacks", what, timeout, len(got))
		}
	}
}

// verifyCallback checks one callback's signature headers (OpenDSR or, for
// v1, OpenGDPR names) against the processor certificate and decodes it.
func verifyCallback(t *testing.T, cert *x509.Certificate, c receivedCallback, v1 bool) opendsr.Callback {
	t.Helper()
	domainH, sigH, otherH := opendsr.HeaderProcessorDomain, opendsr.HeaderSignature, opendsr.HeaderSignatureV1
	if v1 {
		domainH, sigH, otherH = opendsr.HeaderProcessorDomainV1, opendsr.HeaderSignatureV1, opendsr.HeaderSignature
	}
	if got := c.header.Get(domainH); got != "localhost" {
		t.Errorf("callback %s = %q, want localhost", domainH, got)
	}
	if c.header.Get(otherH) != "" {
		t.Errorf("callback carries %s as well as %s", otherH, sigH)
	}
	if err := opendsr.Verify(cert, c.body, c.header.Get(sigH)); err != nil {
		t.Errorf("callback signature over %s: %v", c.body, err)
	}
	var cb opendsr.Callback
	if err := json.Unmarshal(c.body, &cb); err != nil {
		t.Fatalf("callback body %s: %v", c.body, err)
	}
	return cb
}

func statuses(t *testing.T, cert *x509.Certificate, got []receivedCallback, path string, v1 bool) []string {
	var out []string
	for _, c := range got {
		if c.path == path {
			out = append(out, verifyCallback(t, cert, c, v1).RequestStatus)
		}
	}
	return out
}

// TestOpenDSRCallbacks submits an erasure naming the person only by the
// SHA-256 of their e-mail address, with two status callback URLs, and
// wants both called back, signed with the certificate from discovery, up
// to "completed" within 5 seconds of the submission — once per status.
func TestOpenDSRCallbacks(t *testing.T) {
	t.Parallel()
	cfg := newServerConfig(t)
	cfg.extraArgs = append(cfg.extraArgs, "--opendsr-allow-http-callbacks")
	srv := startServer(t, cfg)
	a := srv.createTenant(t, "dsr-callbacks")
	ca := &dsrClient{srv: srv, key: a.SecretKey}
	d := ca.discover(t)
	if !slices.Contains(d.SupportedIdentities, opendsr.SupportedIdentity{IdentityType: "email", IdentityFormat: "sha256"}) {
		t.Errorf("discovery does not offer email/sha256: %+v", d.SupportedIdentities)
	}
	recv := newCallbackReceiver(t)

	p := newPerson("dsr-cb")
	srv.ingest(t, a.WriteKey, "/v1/batch", batchBody(t, "", []map[string]any{
		{"type": "identify", "messageId": "cb-1-" + p.userID, "userId": p.userID, "traits": map[string]any{"email": p.email}},
		{"type": "track", "messageId": "cb-2-" + p.userID, "userId": p.userID, "event": "Bought"},
	}))
	// The controller hashes the address as it has it: any case, spaces.
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(p.email))))
	hashed := hex.EncodeToString(sum[:])
	if r := srv.do(t, "GET", "/api/v1/profiles?email_sha256="+hashed, nil, "Authorization", "Bearer "+a.SecretKey); r.status != http.StatusOK {
		t.Fatalf("lookup by email_sha256: %d %s", r.status, r.body)
	}
	assertNotInDir(t, cfg.dir, hashed)

	id := uuid4()
	cb1, cb2 := recv.URL+"/cb/one", recv.URL+"/cb/two"
	body, _ := json.Marshal(map[string]any{
		"regulation": "gdpr", "subject_request_id": id, "subject_request_type": "erasure", "api_version": "2.0",
		"submitted_time":       time.Now().UTC().Format(time.RFC3339),
		"subject_identities":   []map[string]string{{"identity_type": "email", "identity_value": hashed, "identity_format": "sha256"}},
		"status_callback_urls": []string{cb1, cb2},
	})
	start := time.Now()
	if r := ca.do(t, "POST", "/opendsr/v2/requests", body); r.status != http.StatusCreated {
		t.Fatalf("POST erasure by sha256 e-mail: %d %s", r.status, r.body)
	}
	completed := func(path string) func([]receivedCallback) bool {
		return func(got []receivedCallback) bool {
			for _, c := range got {
				if c.path == path && strings.Contains(string(c.body), `"request_status":"completed"`) {
					return true
				}
			}
			return false
		}
	}
	recv.wait(t, 5*time.Second, "completed callback to /cb/one", completed("/cb/one"))
	got := recv.wait(t, 5*time.Second-time.Since(start), "completed callback to /cb/two", completed("/cb/two"))
	t.Logf("erasure submitted over OpenDSR: both completed callbacks within %s", time.Since(start).Round(time.Millisecond))

	for _, path := range []string{"/cb/one", "/cb/two"} {
		if st := statuses(t, ca.cert, got, path, false); !slices.Equal(st, []string{"in_progress", "completed"}) {
			t.Errorf("callbacks to %s: %v, want in_progress then completed, once each", path, st)
		}
	}
	for _, c := range got {
		cb := verifyCallback(t, ca.cert, c, false)
		if cb.SubjectRequestID != id || cb.ControllerID != a.ID || cb.StatusCallbackURL != recv.URL+c.path || cb.ExpectedCompletionTime.IsZero() {
			t.Errorf("callback %s, want request %s of controller %s naming its own URL", c.body, id, a.ID)
		}
	}
	if r := srv.lookup(t, a.SecretKey, "user_id", p.userID); r.status != http.StatusNotFound {
		t.Errorf("profile after an erasure by hashed e-mail: %d, want 404", r.status)
	}
	if r := srv.do(t, "GET", "/api/v1/profiles?email_sha256="+hashed, nil, "Authorization", "Bearer "+a.SecretKey); r.status != http.StatusNotFound {
		t.Errorf("hash index after the erasure: %d, want 404", r.status)
	}

	// The request is an ordinary Custos request, its callbacks listed.
	r := srv.do(t, "GET", "/api/v1/requests/dsr_"+id, nil, "Authorization", "Bearer "+a.SecretKey)
	var view struct {
		Type      string `json:"type"`
		Status    string `json:"status"`
		Source    string `json:"source"`
		Callbacks []struct {
			Recipient, Status string
		} `json:"callbacks"`
	}
	json.Unmarshal(r.body, &view)
	if view.Type != "erasure" || view.Status != "completed" || view.Source != "opendsr" || len(view.Callbacks) != 4 {
		t.Errorf("native view of the request: %s; want a completed erasure from opendsr with 4 callbacks", r.body)
	}
	if r := srv.do(t, "GET", "/api/v1/requests/dsr_"+id+"/certificate", nil, "Authorization", "Bearer "+a.SecretKey); r.status != http.StatusOK {
		t.Errorf("certificate of the OpenDSR erasure: %d %s", r.status, r.body)
	}
}

// TestOpenDSRPendingCancel holds requests for the tenant's review, so a
// controller can see "pending" and cancel — and only then.
func TestOpenDSRPendingCancel(t *testing.T) {
	t.Parallel()
	cfg := newServerConfig(t)
	cfg.extraArgs = append(cfg.extraArgs, "--opendsr-allow-http-callbacks")
	srv := startServer(t, cfg)
	a := srv.createTenant(t, "dsr-review")
	srv.patchSettings(t, a.SecretKey, map[string]any{"opendsr_review": true})
	ca := &dsrClient{srv: srv, key: a.SecretKey}
	ca.discover(t)
	recv := newCallbackReceiver(t)
	user := "review-" + randomHex(6)
	srv.ingest(t, a.WriteKey, "/v1/batch", batchBody(t, "", trackMessages(user, "rv-"+randomHex(4), 1)))

	submit := func(id string) {
		t.Helper()
		body, _ := json.Marshal(map[string]any{
			"regulation": "gdpr", "subject_request_id": id, "subject_request_type": "erasure",
			"submitted_time":       time.Now().UTC().Format(time.RFC3339),
			"subject_identities":   []map[string]string{{"identity_type": "controller_customer_id", "identity_value": user, "identity_format": "raw"}},
			"status_callback_urls": []string{recv.URL + "/" + id},
		})
		if r := ca.do(t, "POST", "/opendsr/v2/requests", body); r.status != http.StatusCreated {
			t.Fatalf("POST: %d %s", r.status, r.body)
		}
	}
	status := func(id string) string {
		t.Helper()
		r := ca.do(t, "GET", "/opendsr/v2/requests/"+id, nil)
		var s opendsr.StatusResponse
		json.Unmarshal(r.body, &s)
		return s.RequestStatus
	}

	cancelled := uuid4()
	submit(cancelled)
	if got := status(cancelled); got != "pending" {
		t.Fatalf("held request is %q, want pending", got)
	}
	r := ca.do(t, "DELETE", "/opendsr/v2/requests/"+cancelled, nil)
	if r.status != http.StatusAccepted || !strings.Contains(string(r.body), `"request_status":"cancelled"`) {
		t.Errorf("DELETE a pending request: %d %s, want 202 and cancelled", r.status, r.body)
	}
	if r := ca.do(t, "DELETE", "/opendsr/v2/requests/"+cancelled, nil); r.status != http.StatusConflict {
		t.Errorf("DELETE it again: %d %s, want 409", r.status, r.body)
	}
	got := recv.wait(t, 5*time.Second, "pending and cancelled callbacks", func(got []receivedCallback) bool {
		return len(statuses(t, ca.cert, got, "/"+cancelled, false)) >= 2
	})
	if st := statuses(t, ca.cert, got, "/"+cancelled, false); !slices.Equal(st, []string{"pending", "cancelled"}) {
		t.Errorf("callbacks of the cancelled request: %v, want pending, cancelled", st)
	}
	if r := srv.lookup(t, a.SecretKey, "user_id", user); r.status != http.StatusOK {
		t.Errorf("profile after a cancelled erasure: %d, want it kept", r.status)
	}

	// Approved by the tenant, a held request runs; it can no longer be
	// cancelled.
	approved := uuid4()
	submit(approved)
	if r := srv.do(t, "POST", "/api/v1/requests/dsr_"+approved+"/approve", nil, "Authorization", "Bearer "+a.SecretKey); r.status != http.StatusOK {
		t.Fatalf("approve: %d %s", r.status, r.body)
	}
	if got := status(approved); got != "completed" {
		t.Errorf("approved request is %q, want completed", got)
	}
	if r := ca.do(t, "DELETE", "/opendsr/v2/requests/"+approved, nil); r.status != http.StatusConflict {
		t.Errorf("DELETE a completed request: %d, want 409", r.status)
	}
	if r := srv.lookup(t, a.SecretKey, "user_id", user); r.status != http.StatusNotFound {
		t.Errorf("profile after the approved erasure: %d, want 404", r.status)
	}
}

// TestOpenDSRV1 checks the version 1 (OpenGDPR) names: their own paths,
// requests without regulation, and X-OpenGDPR-* signature headers on
// answers and callbacks. A callback refused for its signature (401) is
// final and shows as refused.
func TestOpenDSRV1(t *testing.T) {
	t.Parallel()
	cfg := newServerConfig(t)
	cfg.extraArgs = append(cfg.extraArgs, "--opendsr-allow-http-callbacks")
	srv := startServer(t, cfg)
	a := srv.createTenant(t, "dsr-v1")
	ca := &dsrClient{srv: srv, key: a.SecretKey}
	ca.discover(t) // the certificate is the same for both versions
	recv := newCallbackReceiver(t)
	recv.answer = func(int) int { return http.StatusUnauthorized }

	do := func(method, path string, body []byte) response {
		t.Helper()
		r := srv.do(t, method, path, body, "Authorization", "Bearer "+a.SecretKey)
		if r.header.Get(opendsr.HeaderSignature) != "" || r.header.Get(opendsr.HeaderProcessorDomain) != "" {
			t.Errorf("%s %s: v1 answer carries X-OpenDSR headers", method, path)
		}
		if got := r.header.Get(opendsr.HeaderProcessorDomainV1); got != "localhost" {
			t.Errorf("%s %s: %s = %q, want localhost", method, path, opendsr.HeaderProcessorDomainV1, got)
		}
		if err := opendsr.Verify(ca.cert, r.body, r.header.Get(opendsr.HeaderSignatureV1)); err != nil {
			t.Errorf("%s %s: X-OpenGDPR-Signature: %v", method, path, err)
		}
		return r
	}
	r := do("GET", "/opendsr/v1/discovery", nil)
	var d opendsr.Discovery
	json.Unmarshal(r.body, &d)
	if r.status != http.StatusOK || d.APIVersion != "1.0" || d.ProcessorCertificate != srv.URL+"/opendsr/v1/certificate" {
		t.Errorf("v1 discovery: %d %s", r.status, r.body)
	}
	if r := do("GET", "/opendsr/v1/certificate", nil); r.status != http.StatusOK || !strings.Contains(string(r.body), "BEGIN CERTIFICATE") {
		t.Errorf("v1 certificate: %d", r.status)
	}

	user := "v1-" + randomHex(6)
	srv.ingest(t, a.WriteKey, "/v1/batch", batchBody(t, "", trackMessages(user, "v1-"+randomHex(4), 2)))
	id := uuid4()
	body, _ := json.Marshal(map[string]any{ // no regulation: version 1 had none
		"subject_request_id": id, "subject_request_type": "access", "api_version": "1.0",
		"submitted_time":       time.Now().UTC().Format(time.RFC3339),
		"subject_identities":   []map[string]string{{"identity_type": "controller_customer_id", "identity_value": user, "identity_format": "raw"}},
		"status_callback_urls": []string{recv.URL + "/v1cb"},
	})
	if r := do("POST", "/opendsr/v1/opengdpr_requests", body); r.status != http.StatusCreated {
		t.Fatalf("POST v1 request: %d %s", r.status, r.body)
	}
	r = do("GET", "/opendsr/v1/opengdpr_requests/"+id, nil)
	var st opendsr.StatusResponse
	json.Unmarshal(r.body, &st)
	if st.RequestStatus != "completed" || st.APIVersion != "1.0" || st.ResultsCount == nil || *st.ResultsCount != 1 || st.ResultsURL == "" {
		t.Errorf("v1 status: %s; want completed, api 1.0, one result", r.body)
	}
	got := recv.wait(t, 5*time.Second, "v1 callbacks", func(got []receivedCallback) bool { return len(got) >= 2 })
	for _, c := range got {
		verifyCallback(t, ca.cert, c, true)
	}
	// Refused with 401: no retry, and the request shows it. Once the
	// request lists both deliveries as refused they are final, and the
	// outbox never sends a final delivery again.
	testenv.Poll(t, 5*time.Second, "both refused callbacks recorded as refused", func() bool {
		r = srv.do(t, "GET", "/api/v1/requests/dsr_"+id, nil, "Authorization", "Bearer "+a.SecretKey)
		return strings.Count(string(r.body), `"status":"refused"`) >= 2
	}, func() string { return "request " + string(r.body) })
	recv.mu.Lock()
	n := len(recv.got)
	recv.mu.Unlock()
	if n != 2 {
		t.Errorf("callbacks refused with 401 were sent %d times, want 2 (one per status, no retry)", n)
	}
	if !strings.Contains(string(r.body), `"status":"refused"`) || !strings.Contains(string(r.body), "refused the signature") {
		t.Errorf("request view after refused callbacks: %s; want them listed as refused", r.body)
	}
	if r := do("DELETE", "/opendsr/v1/opengdpr_requests/"+id, nil); r.status != http.StatusConflict {
		t.Errorf("v1 DELETE of a completed request: %d, want 409", r.status)
	}
}
