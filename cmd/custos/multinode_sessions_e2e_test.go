package main

import (
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos-dev/custos/internal/mail/mailtest"
	"github.com/custos-dev/custos/internal/testenv"
)

// webClient is a browser-like client that keeps cookies by hand and follows no
// redirect, so a test sees each answer and chooses which node gets the
// next request, as a load balancer would.
type webClient struct {
	t       *testing.T
	client  *http.Client
	cookies map[string]string
}

func newWebClient(t *testing.T) *webClient {
	return &webClient{t: t, cookies: map[string]string{},
		client: &http.Client{Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// newWebClientFrom is a webClient whose connections come from another
// loopback address (127.0.0.2, say), so that the server sees another
// client address.
func newWebClientFrom(t *testing.T, addr string) *webClient {
	b := newWebClient(t)
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(addr)}, Timeout: 10 * time.Second}
	b.client.Transport = &http.Transport{DialContext: dialer.DialContext}
	return b
}

// send makes a request at node n with the webClient's cookies (form: a
// POST of the form) and keeps the cookies the answer sets.
func (b *webClient) send(n *testServer, method, path string, form url.Values) response {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, n.URL+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range b.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 || c.Value == "" {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c.Value
		}
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// csrfIn returns the CSRF token of the first form of a page.
func csrfIn(t *testing.T, r response) string {
	t.Helper()
	m := csrfRE.FindSubmatch(r.body)
	if m == nil {
		t.Fatalf("no CSRF token in the page (%d):\n%s", r.status, r.body)
	}
	return string(m[1])
}

// consoleSignIn signs in to the console with the tenant's secret key at
// node n and returns the session cookie.
func (b *webClient) consoleSignIn(n *testServer, name, secretKey string) string {
	b.t.Helper()
	r := b.send(n, "GET", "/console/signin", nil)
	r = b.send(n, "POST", "/console/signin", url.Values{"name": {name}, "secret_key": {secretKey}, "csrf": {csrfIn(b.t, r)}})
	if r.status != http.StatusSeeOther || b.cookies["custos_console"] == "" {
		b.t.Fatalf("console sign-in: %d, cookies %v; want 303 and a session cookie", r.status, b.cookies)
	}
	return b.cookies["custos_console"]
}

// signedInPage reports whether node n serves the console's requests page
// to the webClient (a signed-out webClient is sent to sign in).
func (b *webClient) signedInPage(n *testServer) bool {
	b.t.Helper()
	r := b.send(n, "GET", "/console/requests", nil)
	switch {
	case r.status == http.StatusOK:
		return true
	case r.status == http.StatusSeeOther && strings.HasPrefix(r.header.Get("Location"), "/console/signin"):
		return false
	}
	b.t.Fatalf("GET /console/requests: %d %s; want 200 or a redirect to sign in", r.status, r.body)
	return false
}

// TestTwoNodesShareSessions: the console and privacy-center sessions and
// the one-time sign-in links live in the database, so a session started
// on node A is served by node B, ended through B it is refused by A, and
// a link issued through A works once through B and not again through A.
func TestTwoNodesShareSessions(t *testing.T) {
	smtp := mailtest.Start(t)
	caFile := filepath.Join(t.TempDir(), "smtp-ca.pem")
	if err := os.WriteFile(caFile, smtp.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cfgA := pgConfig(t)
	cfgA.extraArgs = append(cfgA.extraArgs, "--smtp-ca-file", caFile)
	a := startServer(t, cfgA)
	ten := a.createTenant(t, "sessions")
	cfgB := cfgA
	cfgB.dir = t.TempDir()
	b := startServer(t, cfgB)

	t.Run("console", func(t *testing.T) {
		ada, root := newWebClient(t), newWebClient(t)
		adaCookie := ada.consoleSignIn(a, "Ada", ten.SecretKey)
		root.consoleSignIn(a, "Root", ten.SecretKey)
		if !ada.signedInPage(b) {
			t.Fatal("node B does not serve a console session started on node A")
		}
		// Root revokes Ada's session through node B; node A refuses it.
		sum := sha256.Sum256([]byte(adaCookie))
		id := base64.RawURLEncoding.EncodeToString(sum[:12])
		page := root.send(b, "GET", "/console/account", nil)
		if page.status != http.StatusOK || !strings.Contains(string(page.body), id) {
			t.Fatalf("node B's account page (%d) does not list Ada's session %s started on node A:\n%s", page.status, id, page.body)
		}
		r := root.send(b, "POST", "/console/sessions/"+id+"/revoke", url.Values{"csrf": {csrfIn(t, page)}})
		if r.status != http.StatusSeeOther {
			t.Fatalf("revoke through node B: %d %s", r.status, r.body)
		}
		if ada.signedInPage(a) {
			t.Error("node A serves a session revoked through node B")
		}
		// Root signs out through node B; node A refuses Root's cookie.
		page = root.send(a, "GET", "/console/account", nil)
		if strings.Contains(string(page.body), id) {
			t.Errorf("node A's account page still lists the session revoked through node B")
		}
		stale := root.cookies["custos_console"]
		if r := root.send(b, "POST", "/console/signout", url.Values{"csrf": {csrfIn(t, page)}}); r.status != http.StatusSeeOther {
			t.Fatalf("sign out through node B: %d %s", r.status, r.body)
		}
		root.cookies["custos_console"] = stale // the cookie replayed
		if root.signedInPage(a) {
			t.Error("node A serves a session signed out through node B")
		}
	})

	t.Run("console users", func(t *testing.T) {
		root := newWebClient(t)
		root.consoleSignIn(a, "Root", ten.SecretKey)
		addUser := func(name string) {
			t.Helper()
			page := root.send(a, "GET", "/console/users", nil)
			r := root.send(a, "POST", "/console/users", url.Values{"name": {name}, "password": {"correct horse battery"}, "csrf": {csrfIn(t, page)}})
			if r.status != http.StatusSeeOther {
				t.Fatalf("add console user %s through node A: %d %s", name, r.status, r.body)
			}
		}
		// Node B's users page (root's session serves there too) shows
		// when node B's registry has a user, without a failed sign-in.
		knownAtB := func(name string) {
			t.Helper()
			testenv.Poll(t, 10*time.Second, "node B knowing the user "+name+" added through node A", func() bool {
				r := root.send(b, "GET", "/console/users", nil)
				return r.status == http.StatusOK && strings.Contains(string(r.body), "users/"+name+"/delete")
			})
		}
		signIn := func(c *webClient, n *testServer, name, password string) int {
			t.Helper()
			r := c.send(n, "GET", "/console/signin/user", nil)
			r = c.send(n, "POST", "/console/signin/user", url.Values{"tenant": {ten.ID}, "name": {name}, "password": {password}, "csrf": {csrfIn(t, r)}})
			return r.status
		}

		// A user added through node A signs in through node B; removed
		// through node A, their session ends on node B at once.
		addUser("mia")
		knownAtB("mia")
		mia := newWebClient(t)
		if got := signIn(mia, b, "mia", "correct horse battery"); got != http.StatusSeeOther {
			t.Fatalf("sign in through node B as a user added through node A: %d, want 303", got)
		}
		if !mia.signedInPage(a) {
			t.Fatal("node A does not serve the session of a user signed in through node B")
		}
		page := root.send(a, "GET", "/console/users", nil)
		if r := root.send(a, "POST", "/console/users/mia/delete", url.Values{"csrf": {csrfIn(t, page)}}); r.status != http.StatusSeeOther {
			t.Fatalf("remove mia through node A: %d %s", r.status, r.body)
		}
		if mia.signedInPage(b) {
			t.Error("node B serves the session of a user removed through node A")
		}

		// Failed sign-ins count on every node: ten wrong passwords, five
		// through each node, and the right one is refused through either,
		// from another address too (the limit per user name).
		addUser("max")
		knownAtB("max")
		for i := range 10 {
			n := []*testServer{a, b}[i%2]
			if got := signIn(newWebClient(t), n, "max", "wrong password "+randomHex(4)); got != http.StatusUnauthorized {
				t.Fatalf("wrong password %d: %d, want 401", i+1, got)
			}
		}
		for name, n := range map[string]*testServer{"A": a, "B": b} {
			if got := signIn(newWebClientFrom(t, "127.0.0.2"), n, "max", "correct horse battery"); got != http.StatusTooManyRequests {
				t.Errorf("the right password through node %s, from another address, after 10 failures through both: %d, want 429", name, got)
			}
		}
		// The limit per client address counts on every node too: the ten
		// failures came from 127.0.0.1, five through each node, so even
		// the tenant's secret key is refused from there through either
		// node, and accepted from another address.
		for name, n := range map[string]*testServer{"A": a, "B": b} {
			c := newWebClient(t)
			r := c.send(n, "GET", "/console/signin", nil)
			r = c.send(n, "POST", "/console/signin", url.Values{"name": {"Root"}, "secret_key": {ten.SecretKey}, "csrf": {csrfIn(t, r)}})
			if r.status != http.StatusTooManyRequests || !strings.Contains(string(r.body), "from your address") {
				t.Errorf("secret-key sign-in through node %s from the address of 10 failures: %d, want 429 naming the address\n%s", name, r.status, r.body)
			}
		}
		newWebClientFrom(t, "127.0.0.3").consoleSignIn(b, "Root", ten.SecretKey)

		// Sign-ins that succeed do not count: twelve from one address.
		for i := range 12 {
			newWebClientFrom(t, "127.0.0.4").consoleSignIn([]*testServer{a, b}[i%2], "Root", ten.SecretKey)
		}
		// Sixteen wrong passwords racing from one address through both
		// nodes: exactly ten are judged (401), the others refused (429);
		// the count and the record of an attempt are one step.
		var wg sync.WaitGroup
		var mu sync.Mutex
		codes := map[int]int{}
		for i := range 16 {
			c := newWebClientFrom(t, "127.0.0.5")
			n := []*testServer{a, b}[i%2]
			form := c.send(n, "GET", "/console/signin/user", nil)
			body := url.Values{"tenant": {ten.ID}, "name": {"nobody"}, "password": {"wrong " + randomHex(4)}, "csrf": {csrfIn(t, form)}}.Encode()
			req, err := http.NewRequest("POST", n.URL+"/console/signin/user", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range c.cookies {
				req.AddCookie(&http.Cookie{Name: k, Value: v})
			}
			wg.Go(func() {
				status := 0
				if resp, err := c.client.Do(req); err != nil {
					t.Errorf("racing sign-in: %v", err)
				} else {
					resp.Body.Close()
					status = resp.StatusCode
				}
				mu.Lock()
				codes[status]++
				mu.Unlock()
			})
		}
		wg.Wait()
		if codes[http.StatusUnauthorized] != 10 || codes[http.StatusTooManyRequests] != 6 {
			t.Errorf("16 racing wrong passwords from one address through two nodes answered %v; want 10 × 401 and 6 × 429", codes)
		}
	})

	t.Run("privacy center link", func(t *testing.T) {
		a.patchSettings(t, ten.SecretKey, map[string]any{
			"smtp": map[string]any{"host": smtp.Host, "port": smtp.Port, "username": smtp.Username, "password": smtp.Password,
				"from": "privacy@sessions.test", "region": "eu"},
		})
		mia := "mia-" + randomHex(4) + "@example.com"
		a.ingest(t, ten.WriteKey, "/v1/batch", mustJSON(t, map[string]any{"batch": []map[string]any{
			{"type": "identify", "userId": "mia-1", "traits": map[string]any{"email": mia}},
		}}))
		base := "/privacy/" + ten.ID
		br := newWebClient(t)
		// Node B learns of the SMTP settings through the change feed; the
		// link is asked for at node A.
		before := len(smtp.Messages())
		r := br.send(a, "GET", base, nil)
		r = br.send(a, "POST", base+"/signin", url.Values{"email": {mia}, "csrf": {csrfIn(t, r)}})
		if r.status != http.StatusOK {
			t.Fatalf("ask node A for a link: %d %s", r.status, r.body)
		}
		msgs := smtp.Wait(before+1, 30*time.Second)[before:]
		if len(msgs) != 1 {
			t.Fatalf("mails after asking node A for a link: %d, want 1", len(msgs))
		}
		link := linkRE.FindString(mailText(t, msgs[0]))
		u, err := url.Parse(link)
		if link == "" || err != nil || u.Query().Get("token") == "" {
			t.Fatalf("no sign-in link in the mail: %q", link)
		}
		token := u.Query().Get("token")

		// Through node B: the link's page, then its one click.
		r = br.send(b, "GET", base+"/enter?token="+url.QueryEscape(token), nil)
		if r.status != http.StatusOK {
			t.Fatalf("node B's page of a link node A issued: %d %s", r.status, r.body)
		}
		r = br.send(b, "POST", base+"/enter", url.Values{"token": {token}, "csrf": {csrfIn(t, r)}})
		if r.status != http.StatusSeeOther || br.cookies["custos_privacy"] == "" {
			t.Fatalf("sign in through node B with node A's link: %d, cookies %v; want 303 and a session", r.status, br.cookies)
		}
		if r := br.send(a, "GET", base+"/me", nil); r.status != http.StatusOK || !strings.Contains(string(r.body), mia) {
			t.Errorf("node A's page of the subject signed in through node B: %d; want 200 showing %s", r.status, mia)
		}

		// The link again, through node A: used up.
		again := newWebClient(t)
		r = again.send(a, "GET", base+"/enter?token="+url.QueryEscape(token), nil)
		if r.status != http.StatusForbidden {
			t.Errorf("node A's page of a link used through node B: %d, want 403", r.status)
		}
		r = again.send(a, "GET", base, nil)
		r = again.send(a, "POST", base+"/enter", url.Values{"token": {token}, "csrf": {csrfIn(t, r)}})
		if r.status != http.StatusForbidden || again.cookies["custos_privacy"] != "" {
			t.Errorf("sign in through node A with a link used through node B: %d, cookies %v; want 403 and no session", r.status, again.cookies)
		}

		// Signed out through node A, the session is refused by node B.
		page := br.send(b, "GET", base+"/me", nil)
		stale := br.cookies["custos_privacy"]
		if r := br.send(a, "POST", base+"/signout", url.Values{"csrf": {csrfIn(t, page)}}); r.status != http.StatusSeeOther {
			t.Fatalf("sign out through node A: %d %s", r.status, r.body)
		}
		br.cookies["custos_privacy"] = stale
		if r := br.send(b, "GET", base+"/me", nil); r.status != http.StatusSeeOther {
			t.Errorf("node B's page for a session signed out through node A: %d, want 303 to sign in", r.status)
		}
	})
}
