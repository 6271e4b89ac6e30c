package main

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/mail/mailtest"
	"github.com/custos-dev/custos/internal/testenv"
	"github.com/custos-dev/custos/internal/webhook"
)

// campaignOut is a campaign as the API shows it.
type campaignOut struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Channel  string `json:"channel"`
	Error    string `json:"error"`
	Progress struct {
		Audience int            `json:"audience"`
		Sent     int            `json:"sent"`
		Failed   int            `json:"failed"`
		Excluded map[string]int `json:"excluded"`
	} `json:"progress"`
}

type previewOut struct {
	Audience int            `json:"audience"`
	Eligible int            `json:"eligible"`
	Excluded map[string]int `json:"excluded"`
	Sample   []struct {
		SubjectID string `json:"subject_id"`
		To        string `json:"to"`
		Subject   string `json:"subject"`
		Body      string `json:"body"`
	} `json:"sample"`
}

func (s *testServer) createCampaign(t *testing.T, secretKey string, body any) campaignOut {
	t.Helper()
	r := s.do(t, "POST", "/api/v1/campaigns", mustJSON(t, body), "Authorization", "Bearer "+secretKey)
	if r.status != http.StatusCreated {
		t.Fatalf("POST /api/v1/campaigns: status %d, want 201; body %s", r.status, r.body)
	}
	var c campaignOut
	json.Unmarshal(r.body, &c)
	return c
}

func (s *testServer) preview(t *testing.T, secretKey, id string) previewOut {
	t.Helper()
	r := s.do(t, "POST", "/api/v1/campaigns/"+id+"/preview", nil, "Authorization", "Bearer "+secretKey)
	if r.status != http.StatusOK {
		t.Fatalf("preview %s: status %d, want 200; body %s", id, r.status, r.body)
	}
	var p previewOut
	json.Unmarshal(r.body, &p)
	return p
}

// sendCampaign sends a campaign and polls it until it is no longer sending.
func (s *testServer) sendCampaign(t *testing.T, secretKey, id string) campaignOut {
	t.Helper()
	r := s.do(t, "POST", "/api/v1/campaigns/"+id+"/send", nil, "Authorization", "Bearer "+secretKey)
	if r.status != http.StatusAccepted {
		t.Fatalf("send %s: status %d, want 202; body %s", id, r.status, r.body)
	}
	var c campaignOut
	testenv.Poll(t, 20*time.Second, "campaign "+id+" done sending", func() bool {
		r := s.do(t, "GET", "/api/v1/campaigns/"+id, nil, "Authorization", "Bearer "+secretKey)
		c = campaignOut{}
		if err := json.Unmarshal(r.body, &c); err != nil || r.status != 200 {
			t.Fatalf("GET campaign %s: %d %s", id, r.status, r.body)
		}
		return c.Status != "sending"
	}, func() string { return fmt.Sprintf("%+v", c) })
	return c
}

