package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos-dev/custos/internal/mail/mailtest"
	"github.com/custos-dev/custos/internal/testenv"
	"github.com/custos-dev/custos/internal/webhook"
)

// hookReceiver is a security contact URL that answers 503 to its first
// POST, then 200, keeping what it accepted.
type hookReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	failed bool
	got    []*http.Request
	bodies [][]byte
}

func newHookReceiver(t *testing.T) *hookReceiver {
	h := &hookReceiver{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if !h.failed {
			h.failed = true
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		h.got, h.bodies = append(h.got, r), append(h.bodies, b)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookReceiver) wait(t *testing.T, n int) ([]*http.Request, [][]byte) {
	t.Helper()
	var got []*http.Request
	var bodies [][]byte
	testenv.Poll(t, 20*time.Second, fmt.Sprintf("webhook receiver got %d deliveries", n), func() bool {
		h.mu.Lock()
		got, bodies = slices.Clone(h.got), slices.Clone(h.bodies)
		h.mu.Unlock()
		return len(got) >= n
	}, func() string { return fmt.Sprintf("got %d", len(got)) })
	return got, bodies
}

// smtpArgs are the serve flags that send through a mailtest server.
func smtpArgs(t *testing.T, s *mailtest.Server) []string {
	ca := filepath.Join(t.TempDir(), "smtp-ca.pem")
	if err := os.WriteFile(ca, s.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	pw := filepath.Join(t.TempDir(), "smtp-password")
	if err := os.WriteFile(pw, []byte(s.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"--smtp-host", s.Host, "--smtp-port", fmt.Sprint(s.Port), "--smtp-user", s.Username,
		"--smtp-password-file", pw, "--smtp-from", "security@processor.example", "--smtp-ca-file", ca}
}

// TestIncidentNotifiesTenants opens an incident over two of three
// tenants through the operator API and checks each is told at once by a
// signed webhook and an e-mail (each retried after a failing first
// attempt), that every attempt shows to the operator, and the tenant API:
// the 72-hour clock, acknowledgement, affected subjects, the draft notice
// and isolation.
func TestIncidentNotifiesTenants(t *testing.T) {
	t.Parallel()
	smtp := mailtest.Start(t)
	smtp.FailNext(1)
	cfg := newServerConfig(t)
	cfg.extraArgs = smtpArgs(t, smtp)
	srv := startServer(t, cfg)
	op := []string{"Authorization", "Bearer " + cfg.token}
	a, b, c := srv.createTenant(t, "inc-a"), srv.createTenant(t, "inc-b"), srv.createTenant(t, "inc-c")
	hookA, hookB := newHookReceiver(t), newHookReceiver(t)
	srv.patchSettings(t, a.SecretKey, map[string]any{"security_contact_url": map[string]string{"url": hookA.URL, "region": "eu"},
		"security_contact_email": "security@a.example", "controller_name": "A Shop Ltd", "dpo_contact": "dpo@a.example"})
	srv.patchSettings(t, b.SecretKey, map[string]any{"security_contact_url": map[string]string{"url": hookB.URL, "region": "eu"},
		"security_contact_email": "security@b.example"})
	srv.patchSettings(t, c.SecretKey, map[string]any{"security_contact_email": "security@c.example"})
	srv.ingest(t, a.WriteKey, "/v1/batch", []byte(`{"batch": [
		{"type": "identify", "userId": "ann-42", "traits": {"email": "ann@example.com"}, "timestamp": "2026-01-10T10:00:00Z"},
		{"type": "track", "userId": "ann-42", "event": "Paid", "timestamp": "2026-01-11T10:00:00Z"},
		{"type": "track", "userId": "bob-7", "event": "Paid", "timestamp": "2026-01-12T10:00:00Z"}]}`))

	// Bad input is named.
	r := srv.do(t, "POST", "/admin/v1/incidents", []byte(`{"detected_at": "2026-01-20T08:00:00Z", "scope": {"all_tenants": true}}`), op...)
	if r.status != http.StatusBadRequest || !strings.Contains(r.errorMessage(), "nature") {
		t.Errorf("incident without nature: %d %s; want 400 naming nature", r.status, r.body)
	}

	open := map[string]any{"detected_at": "2026-01-20T08:00:00Z", "nature": "A database replica was exposed", "data_categories": []string{"contact.email", "behaviour.events"},
		"encrypted": true, "keys_safe": true, "likely_consequences": "Low: values are ciphertext", "measures_taken": "Replica deleted",
		"contact_point": "dpo@processor.example", "scope": map[string]any{"tenants": []string{a.ID, b.ID}}}
	r = srv.do(t, "POST", "/admin/v1/incidents", mustJSON(t, open), op...)
	if r.status != http.StatusCreated {
		t.Fatalf("POST /admin/v1/incidents: %d %s", r.status, r.body)
	}
	id, _ := decodeObject(t, "incident", r.body)["id"].(string)

	for _, x := range []struct {
		name, secret string
		hook         *hookReceiver
	}{{"A", a.Callback, hookA}, {"B", b.Callback, hookB}} {
		reqs, bodies := x.hook.wait(t, 1)
		if err := webhook.Verify([]byte(x.secret), bodies[0], reqs[0].Header.Get(webhook.HeaderSignature), time.Now(), 0); err != nil {
			t.Errorf("tenant %s: webhook signature with its callback signing secret: %v", x.name, err)
		}
		if !strings.Contains(string(bodies[0]), id) || reqs[0].Header.Get(webhook.HeaderKind) != "incident.opened" {
			t.Errorf("tenant %s webhook: kind %q, body %s; want incident.opened of %s", x.name, reqs[0].Header.Get(webhook.HeaderKind), bodies[0], id)
		}
	}
	msgs := smtp.Wait(2, 20*time.Second)
	var to []string
	for _, m := range msgs {
		to = append(to, m.To...)
	}
	slices.Sort(to)
	if !slices.Equal(to, []string{"security@a.example", "security@b.example"}) {
		t.Errorf("e-mails went to %v, want the security contacts of A and B only", to)
	}

	// The operator sees every attempt: a 503 then a 200 for each webhook,
	// three e-mail attempts in all.
	var view struct {
		Notifications []struct {
			Tenant   string `json:"tenant_id"`
			Messages []struct {
				Channels []struct {
					Channel  string `json:"channel"`
					Status   string `json:"status"`
					Attempts []struct {
						OK     bool `json:"ok"`
						Status int  `json:"status"`
					} `json:"attempts"`
				} `json:"channels"`
			} `json:"messages"`
		} `json:"notifications"`
	}
	testenv.Poll(t, 20*time.Second, "every notification channel delivered, with every attempt listed", func() bool {
		r = srv.do(t, "GET", "/admin/v1/incidents/"+id, nil, op...)
		view.Notifications = nil
		if err := json.Unmarshal(r.body, &view); err != nil {
			t.Fatalf("GET /admin/v1/incidents/%s: %v in %s", id, err, r.body)
		}
		delivered, mailAttempts, hookOK := 0, 0, 0
		for _, n := range view.Notifications {
			for _, ch := range n.Messages[0].Channels {
				if ch.Status == "delivered" {
					delivered++
				}
				switch ch.Channel {
				case "email":
					mailAttempts += len(ch.Attempts)
				case "webhook":
					if len(ch.Attempts) == 2 && ch.Attempts[0].Status == 503 && ch.Attempts[1].OK {
						hookOK++
					}
				}
			}
		}
		return len(view.Notifications) == 2 && delivered == 6 && mailAttempts == 3 && hookOK == 2
	}, func() string {
		return fmt.Sprintf("GET /admin/v1/incidents/%s = %s; want 2 tenants, all 6 channels delivered, webhooks 503 then 200, 3 e-mail attempts", id, r.body)
	})

	// The tenant API.
	auth := func(k string) []string { return []string{"Authorization", "Bearer " + k} }
	r = srv.do(t, "GET", "/api/v1/incidents/"+id, nil, auth(a.SecretKey)...)
	got := decodeObject(t, "tenant incident", r.body)
	notified, _ := time.Parse(time.RFC3339Nano, got["notified_at"].(string))
	dl, _ := got["authority_deadline"].(map[string]any)
	due, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(dl["deadline_at"]))
	if r.status != 200 || got["nature"] != "A database replica was exposed" || got["approx_subjects"] != 2.0 || got["approx_records"] != 3.0 ||
		!due.Equal(notified.Add(72*time.Hour)) || dl["overdue"] != false || dl["hours_remaining"].(float64) < 71.9 {
		t.Errorf("GET /api/v1/incidents/%s = %d %s; want the Art. 33(3) fields, 2 subjects, 3 records, due 72h after notified_at, not overdue", id, r.status, r.body)
	}
	if strings.Contains(string(r.body), b.ID) {
		t.Errorf("tenant A's view names tenant B: %s", r.body)
	}
	if r = srv.do(t, "POST", "/api/v1/incidents/"+id+"/acknowledge", nil, auth(a.SecretKey)...); r.status != 200 || decodeObject(t, "ack", r.body)["acknowledged_at"] == nil {
		t.Errorf("acknowledge: %d %s", r.status, r.body)
	}
	r = srv.do(t, "GET", "/api/v1/incidents/"+id+"/affected-subjects?limit=1", nil, auth(a.SecretKey)...)
	var page struct {
		Subjects []struct {
			Identifiers map[string][]string `json:"identifiers"`
		} `json:"subjects"`
		NextCursor string `json:"next_cursor"`
	}
	json.Unmarshal(r.body, &page)
	if r.status != 200 || len(page.Subjects) != 1 || page.NextCursor == "" {
		t.Fatalf("affected-subjects?limit=1 = %d %s; want one subject and a cursor", r.status, r.body)
	}
	users := page.Subjects[0].Identifiers["user_id"]
	r = srv.do(t, "GET", "/api/v1/incidents/"+id+"/affected-subjects?limit=1&cursor="+page.NextCursor, nil, auth(a.SecretKey)...)
	page.Subjects, page.NextCursor = nil, ""
	json.Unmarshal(r.body, &page)
	for _, s := range page.Subjects {
		users = append(users, s.Identifiers["user_id"]...)
	}
	slices.Sort(users)
	if !slices.Equal(users, []string{"ann-42", "bob-7"}) {
		t.Errorf("affected subjects over two pages: user ids %v, want [ann-42 bob-7]", users)
	}
	r = srv.do(t, "GET", "/api/v1/incidents/"+id+"/notice", nil, auth(a.SecretKey)...)
	notice := decodeObject(t, "notice", r.body)
	if notice["art34_3a_exception_likely"] != true || !strings.Contains(notice["text"].(string), "A Shop Ltd") || !strings.Contains(notice["text"].(string), "dpo@a.example") {
		t.Errorf("notice = %s; want the exception likely and the controller's name and contact", r.body)
	}
	r = srv.do(t, "GET", "/api/v1/audit?limit=1000", nil, auth(a.SecretKey)...)
	for _, action := range []string{"incident.notify", "incident.delivery", "incident.acknowledge", "incident.affected_subjects.read"} {
		if !strings.Contains(string(r.body), `"`+action+`"`) {
			t.Errorf("tenant A's audit chain lacks %s", action)
		}
	}
	if strings.Contains(string(r.body), "ann-42") || strings.Contains(string(r.body), "ann@example.com") {
		t.Errorf("tenant A's audit chain holds an identifier")
	}
	r = srv.do(t, "GET", "/admin/v1/audit", nil, op...)
	if !strings.Contains(string(r.body), `"incident.open"`) {
		t.Errorf("operator chain lacks incident.open: %s", r.body)
	}

	// Isolation: tenant C is not in scope and sees nothing; a write key is refused.
	for _, p := range []struct{ method, path string }{
		{"GET", "/api/v1/incidents/" + id}, {"POST", "/api/v1/incidents/" + id + "/acknowledge"},
		{"GET", "/api/v1/incidents/" + id + "/affected-subjects"}, {"GET", "/api/v1/incidents/" + id + "/notice"},
	} {
		if r := srv.do(t, p.method, p.path, nil, auth(c.SecretKey)...); r.status != http.StatusNotFound {
			t.Errorf("%s %s with tenant C's key: %d %s, want 404", p.method, p.path, r.status, r.body)
		}
		if r := srv.do(t, p.method, p.path, nil, auth(a.WriteKey)...); r.status != http.StatusForbidden {
			t.Errorf("%s %s with a write key: %d, want 403", p.method, p.path, r.status)
		}
	}
	if r := srv.do(t, "GET", "/api/v1/incidents", nil, auth(c.SecretKey)...); !strings.Contains(string(r.body), `"incidents":[]`) {
		t.Errorf("tenant C lists %s, want no incidents", r.body)
	}
	if r := srv.do(t, "GET", "/api/v1/incidents", nil, auth(b.SecretKey)...); !strings.Contains(string(r.body), id) {
		t.Errorf("tenant B lists %s, want %s", r.body, id)
	}
	if r := srv.do(t, "GET", "/admin/v1/incidents", nil, auth(a.SecretKey)...); r.status != http.StatusUnauthorized {
		t.Errorf("operator API with a tenant key: %d, want 401", r.status)
	}
}

// TestIncidentCLI drives `custos incident open|update|close|list` through run().
func TestIncidentCLI(t *testing.T) {
	t.Parallel()
	srv := startServer(t, newServerConfig(t))
	token := srv.cfg.token
	a := srv.createTenant(t, "cli-a")

	if _, err := cli(t, token, "incident", "open", "--server", srv.URL, "--nature", "x"); err == nil || !strings.Contains(err.Error(), "--detected-at") {
		t.Errorf("incident open without --detected-at: err = %v, want it named", err)
	}
	if _, err := cli(t, token, "incident", "open", "--server", srv.URL, "--detected-at", "2026-01-20T08:00:00Z", "--nature", "n",
		"--data-categories", "contact.email", "--consequences", "c", "--measures", "m", "--contact", "dpo@x.example"); err == nil || !strings.Contains(err.Error(), "--all-tenants") {
		t.Errorf("incident open without a scope: err = %v, want --all-tenants or --tenant named", err)
	}
	if _, err := cli(t, token, "incident", "open", "--server", srv.URL, "--detected-at", "yesterday", "--nature", "n", "--all-tenants",
		"--data-categories", "contact.email", "--consequences", "c", "--measures", "m", "--contact", "dpo@x.example"); err == nil || !strings.Contains(err.Error(), "RFC 3339") {
		t.Errorf("incident open --detected-at yesterday: err = %v, want RFC 3339 named", err)
	}

	out, err := cli(t, token, "incident", "open", "--server", srv.URL, "--json", "--detected-at", "2026-01-20T08:00:00Z",
		"--nature", "Laptop stolen", "--data-categories", "contact.email,behaviour.events", "--encrypted", "--keys-safe",
		"--consequences", "unlikely", "--measures", "wiped", "--contact", "dpo@processor.example", "--tenant", a.ID)
	if err != nil {
		t.Fatalf("incident open: %v", err)
	}
	var opened struct {
		ID            string `json:"id"`
		Status        string `json:"status"`
		Encrypted     bool   `json:"encrypted"`
		Notifications []struct {
			Tenant   string   `json:"tenant_id"`
			Warnings []string `json:"warnings"`
		} `json:"notifications"`
	}
	if err := json.Unmarshal([]byte(out), &opened); err != nil {
		t.Fatalf("incident open --json printed %q: %v", out, err)
	}
	if opened.ID == "" || opened.Status != "open" || !opened.Encrypted || len(opened.Notifications) != 1 || opened.Notifications[0].Tenant != a.ID ||
		len(opened.Notifications[0].Warnings) != 1 || !strings.Contains(opened.Notifications[0].Warnings[0], "no contact configured") {
		t.Errorf("incident open --json = %s; want an open, encrypted incident notifying tenant %s, with \"no contact configured\"", out, a.ID)
	}

	out, err = cli(t, token, "incident", "list", "--server", srv.URL)
	if err != nil || !strings.Contains(out, opened.ID) || !strings.Contains(out, "Laptop stolen") || !strings.Contains(out, "STATUS") {
		t.Errorf("incident list = %q, %v; want a table with %s", out, err, opened.ID)
	}
	out, err = cli(t, token, "incident", "update", opened.ID, "--server", srv.URL, "--message", "no data left the laptop")
	if err != nil || !strings.Contains(out, "updated/in_app:delivered") {
		t.Errorf("incident update = %q, %v; want the update delivered in-app", out, err)
	}
	if _, err := cli(t, token, "incident", "close", opened.ID, "--server", srv.URL); err == nil || !strings.Contains(err.Error(), "--note") {
		t.Errorf("incident close without --note: err = %v, want --note named", err)
	}
	if _, err := cli(t, token, "incident", "close", opened.ID, "--server", srv.URL, "--note", "done"); err != nil {
		t.Errorf("incident close: %v", err)
	}
	out, err = cli(t, token, "incident", "list", "--server", srv.URL, "--json")
	var listed []struct {
		ID      string `json:"id"`
		Status  string `json:"status"`
		Updates int    `json:"update_count"`
	}
	if err != nil || json.Unmarshal([]byte(out), &listed) != nil || len(listed) != 1 || listed[0].Status != "closed" || listed[0].Updates != 1 {
		t.Errorf("incident list --json = %q, %v; want one closed incident with one update", out, err)
	}
	if _, err := cli(t, token, "incident", "update", "--server", srv.URL, "--message", "x"); err == nil || !strings.Contains(err.Error(), "INCIDENT_ID") {
		t.Errorf("incident update without an id: err = %v, want usage naming INCIDENT_ID", err)
	}
}
