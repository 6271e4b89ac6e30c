package main

// This file walks console.Routes(), the table every page and form of the
// console and the privacy center is registered from, as TestRoutes walks
// server.Routes(): a new page is covered without anyone adding it here.

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/custos-dev/custos/internal/console"
)

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// browserless is a console client over plain HTTP: a cookie jar, no
// redirects followed.
type browserless struct {
	t    *testing.T
	srv  *testServer
	c    *http.Client
	csrf string // the session's CSRF token
}

func newBrowserless(t *testing.T, srv *testServer) *browserless {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browserless{t: t, srv: srv, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browserless) do(method, path string, form url.Values) (int, http.Header, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.srv.URL+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(raw)
}

// signIn signs in on a sign-in page with the fields given and keeps the
// session's CSRF token from the page it lands on.
func (b *browserless) signIn(page string, fields url.Values, landing string) {
	b.t.Helper()
	_, _, html := b.do("GET", page, nil)
	m := csrfRE.FindStringSubmatch(html)
	if m == nil {
		b.t.Fatalf("no CSRF token on %s", page)
	}
	fields.Set("csrf", m[1])
	status, h, body := b.do("POST", page, fields)
	if status != http.StatusSeeOther {
		b.t.Fatalf("sign in on %s: %d %s", page, status, body)
	}
	_, _, html = b.do("GET", landing, nil)
	if m = csrfRE.FindStringSubmatch(html); m == nil {
		b.t.Fatalf("signed in on %s (to %s), but %s shows no CSRF token", page, h.Get("Location"), landing)
	}
	b.csrf = m[1]
}

func TestConsoleRoutes(t *testing.T) {
	t.Parallel()
	srv := startServer(t, newServerConfig(t))
	a, b := srv.createTenant(t, "console-routes-a"), srv.createTenant(t, "console-routes-b")
	req := srv.apiRequest(t, b.SecretKey, "suppress", "user_id", "b-user")
	r := srv.do(t, "POST", "/admin/v1/incidents", mustJSON(t, map[string]any{"detected_at": "2026-01-20T08:00:00Z",
		"nature": "Lost laptop", "data_categories": []string{"contact.email"}, "likely_consequences": "Low", "measures_taken": "Wiped",
		"contact_point": "dpo@processor.example", "scope": map[string]any{"tenants": []string{b.ID}}}), "Authorization", "Bearer "+srv.cfg.token)
	inc := jsonField(t, "incident", r.body, "id")
	r = srv.do(t, "POST", "/api/v1/recipients", []byte(`{"name":"CRM","url":"https://crm.example/hook","secret":"0123456789abcdef0123"}`),
		"Authorization", "Bearer "+b.SecretKey)
	rcp := jsonField(t, "recipient", r.body, "id")
	camp := srv.createCampaign(t, b.SecretKey, json.RawMessage(campaignBody)).ID

	keyA, keyB := newBrowserless(t, srv), newBrowserless(t, srv)
	keyA.signIn("/console/signin", url.Values{"name": {"A admin"}, "secret_key": {a.SecretKey}}, "/console/requests")
	keyB.signIn("/console/signin", url.Values{"name": {"B admin"}, "secret_key": {b.SecretKey}}, "/console/requests")
	const pw = "a long enough password"
	if status, _, body := keyB.do("POST", "/console/users", url.Values{"csrf": {keyB.csrf}, "name": {"member"}, "password": {pw}}); status != http.StatusSeeOther {
		t.Fatalf("create B's member: %d %s", status, body)
	}
	member := newBrowserless(t, srv)
	member.signIn("/console/signin/user", url.Values{"tenant": {b.ID}, "name": {"member"}, "password": {pw}}, "/console/requests")
	op := newBrowserless(t, srv)
	op.signIn("/console/signin/operator", url.Values{"name": {"Op"}, "token": {srv.cfg.token}}, "/console/operator")
	// The public id of the member's session, from B's admin's account page.
	_, _, account := keyB.do("GET", "/console/account", nil)
	m := regexp.MustCompile(`/console/sessions/([^/]+)/revoke`).FindStringSubmatch(account)
	if m == nil {
		t.Fatalf("B's account page lists no other session:\n%s", account)
	}
	memberSession := m[1]

	// fill puts B's objects into a pattern.
	fill := func(rt console.Route) string {
		return regexp.MustCompile(`\{([^}.$]+)(\.\.\.)?\}`).ReplaceAllStringFunc(rt.Pattern, func(p string) string {
			switch name := strings.Trim(p, "{}."); {
			case name == "tenant":
				return b.ID
			case name == "name":
				return "member"
			case name == "id" && strings.HasPrefix(rt.Pattern, "/console/requests/"):
				return req
			case name == "id" && (strings.HasPrefix(rt.Pattern, "/console/incidents/") || strings.HasPrefix(rt.Pattern, "/console/operator/incidents/")):
				return inc
			case name == "id" && strings.HasPrefix(rt.Pattern, "/console/recipients/"):
				return rcp
			case name == "id" && strings.HasPrefix(rt.Pattern, "/console/campaigns/"):
				return camp
			case name == "id" && strings.HasPrefix(rt.Pattern, "/console/sessions/"):
				return memberSession
			}
			t.Errorf("console route %s %s: no test object for %s: add one to fill in console_routes_e2e_test.go", rt.Method, rt.Pattern, p)
			return "unknown"
		})
	}
	signinOf := map[console.Auth]string{console.TenantUser: "/console/signin", console.TenantAdmin: "/console/signin",
		console.Operator: "/console/signin/operator"}
	sessionOf := map[console.Auth]*browserless{console.TenantUser: keyB, console.TenantAdmin: keyB, console.Operator: op}

	for _, rt := range console.Routes() {
		what := rt.Method + " " + rt.Pattern
		path := strings.TrimSuffix(fill(rt), "{$}")
		var form url.Values
		if rt.Method == "POST" {
			form = url.Values{}
		}
		switch rt.Auth {
		case console.Public:
			continue
		case console.Subject:
			// Without a subject's session: sent to the privacy center's
			// sign-in, nothing done.
			status, h, _ := newBrowserless(t, srv).do(rt.Method, path, form)
			if status != http.StatusSeeOther || h.Get("Location") != "/privacy/"+b.ID {
				t.Errorf("%s without a session: %d to %q; want 303 to /privacy/%s", what, status, h.Get("Location"), b.ID)
			}
			continue
		case console.TenantUser, console.TenantAdmin, console.Operator:
		default:
			t.Errorf("%s has no known authentication class (%v)", what, rt.Auth)
			continue
		}
		// No session: sent to sign in.
		status, h, _ := newBrowserless(t, srv).do(rt.Method, path, form)
		if status != http.StatusSeeOther || h.Get("Location") != signinOf[rt.Auth] {
			t.Errorf("%s without a session: %d to %q; want 303 to %s", what, status, h.Get("Location"), signinOf[rt.Auth])
		}
		// The wrong kind of session is refused.
		wrong := []*browserless{op}
		if rt.Auth == console.Operator {
			wrong = []*browserless{keyB, member}
		}
		if rt.Auth == console.TenantAdmin {
			wrong = append(wrong, member)
		}
		for _, w := range wrong {
			f := form
			if f != nil {
				f = url.Values{"csrf": {w.csrf}}
			}
			if status, _, body := w.do(rt.Method, path, f); status != http.StatusForbidden {
				t.Errorf("%s with the wrong kind of session: %d, want 403; %.200s", what, status, body)
			}
		}
		if rt.Method == "POST" {
			// The right session without its CSRF token, or with another
			// session's, is refused.
			for _, token := range []string{"", keyA.csrf} {
				if status, _, body := sessionOf[rt.Auth].do("POST", path, url.Values{"csrf": {token}}); status != http.StatusForbidden || !strings.Contains(body, "CSRF") {
					t.Errorf("%s with CSRF token %q: %d, want 403 naming the CSRF token", what, token, status)
				}
			}
		}
		// Tenant A's session on B's objects finds nothing.
		if rt.Auth != console.Operator && strings.Contains(rt.Pattern, "{") {
			f := form
			if f != nil {
				f = url.Values{"csrf": {keyA.csrf}}
			}
			status, _, body := keyA.do(rt.Method, path, f)
			if status != http.StatusNotFound {
				t.Errorf("%s with tenant A's session on B's object: %d, want 404; %.300s", what, status, body)
			}
			for _, secret := range []string{"b-user", "Lost laptop", b.ID} {
				if strings.Contains(body, secret) && !strings.Contains(path, secret) {
					t.Errorf("%s with tenant A's session shows B's %q", what, secret)
				}
			}
		}
	}
	// B's objects are as they were: the member's session is alive, the
	// request still pending, the incident not acknowledged.
	if status, _, _ := member.do("GET", "/console/requests", nil); status != http.StatusOK {
		t.Errorf("the member's session ended: %d", status)
	}
	r = srv.do(t, "GET", "/api/v1/requests/"+req, nil, "Authorization", "Bearer "+b.SecretKey)
	if s := jsonField(t, "request", r.body, "status"); s == "cancelled" || s == "rejected" {
		t.Errorf("B's request is %s after the walk", s)
	}
	if r = srv.do(t, "GET", "/api/v1/recipients", nil, "Authorization", "Bearer "+b.SecretKey); !strings.Contains(string(r.body), rcp) {
		t.Errorf("B's recipient is gone after the walk: %s", r.body)
	}
	r = srv.do(t, "GET", "/api/v1/campaigns/"+camp, nil, "Authorization", "Bearer "+b.SecretKey)
	if s := jsonField(t, "campaign", r.body, "status"); s != "draft" {
		t.Errorf("B's campaign is %s after the walk; want draft", s)
	}
}