// TestCampaignEmail: a campaign goes to the one subject who consented,
// through a real SMTP server, HTML-escaped and with the RFC 8058 headers;
// the link's GET withdraws nothing, its one-click POST withdraws at once,
// and the next campaign excludes the subject. The send is in the access
// export and, pseudonymously, in the audit log.
func TestCampaignEmail(t *testing.T) {
	t.Parallel()
	smtp := mailtest.Start(t)
	cfg := newServerConfig(t)
	caFile := filepath.Join(t.TempDir(), "smtp-ca.pem")
	if err := os.WriteFile(caFile, smtp.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.extraArgs = append(cfg.extraArgs, "--smtp-ca-file", caFile)
	srv := startServer(t, cfg)
	tn := srv.createTenant(t, "mailer")
	srv.patchSettings(t, tn.SecretKey, map[string]any{"smtp": map[string]any{
		"host": smtp.Host, "port": smtp.Port, "username": smtp.Username, "password": smtp.Password,
		"from": "news@acme.test", "region": "eu"}})

	ann, bob := "ann-"+randomHex(4)+"@example.com", "bob-"+randomHex(4)+"@example.com"
	srv.ingest(t, tn.WriteKey, "/v1/batch", mustJSON(t, map[string]any{"batch": []map[string]any{
		{"type": "identify", "userId": "u-ann", "traits": map[string]any{"email": ann, "first_name": "Ann & <Co>", "plan": "pro"}},
		{"type": "identify", "userId": "u-bob", "traits": map[string]any{"email": bob, "first_name": "Bob", "plan": "pro"}},
	}}))
	srv.postConsent(t, tn.SecretKey, map[string]any{"identity": map[string]string{"type": "user_id", "value": "u-ann"},
		"purpose": "marketing", "channel": "email", "granted": true})
	annSubject := srv.findProfile(t, tn.SecretKey, "user_id", "u-ann").SubjectID

	body := map[string]any{"name": "spring", "purpose": "marketing", "channel": "email",
		"audience": map[string]any{"traits": []map[string]any{{"key": "plan", "op": "eq", "value": "pro"}}},
		"message":  map[string]any{"subject": "Hello {{.traits.first_name}}", "body": "<p>Hi {{.traits.first_name}}!</p>"}}
	c := srv.createCampaign(t, tn.SecretKey, body)
	pv := srv.preview(t, tn.SecretKey, c.ID)
	if pv.Audience != 2 || pv.Eligible != 1 || pv.Excluded["no_consent"] != 1 || len(pv.Sample) != 1 ||
		!strings.Contains(pv.Sample[0].Body, "Hi Ann &amp; &lt;Co&gt;!") || pv.Sample[0].To != ann {
		t.Errorf("preview = %+v; want audience 2, eligible 1 (ann), no_consent 1, ann's message escaped", pv)
	}
	done := srv.sendCampaign(t, tn.SecretKey, c.ID)
	if done.Status != "completed" || done.Progress.Sent != 1 || done.Progress.Excluded["no_consent"] != 1 {
		t.Fatalf("campaign = %+v; want completed, 1 sent, 1 no_consent", done)
	}
	msgs := smtp.Wait(1, 10*time.Second)
	if len(msgs) != 1 || len(msgs[0].To) != 1 || msgs[0].To[0] != ann {
		t.Fatalf("mail server got %d messages (%+v); want one, to ann", len(msgs), msgs)
	}
	h := msgs[0].Header()
	link := strings.TrimSuffix(strings.TrimPrefix(h.Get("List-Unsubscribe"), "<"), ">")
	if !strings.HasPrefix(link, srv.URL+"/u/") || h.Get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" {
		t.Fatalf("headers List-Unsubscribe %q, List-Unsubscribe-Post %q; want <%s/u/…> and List-Unsubscribe=One-Click", h.Get("List-Unsubscribe"), h.Get("List-Unsubscribe-Post"), srv.URL)
	}
	if subj, _ := new(mime.WordDecoder).DecodeHeader(h.Get("Subject")); subj != "Hello Ann & <Co>" {
		t.Errorf("Subject = %q, want the trait in plain text", subj)
	}
	raw := string(msgs[0].Data)
	if !strings.Contains(raw, "Ann &amp; &lt;Co&gt;") || strings.Contains(raw, "<p>Hi Ann & <Co>") {
		t.Errorf("the HTML part does not escape the trait:\n%s", raw)
	}
	token := strings.TrimPrefix(link, srv.URL+"/u/")
	if strings.Contains(token, ann) || strings.Contains(token, annSubject) {
		t.Errorf("the token %q names the person", token)
	}

	// GET shows a page with a button and withdraws nothing (mail scanners fetch links).
	page := srv.do(t, "GET", "/u/"+token, nil)
	if page.status != 200 || !strings.Contains(string(page.body), `<form method="post">`) {
		t.Errorf("GET the link: %d %s; want a page with a POST form", page.status, page.body)
	}
	if st := srv.consents(t, tn.SecretKey, annSubject).status("marketing", "email"); st != "granted" {
		t.Errorf("after GET the link, consent is %s; want still granted", st)
	}
	// A node of another region serves none of this tenant's links: it
	// answers 421 and changes nothing.
	srv.stop(t)
	usCfg := cfg
	usCfg.extraArgs = append(slices.Clone(cfg.extraArgs), "--region", "us")
	us := startServer(t, usCfg)
	for _, m := range []string{"GET", "POST"} {
		if r := us.do(t, m, "/u/"+token, []byte("List-Unsubscribe=One-Click"), "Content-Type", "application/x-www-form-urlencoded"); r.status != 421 || !strings.Contains(string(r.body), "region eu") {
			t.Errorf("%s the link on a node of region us: %d %s; want 421 naming region eu", m, r.status, r.body)
		}
	}
	us.stop(t)
	srv = startServer(t, cfg)
	if st := srv.consents(t, tn.SecretKey, annSubject).status("marketing", "email"); st != "granted" {
		t.Errorf("after the link was sent to the wrong region, consent is %s; want still granted", st)
	}

	// One click (RFC 8058): POST with List-Unsubscribe=One-Click, no login.
	r := srv.do(t, "POST", "/u/"+token, []byte("List-Unsubscribe=One-Click"), "Content-Type", "application/x-www-form-urlencoded")
	if r.status != 200 {
		t.Fatalf("POST the link: %d %s", r.status, r.body)
	}
	cs := srv.consents(t, tn.SecretKey, annSubject)
	if st := cs.status("marketing", "email"); st != "withdrawn" || cs.History[len(cs.History)-1].Source != "unsubscribe_link" {
		t.Errorf("after the one-click POST: state %s, history %+v; want withdrawn by unsubscribe_link", st, cs.History)
	}
	// A forged or altered token opens nothing.
	// The altered token differs from the real one in a character that
	// carries data (not the last, whose low bits may be padding).
	i := len(token) / 2
	flip := "A"
	if token[i] == 'A' {
		flip = "B"
	}
	altered := token[:i] + flip + token[i+1:]
	for _, bad := range []string{"forged", altered, strings.Repeat("A", 80)} {
		if r := srv.do(t, "POST", "/u/"+bad, nil); r.status != 404 {
			t.Errorf("POST /u/%s = %d, want 404", bad, r.status)
		}
	}

	// The next campaign excludes her.
	c2 := srv.createCampaign(t, tn.SecretKey, body)
	if pv := srv.preview(t, tn.SecretKey, c2.ID); pv.Eligible != 0 || pv.Excluded["withdrawn"] != 1 {
		t.Errorf("preview after unsubscribing = %+v; want 0 eligible, 1 withdrawn", pv)
	}
	if done := srv.sendCampaign(t, tn.SecretKey, c2.ID); done.Progress.Sent != 0 || done.Progress.Excluded["withdrawn"] != 1 {
		t.Errorf("second campaign = %+v; want nothing sent, 1 withdrawn", done)
	}
	// E-mail goes out inside the run, before its send record is final:
	// the campaign being done is the event after which nothing more is sent.
	if n := len(smtp.Messages()); n != 1 {
		t.Errorf("mail server has %d messages, want still 1", n)
	}
	// Sending a completed campaign again is refused.
	if r := srv.do(t, "POST", "/api/v1/campaigns/"+c.ID+"/send", nil, "Authorization", "Bearer "+tn.SecretKey); r.status != 409 {
		t.Errorf("sending a completed campaign again: %d, want 409", r.status)
	}

	// The access export shows the message; the audit names only the pseudonym.
	req := srv.do(t, "POST", "/api/v1/requests", []byte(`{"type":"access","identity":{"type":"user_id","value":"u-ann"}}`), "Authorization", "Bearer "+tn.SecretKey)
	var acc struct{ ID string }
	json.Unmarshal(req.body, &acc)
	res := srv.do(t, "GET", "/api/v1/requests/"+acc.ID+"/result", nil, "Authorization", "Bearer "+tn.SecretKey)
	var export struct {
		Messages []custos.SendRecord `json:"messages_sent"`
	}
	if err := json.Unmarshal(res.body, &export); err != nil || len(export.Messages) != 1 || export.Messages[0].Campaign != c.ID ||
		export.Messages[0].Channel != "email" || export.Messages[0].Status != "sent" {
		t.Errorf("access export messages_sent = %+v (%v); want the one e-mail of %s", export.Messages, err, c.ID)
	}
	au := srv.do(t, "GET", "/api/v1/audit?limit=1000", nil, "Authorization", "Bearer "+tn.SecretKey)
	if !strings.Contains(string(au.body), `"campaign.message.sent"`) || !strings.Contains(string(au.body), `"consent.withdraw"`) {
		t.Errorf("audit lacks campaign.message.sent or consent.withdraw: %s", au.body)
	}
	for _, personal := range []string{ann, bob, "u-ann", "Ann &", annSubject} {
		if strings.Contains(string(au.body), personal) {
			t.Errorf("the audit log holds %q", personal)
		}
	}
	srv.stop(t)
	for _, personal := range []string{ann, "Ann & <Co>", "Hello Ann"} {
		assertNotInDir(t, cfg.dir, personal)
	}
}

