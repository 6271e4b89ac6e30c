package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/custos-dev/custos/internal/certificate"
	"github.com/custos-dev/custos/internal/mail/mailtest"
	"github.com/custos-dev/custos/internal/testenv"
)

// auditEntries returns a tenant's audit chain through the API.
func (s *testServer) auditEntries(t *testing.T, secretKey string) []map[string]any {
	t.Helper()
	r := s.do(t, "GET", "/api/v1/audit?limit=1000", nil, "Authorization", "Bearer "+secretKey)
	if r.status != http.StatusOK {
		t.Fatalf("GET /api/v1/audit: %d %s", r.status, r.body)
	}
	var out struct {
		Entries []map[string]any `json:"entries"`
	}
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatal(err)
	}
	return out.Entries
}

// hasAudit reports whether entries hold one by actor with action.
func hasAudit(entries []map[string]any, actor, action string) bool {
	for _, e := range entries {
		if e["actor"] == actor && e["action"] == action {
			return true
		}
	}
	return false
}

// requestsOf lists a tenant's requests through the API.
func (s *testServer) requestsOf(t *testing.T, secretKey string) []map[string]any {
	t.Helper()
	r := s.do(t, "GET", "/api/v1/requests?limit=1000", nil, "Authorization", "Bearer "+secretKey)
	if r.status != http.StatusOK {
		t.Fatalf("GET /api/v1/requests: %d %s", r.status, r.body)
	}
	var out struct {
		Requests []map[string]any `json:"requests"`
	}
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatal(err)
	}
	return out.Requests
}

// apiRequest files a request through the API and returns its id.
func (s *testServer) apiRequest(t *testing.T, secretKey, typ, idType, value string) string {
	t.Helper()
	r := s.do(t, "POST", "/api/v1/requests", mustJSON(t, map[string]any{"type": typ,
		"identity": map[string]string{"type": idType, "value": value}}), "Authorization", "Bearer "+secretKey)
	if r.status != http.StatusCreated {
		t.Fatalf("POST /api/v1/requests %s: %d %s", typ, r.status, r.body)
	}
	var out struct {
		ID string `json:"id"`
	}
	mustDecode(t, r.body, &out)
	return out.ID
}

// signInConsole signs in to the console as name with key and waits for
// the queue.
func signInConsole(t *testing.T, ctx context.Context, srv *testServer, name, key string) {
	t.Helper()
	do(t, ctx, "open the sign-in page", chromedp.Navigate(srv.URL+"/console"), chromedp.WaitVisible(chromedp.CSS("#signin-form")),
		chromedp.SetValue(chromedp.CSS("#name"), name), chromedp.SetValue(chromedp.CSS("#secret_key"), key))
	clickTo(t, ctx, "#signin", "#queue")
}

// TestBrowser clicks through the console and the privacy center in
// headless Chromium against a real server, as their users would.
func TestBrowser(t *testing.T) {
	root := startChromium(t)
	smtp := mailtest.Start(t)
	cfg := newServerConfig(t)
	caFile := filepath.Join(t.TempDir(), "smtp-ca.pem")
	if err := os.WriteFile(caFile, smtp.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.extraArgs = append(cfg.extraArgs, "--smtp-ca-file", caFile)
	srv := startServer(t, cfg)
	acme := srv.createTenant(t, "Acme <Shop>")
	beta := srv.createTenant(t, "Beta")

	t.Run("console sign-in, session, CSRF and isolation", func(t *testing.T) {
		ctx := tab(t, root, "")
		// Pages carry a CSP that allows nothing inline.
		r := srv.do(t, "GET", "/console/signin", nil)
		csp := r.header.Get("Content-Security-Policy")
		if r.status != 200 || !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("GET /console/signin: %d, CSP %q; want 200 and a CSP without unsafe-inline", r.status, csp)
		}

		do(t, ctx, "open the console", chromedp.Navigate(srv.URL+"/console"), chromedp.WaitVisible(chromedp.CSS("#signin-form")))
		screenshot(t, ctx, "console-signin")
		// A wrong key is refused, saying why.
		do(t, ctx, "sign in with a wrong key", chromedp.SetValue(chromedp.CSS("#name"), "Ada"),
			chromedp.SetValue(chromedp.CSS("#secret_key"), "sk_not_a_key"))
		clickTo(t, ctx, "#signin", "#error")
		if got := text(t, ctx, "#error"); !strings.Contains(got, "secret key is not valid") {
			t.Errorf("after a wrong key the page says %q; want that the secret key is not valid", got)
		}
		// The write key is not enough either.
		do(t, ctx, "sign in with the write key", chromedp.SetValue(chromedp.CSS("#name"), "Ada"),
			chromedp.SetValue(chromedp.CSS("#secret_key"), acme.WriteKey))
		clickTo(t, ctx, "#signin", "#error")
		if strings.HasSuffix(location(t, ctx), "/console/requests") {
			t.Fatalf("the write key signed in to the console")
		}

		// Each tenant has a request; Acme's console shows only Acme's.
		acmeReq := srv.apiRequest(t, acme.SecretKey, "suppress", "user_id", "acme-user-1")
		betaReq := srv.apiRequest(t, beta.SecretKey, "suppress", "user_id", "beta-user-1")
		signInConsole(t, ctx, srv, "Ada <Lovelace>", acme.SecretKey)
		if got := text(t, ctx, "#user-name"); got != "Ada <Lovelace>" {
			t.Errorf("signed in as %q; want the name, escaped and shown as typed", got)
		}
		queue := text(t, ctx, "#queue")
		if !strings.Contains(queue, acmeReq) || strings.Contains(queue, betaReq) {
			t.Errorf("Acme's queue %q; want %s and not Beta's %s", queue, acmeReq, betaReq)
		}
		do(t, ctx, "open Beta's request", chromedp.Navigate(srv.URL+"/console/requests/"+betaReq), chromedp.WaitVisible(chromedp.CSS("#error")))
		if got := text(t, ctx, "main"); strings.Contains(got, "beta-user") || strings.Contains(got, "suppress") {
			t.Errorf("Beta's request page shows %q to Acme", got)
		}

		// The session cookie: HttpOnly, SameSite=Strict, expiring; not
		// Secure over plain HTTP (Secure under TLS is a unit test).
		cookies, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{srv.URL + "/console/requests"}})
		if err != nil {
			t.Fatal(err)
		}
		var session *network.Cookie
		for _, c := range cookies.Cookies {
			if c.Name == "custos_console" {
				session = c
			}
		}
		if session == nil {
			t.Fatalf("no custos_console cookie; cookies %+v", cookies.Cookies)
		}
		if !session.HTTPOnly || session.SameSite != network.CookieSameSiteStrict || session.Expires <= float64(time.Now().Unix()) ||
			session.Expires > float64(time.Now().Add(9*time.Hour).Unix()) || session.Path != "/console" {
			t.Errorf("session cookie %+v; want HttpOnly, SameSite=Strict, Path=/console, expiring within 8 hours", session)
		}

		// A form whose CSRF token does not match is refused and changes nothing.
		before := len(srv.requestsOf(t, acme.SecretKey))
		do(t, ctx, "tamper with the CSRF token", chromedp.Navigate(srv.URL+"/console/requests"), chromedp.WaitVisible(chromedp.CSS("#new-request")),
			chromedp.SetValue(chromedp.CSS("#new-request input[name=csrf]"), "forged"),
			chromedp.SetValue(chromedp.CSS("#identity_value"), "csrf-victim"))
		clickTo(t, ctx, "#create", "#error")
		if got := text(t, ctx, "#error"); !strings.Contains(got, "CSRF token does not match") {
			t.Errorf("after a forged token the page says %q", got)
		}
		// A page of another site that posts to the console: the cookie
		// is not sent (SameSite=Strict) and nothing is created.
		evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte(`<form id="f" method="post" action="` + srv.URL + `/console/requests">` +
				`<input name="type" value="erasure"><input name="identity_type" value="user_id"><input name="identity_value" value="cross-site">` +
				`<button id="go">go</button></form>`))
		}))
		defer evil.Close()
		evilURL := strings.Replace(evil.URL, "127.0.0.1", "localhost", 1) // another site than 127.0.0.1
		do(t, ctx, "post from another site", chromedp.Navigate(evilURL), chromedp.WaitVisible(chromedp.CSS("#go")))
		clickTo(t, ctx, "#go", "#signin-form")
		if after := len(srv.requestsOf(t, acme.SecretKey)); after != before {
			t.Errorf("requests went from %d to %d after forged forms; want no change", before, after)
		}

		// Signing out ends the session on the server: the old cookie no
		// longer opens the console.
		do(t, ctx, "back to the console", chromedp.Navigate(srv.URL+"/console/requests"), chromedp.WaitVisible(chromedp.CSS("#signout")))
		clickTo(t, ctx, "#signout", "#signin-form")
		req, _ := http.NewRequest("GET", srv.URL+"/console/requests", nil)
		req.AddCookie(&http.Cookie{Name: "custos_console", Value: session.Value})
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/signin" {
			t.Errorf("the signed-out cookie got %d to %q; want 303 to /console/signin", resp.StatusCode, resp.Header.Get("Location"))
		}

		entries := srv.auditEntries(t, acme.SecretKey)
		for _, action := range []string{"console.signin", "console.signout"} {
			if !hasAudit(entries, "console:secret-key:Ada <Lovelace>", action) {
				t.Errorf("no %s entry by console:Ada <Lovelace> in Acme's audit chain", action)
			}
		}
		if hasAudit(srv.auditEntries(t, beta.SecretKey), "console:secret-key:Ada <Lovelace>", "console.signin") {
			t.Errorf("Acme's sign-in is in Beta's audit chain")
		}
	})

	t.Run("console request completes", func(t *testing.T) {
		downloads := t.TempDir()
		ctx := tab(t, root, downloads)
		srv.ingest(t, acme.WriteKey, "/v1/batch", mustJSON(t, map[string]any{"batch": []map[string]any{
			{"type": "identify", "userId": "erase-me", "traits": map[string]any{"email": "erase-me@example.com"}},
			{"type": "track", "userId": "erase-me", "event": "Order Completed"},
		}}))
		// A recipient to tell of the erasure (Art. 19).
		crm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
		defer crm.Close()
		if r := srv.do(t, "POST", "/api/v1/recipients", []byte(`{"name":"crm <main>","url":"`+crm.URL+`","secret":"crm-signing-secret-0123","region":"eu"}`),
			"Authorization", "Bearer "+acme.SecretKey); r.status != http.StatusCreated {
			t.Fatalf("add a recipient: %d %s", r.status, r.body)
		}
		signInConsole(t, ctx, srv, "Grace", acme.SecretKey)
		do(t, ctx, "fill the new-request form",
			chromedp.SetValue(chromedp.CSS("#type"), "erasure"),
			chromedp.SetValue(chromedp.CSS("#identity_type"), "user_id"),
			chromedp.SetValue(chromedp.CSS("#identity_value"), "erase-me"))
		screenshot(t, ctx, "console-requests")
		clickTo(t, ctx, "#create", "#req-status")
		id := strings.TrimPrefix(text(t, ctx, "h1"), "Request ")
		// The page refreshes itself until the erasure is done.
		status := ""
		testenv.Poll(t, 60*time.Second, "request "+id+" shown completed", func() bool {
			if s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#req-status"))); err == nil {
				status = strings.TrimSpace(s)
			}
			return status == "completed"
		}, func() string { return "shown " + status })
		do(t, ctx, "wait for the certificate", chromedp.WaitVisible(chromedp.CSS("#cert-verified")))
		if got := text(t, ctx, "#steps"); !strings.Contains(got, "key shredded") || !strings.Contains(got, "bytes purged") {
			t.Errorf("steps %q; want the erasure's steps", got)
		}
		// The recipient's outcome shows once delivered (the page refreshes
		// only while the request runs: reload until it is there).
		outcome := ""
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
			do(t, ctx, "reload the request", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#recipient-outcomes")))
			if outcome = text(t, ctx, "#recipient-outcomes"); strings.Contains(outcome, "delivered") {
				break
			}
		}
		if !strings.Contains(outcome, "crm <main>") || !strings.Contains(outcome, "delivered") {
			t.Errorf("recipient outcomes %q; want crm <main> delivered", outcome)
		}
		screenshot(t, ctx, "console-request")
		// A request filed through the API with a callback URL: its page
		// shows the status callbacks delivered.
		cbs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
		defer cbs.Close()
		srv.ingest(t, acme.WriteKey, "/v1/batch", mustJSON(t, map[string]any{"batch": []map[string]any{{"type": "identify", "userId": "cb-user"}}}))
		cr := srv.do(t, "POST", "/api/v1/requests", []byte(`{"type":"access","identity":{"type":"user_id","value":"cb-user"},"callback_url":"`+cbs.URL+`"}`),
			"Authorization", "Bearer "+acme.SecretKey)
		if cr.status != http.StatusCreated {
			t.Fatalf("a request with a callback: %d %s", cr.status, cr.body)
		}
		cbID := jsonField(t, "request", cr.body, "id")
		callbacks := ""
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
			do(t, ctx, "open the request with a callback", chromedp.Navigate(srv.URL+"/console/requests/"+cbID), chromedp.WaitVisible(chromedp.CSS("#callback-outcomes")))
			if callbacks = text(t, ctx, "#callback-outcomes"); strings.Contains(callbacks, "delivered") {
				break
			}
		}
		if !strings.Contains(callbacks, cbs.URL) || !strings.Contains(callbacks, "delivered") {
			t.Errorf("status callbacks %q; want %s delivered", callbacks, cbs.URL)
		}
		do(t, ctx, "back to the erasure", chromedp.Navigate(srv.URL+"/console/requests/"+id), chromedp.WaitVisible(chromedp.CSS("#cert-download")))

		// The certificate downloads, and verifies offline with the node's
		// public key.
		do(t, ctx, "download the certificate", chromedp.Click(chromedp.CSS("#cert-download")))
		certJSON, err := os.ReadFile(waitFile(t, downloads, ".json"))
		if err != nil {
			t.Fatal(err)
		}
		pub := srv.do(t, "GET", "/.well-known/custos/signing-key", nil)
		if c, err := certificate.VerifyFile(certJSON, pub.body); err != nil || c.RequestID != id {
			t.Errorf("the downloaded certificate: %v (request %q, want %s)", err, c.RequestID, id)
		}
		if r := srv.lookup(t, acme.SecretKey, "user_id", "erase-me"); r.status != http.StatusNotFound {
			t.Errorf("after the console's erasure the API finds the subject: %d %s", r.status, r.body)
		}

		// A request from a device waits for verification: extend it with
		// a reason, then approve it.
		r := srv.do(t, "POST", "/v1/privacy", mustJSON(t, map[string]string{"type": "access", "userId": "device-user", "writeKey": acme.WriteKey}))
		var pending struct {
			ID     string `json:"request_id"`
			Status string `json:"status"`
		}
		mustDecode(t, r.body, &pending)
		if r.status != http.StatusAccepted || pending.Status != "pending_verification" {
			t.Fatalf("POST /v1/privacy: %d %s; want a request pending verification", r.status, r.body)
		}
		do(t, ctx, "open the pending request", chromedp.Navigate(srv.URL+"/console/requests/"+pending.ID), chromedp.WaitVisible(chromedp.CSS("#approve")),
			chromedp.SetValue(chromedp.CSS("#reason"), "identity check by post <slow>"))
		clickTo(t, ctx, "#extend", "#flash")
		if got := text(t, ctx, "#req-extension"); !strings.Contains(got, "identity check by post <slow>") {
			t.Errorf("extension shown as %q", got)
		}
		clickTo(t, ctx, "#approve", "#flash")
		if got := text(t, ctx, "#req-status"); got != "completed" {
			t.Errorf("approved access request is %q; want completed", got)
		}
		// Cancel another pending one.
		r = srv.do(t, "POST", "/v1/privacy", mustJSON(t, map[string]string{"type": "erasure", "userId": "device-user-2", "writeKey": acme.WriteKey}))
		mustDecode(t, r.body, &pending)
		do(t, ctx, "open the second pending request", chromedp.Navigate(srv.URL+"/console/requests/"+pending.ID), chromedp.WaitVisible(chromedp.CSS("#cancel")))
		clickTo(t, ctx, "#cancel", "#flash")
		if got := text(t, ctx, "#req-status"); got != "cancelled" {
			t.Errorf("cancelled request is %q", got)
		}
		// Reject a third, with a reason.
		r = srv.do(t, "POST", "/v1/privacy", mustJSON(t, map[string]string{"type": "access", "userId": "device-user-3", "writeKey": acme.WriteKey}))
		json.Unmarshal(r.body, &pending)
		do(t, ctx, "open the third pending request", chromedp.Navigate(srv.URL+"/console/requests/"+pending.ID), chromedp.WaitVisible(chromedp.CSS("#reject")),
			chromedp.SetValue(chromedp.CSS("#reject-reason"), "not the account holder"))
		clickTo(t, ctx, "#reject", "#flash")
		if got := text(t, ctx, "#req-status"); got != "rejected" {
			t.Errorf("rejected request is %q", got)
		}

		entries := srv.auditEntries(t, acme.SecretKey)
		for _, action := range []string{"request.completed", "request.extended", "request.approved", "request.cancelled", "request.rejected"} {
			if !hasAudit(entries, "console:secret-key:Grace", action) {
				t.Errorf("no %s entry by console:Grace in the audit chain", action)
			}
		}
	})

	t.Run("console people and audit log", func(t *testing.T) {
		ctx := tab(t, root, "")
		var batch []map[string]any
		batch = append(batch, map[string]any{"type": "identify", "userId": "pat-1", "traits": map[string]any{"email": "pat@example.com", "plan": "<gold>"}})
		for i := range 24 {
			batch = append(batch, map[string]any{"type": "track", "userId": "pat-1", "event": fmt.Sprintf("Viewed %02d", i),
				"timestamp": time.Now().Add(time.Duration(i-30) * time.Minute).UTC().Format(time.RFC3339)})
		}
		srv.ingest(t, acme.WriteKey, "/v1/batch", mustJSON(t, map[string]any{"batch": batch}))
		srv.postConsent(t, acme.SecretKey, map[string]any{"identity": map[string]string{"type": "user_id", "value": "pat-1"},
			"purpose": "marketing", "channel": "email", "granted": true})

		signInConsole(t, ctx, srv, "Lin", acme.SecretKey)
		checkAccessible(t, ctx, "the console's request queue")
		do(t, ctx, "open People", chromedp.Navigate(srv.URL+"/console/people"), chromedp.WaitVisible(chromedp.CSS("#lookup")),
			chromedp.SetValue(chromedp.CSS("#p-type"), "email"), chromedp.SetValue(chromedp.CSS("#p-value"), "PAT@example.com"))
		clickTo(t, ctx, "#find", "#profile")
		if got := text(t, ctx, "#profile"); !strings.Contains(got, "pat-1") {
			t.Errorf("profile %q; want user_id pat-1", got)
		}
		if got := text(t, ctx, "#traits"); !strings.Contains(got, `"<gold>"`) {
			t.Errorf("traits %q; want the plan shown escaped", got)
		}
		rows, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#events tbody tr").length`))
		if err != nil || rows != 20 {
			t.Errorf("first page of events has %d rows (%v); want 20", rows, err)
		}
		if got := text(t, ctx, "#consent"); !strings.Contains(got, "marketing") || !strings.Contains(got, "granted") {
			t.Errorf("consent %q; want marketing granted", got)
		}
		if got := text(t, ctx, "#flags"); !strings.Contains(got, "Suppressed: no") {
			t.Errorf("flags %q; want not suppressed", got)
		}
		checkAccessible(t, ctx, "the console's person page")
		screenshot(t, ctx, "console-person")
		first := text(t, ctx, "#events tbody")
		clickTo(t, ctx, "#events-next", "#events")
		rest := text(t, ctx, "#events tbody")
		rows, err = chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#events tbody tr").length`))
		if rest == first || err != nil || rows != 5 {
			t.Errorf("second page of events has %d rows (%v): %q; want the other 5 of 25", rows, err, rest)
		}
		// Rectify from the person's page: the trait changes.
		do(t, ctx, "enter the traits to set", chromedp.SetValue(chromedp.CSS("#rectify-traits"), `{"plan": "silver"}`))
		clickTo(t, ctx, "#act-rectify", "#req-status")
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#req-status"))); err == nil && strings.TrimSpace(s) == "completed" {
				break
			}
		}
		do(t, ctx, "look pat up after the rectification", chromedp.Navigate(srv.URL+"/console/people?type=user_id&value=pat-1"), chromedp.WaitVisible(chromedp.CSS("#traits")))
		if got := text(t, ctx, "#traits"); !strings.Contains(got, `"silver"`) {
			t.Errorf("traits after rectify %q; want plan silver", got)
		}
		clickTo(t, ctx, "#act-suppress", "#req-status")
		if got := text(t, ctx, "#req-status"); got != "completed" {
			t.Errorf("suppress from the person page is %q", got)
		}
		do(t, ctx, "look pat up again", chromedp.Navigate(srv.URL+"/console/people?type=user_id&value=pat-1"), chromedp.WaitVisible(chromedp.CSS("#flags")))
		if got := text(t, ctx, "#flags"); !strings.Contains(got, "Suppressed: yes") {
			t.Errorf("after the suppression flags are %q", got)
		}

		do(t, ctx, "open the audit log", chromedp.Navigate(srv.URL+"/console/audit"), chromedp.WaitVisible(chromedp.CSS("#audit")))
		clickTo(t, ctx, "#verify", "#verify-result")
		if got := text(t, ctx, "#verify-result"); !strings.Contains(got, "The chain is intact") {
			t.Errorf("verify the chain: %q", got)
		}
		log := text(t, ctx, "#audit")
		if !strings.Contains(log, "console:secret-key:Lin") || !strings.Contains(log, "profile.read") {
			t.Errorf("the audit page lacks Lin's profile read:\n%s", log)
		}
		if strings.Contains(log, "pat@example.com") || strings.Contains(log, "pat-1") {
			t.Errorf("the audit log names the person:\n%s", log)
		}
		checkAccessible(t, ctx, "the console's audit log")
		screenshot(t, ctx, "console-audit")
	})

	t.Run("console users, two-factor and sessions", func(t *testing.T) { testConsoleUsers(t, root, srv, acme, beta) })
	t.Run("console incidents", func(t *testing.T) { testConsoleIncidents(t, root, srv, acme, beta) })
	t.Run("operator console", func(t *testing.T) { testOperatorConsole(t, root, srv, acme) })
	t.Run("console campaigns", func(t *testing.T) { testConsoleCampaigns(t, root, srv, smtp, acme) })
	t.Run("console consent", func(t *testing.T) { testConsoleConsents(t, root, srv) })
	t.Run("console settings", func(t *testing.T) { testConsoleSettings(t, root, srv) })
	// Last: it ends by stopping the server, to wait for the mails it started.
	t.Run("privacy center", func(t *testing.T) { testPrivacyCenter(t, root, srv, smtp, acme, beta) })
}