// deliveryReceiver is a tenant's delivery webhook that checks signatures.
type deliveryReceiver struct {
	srv    *httptest.Server
	secret string
	mu     sync.Mutex
	bodies []map[string]any
	bad    int
}

func newDeliveryReceiver(t *testing.T) *deliveryReceiver {
	d := &deliveryReceiver{}
	d.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		d.mu.Lock()
		defer d.mu.Unlock()
		if err := webhook.Verify([]byte(d.secret), b, r.Header.Get(webhook.HeaderSignature), time.Now(), time.Minute); err != nil {
			d.bad++
			w.WriteHeader(401)
			return
		}
		var m map[string]any
		json.Unmarshal(b, &m)
		d.bodies = append(d.bodies, m)
	}))
	t.Cleanup(d.srv.Close)
	return d
}

func (d *deliveryReceiver) wait(t *testing.T, n int) []map[string]any {
	t.Helper()
	var got []map[string]any
	testenv.Poll(t, 10*time.Second, fmt.Sprintf("%d campaign messages at the delivery webhook", n), func() bool {
		d.mu.Lock()
		got = append([]map[string]any(nil), d.bodies...)
		d.mu.Unlock()
		return len(got) >= n
	}, func() string { return fmt.Sprintf("got %d", len(got)) })
	return got
}

// TestCampaignWebhookAndIsolation: a webhook campaign is delivered signed
// with the tenant's delivery secret; a destination outside the region is
// refused while transfers are forbidden; bad input names the field; and
// another tenant's key sees none of it.
func TestCampaignWebhookAndIsolation(t *testing.T) {
	t.Parallel()
	srv := startServer(t, newServerConfig(t))
	a, b := srv.createTenant(t, "hook-a"), srv.createTenant(t, "hook-b")
	if !strings.HasPrefix(a.Delivery, "dw_") {
		t.Fatalf("tenant creation shows delivery_signing_secret %q; want dw_…", a.Delivery)
	}
	recv := newDeliveryReceiver(t)
	recv.secret = a.Delivery
	srv.ingest(t, a.WriteKey, "/v1/batch", mustJSON(t, map[string]any{"batch": []map[string]any{
		{"type": "identify", "userId": "w-1", "traits": map[string]any{"first_name": `Zoë "quoted"`}},
		{"type": "identify", "userId": "w-2", "traits": map[string]any{"first_name": "Max"}},
		{"type": "track", "userId": "w-1", "event": "Order Completed"},
	}}))
	srv.postConsent(t, a.SecretKey, map[string]any{"identity": map[string]string{"type": "user_id", "value": "w-1"},
		"purpose": "marketing", "channel": "", "granted": true})
	body := map[string]any{"name": "buyers", "purpose": "marketing", "channel": "webhook",
		"audience": map[string]any{"events": []map[string]any{{"name": "Order Completed", "within_days": 30}}},
		"message":  map[string]any{"subject": "For {{.traits.first_name}}", "body": "Thanks {{.traits.first_name}}"}}
	c := srv.createCampaign(t, a.SecretKey, body)
	auth := func(k string) []string { return []string{"Authorization", "Bearer " + k} }

	// Not configured, then outside the region: refused, naming why.
	if r := srv.do(t, "POST", "/api/v1/campaigns/"+c.ID+"/send", nil, auth(a.SecretKey)...); r.status != 409 || !strings.Contains(r.errorMessage(), "delivery_webhook") {
		t.Errorf("send without a delivery webhook: %d %s; want 409 naming delivery_webhook", r.status, r.body)
	}
	// Setting a destination outside the region is refused at once; one set
	// while transfers were allowed is refused when sending.
	if r := srv.do(t, "PATCH", "/api/v1/settings", mustJSON(t, map[string]any{"delivery_webhook": map[string]any{"url": recv.srv.URL, "region": "us"}}), auth(a.SecretKey)...); r.status != 403 {
		t.Errorf("set a webhook in region us: %d %s; want 403", r.status, r.body)
	}
	srv.patchSettings(t, a.SecretKey, map[string]any{"allow_transfers_outside_region": true, "delivery_webhook": map[string]any{"url": recv.srv.URL, "region": "us"}})
	srv.patchSettings(t, a.SecretKey, map[string]any{"allow_transfers_outside_region": false})
	if r := srv.do(t, "POST", "/api/v1/campaigns/"+c.ID+"/send", nil, auth(a.SecretKey)...); r.status != 403 || !strings.Contains(r.errorMessage(), "transfers") {
		t.Errorf("send to a webhook in region us: %d %s; want 403 naming the transfer rule", r.status, r.body)
	}
	srv.patchSettings(t, a.SecretKey, map[string]any{"delivery_webhook": map[string]any{"url": recv.srv.URL, "region": "eu"}})

	// Tenant B sees none of A's campaign, on every endpoint.
	for _, ep := range []struct{ method, path string }{
		{"GET", "/api/v1/campaigns/" + c.ID}, {"POST", "/api/v1/campaigns/" + c.ID + "/preview"}, {"POST", "/api/v1/campaigns/" + c.ID + "/send"},
	} {
		if r := srv.do(t, ep.method, ep.path, nil, auth(b.SecretKey)...); r.status != 404 {
			t.Errorf("%s %s with tenant B's key: %d, want 404", ep.method, ep.path, r.status)
		}
		if r := srv.do(t, ep.method, ep.path, nil, auth(a.WriteKey)...); r.status != 403 {
			t.Errorf("%s %s with the write key: %d, want 403", ep.method, ep.path, r.status)
		}
	}
	if r := srv.do(t, "GET", "/api/v1/campaigns", nil, auth(b.SecretKey)...); r.status != 200 || strings.Contains(string(r.body), c.ID) {
		t.Errorf("tenant B's list: %d %s; want none of A's", r.status, r.body)
	}
	if r := srv.do(t, "GET", "/api/v1/campaigns", nil, auth(a.SecretKey)...); !strings.Contains(string(r.body), c.ID) {
		t.Errorf("tenant A's list lacks its campaign: %s", r.body)
	}

	done := srv.sendCampaign(t, a.SecretKey, c.ID)
	if done.Progress.Audience != 1 || done.Progress.Sent != 1 {
		t.Fatalf("campaign = %+v; want audience 1 (w-1 bought), 1 sent", done)
	}
	got := recv.wait(t, 1)
	if len(got) != 1 || got[0]["body"] != `Thanks Zoë "quoted"` || got[0]["campaign_id"] != c.ID || recv.bad != 0 {
		t.Errorf("receiver got %v (%d refused); want one signed message with the trait as a JSON string", got, recv.bad)
	}
	if u, _ := got[0]["unsubscribe_url"].(string); !strings.HasPrefix(u, srv.URL+"/u/") {
		t.Errorf("unsubscribe_url = %q", u)
	}
	// A's unsubscribe token is A's: it withdraws nothing of B (it cannot even name B).

	// Bad input names the field.
	for _, tc := range []struct {
		patch map[string]any
		field string
	}{
		{map[string]any{"channel": "sms"}, "channel"},
		{map[string]any{"purpose": "spying"}, "purpose"},
		{map[string]any{"audience": map[string]any{"traits": []map[string]any{{"key": "plan", "op": "like", "value": "x"}}}}, "audience.traits[0].op"},
		{map[string]any{"audience": map[string]any{"events": []map[string]any{{"name": "", "within_days": 3}}}}, "audience.events[0].name"},
		{map[string]any{"message": map[string]any{"subject": "x", "body": "{{.traits.first_name"}}, "message.body"},
		{map[string]any{"name": ""}, "name"},
	} {
		in := map[string]any{}
		for k, v := range body {
			in[k] = v
		}
		for k, v := range tc.patch {
			in[k] = v
		}
		r := srv.do(t, "POST", "/api/v1/campaigns", mustJSON(t, in), auth(a.SecretKey)...)
		if r.status != 400 || !strings.Contains(r.errorMessage(), tc.field) {
			t.Errorf("create with %v: %d %q; want 400 naming %s", tc.patch, r.status, r.errorMessage(), tc.field)
		}
	}
}
