package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/custos-dev/custos/internal/mail/mailtest"
)

// barValues reads a server-drawn bar chart: label -> value, from the
// tooltips of its bars.
func barValues(t *testing.T, ctx context.Context, id string) map[string]string {
	t.Helper()
	titles, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#`+id+` rect title")].map(e => e.textContent)`))
	if err != nil {
		t.Fatalf("read chart %s: %v", id, err)
	}
	out := map[string]string{}
	for _, s := range titles {
		if k, v, ok := strings.Cut(s, ": "); ok {
			out[k] = v
		}
	}
	return out
}

// testConsoleCampaigns: create a campaign in the console, preview it
// (exclusions by reason as a chart), send it and watch it complete; the
// one eligible person gets the e-mail.
func testConsoleCampaigns(t *testing.T, root context.Context, srv *testServer, smtp *mailtest.Server, acme tenantInfo) {
	srv.patchSettings(t, acme.SecretKey, map[string]any{"smtp": map[string]any{"host": smtp.Host, "port": smtp.Port,
		"username": smtp.Username, "password": smtp.Password, "from": "news@acme.test", "region": "eu"}})
	var batch []map[string]any
	for _, u := range []string{"camp-ok", "camp-noconsent", "camp-suppressed"} {
		batch = append(batch, map[string]any{"type": "identify", "userId": u, "traits": map[string]any{"email": u + "@example.com", "tier": "gold"}})
	}
	srv.ingest(t, acme.WriteKey, "/v1/batch", mustJSON(t, map[string]any{"batch": batch}))
	for _, u := range []string{"camp-ok", "camp-suppressed"} {
		srv.postConsent(t, acme.SecretKey, map[string]any{"identity": map[string]string{"type": "user_id", "value": u},
			"purpose": "marketing", "channel": "email", "granted": true})
	}
	srv.apiRequest(t, acme.SecretKey, "suppress", "user_id", "camp-suppressed")

	ctx := tab(t, root, "")
	signInConsole(t, ctx, srv, "Cam", acme.SecretKey)
	do(t, ctx, "open Campaigns", chromedp.Navigate(srv.URL+"/console/campaigns"), chromedp.WaitVisible(chromedp.CSS("#new-campaign")))
	checkAccessible(t, ctx, "the console's campaigns page")
	do(t, ctx, "fill the campaign",
		chromedp.SetValue(chromedp.CSS("#c-name"), "Gold <news>"),
		chromedp.SetValue(chromedp.CSS("#c-purpose"), "marketing"),
		chromedp.SetValue(chromedp.CSS("#c-channel"), "email"),
		chromedp.SetValue(chromedp.CSS("#c-trait-key"), "tier"),
		chromedp.SetValue(chromedp.CSS("#c-trait-op"), "eq"),
		chromedp.SetValue(chromedp.CSS("#c-trait-value"), "gold"),
		chromedp.SetValue(chromedp.CSS("#c-subject"), "Hello gold"),
		chromedp.SetValue(chromedp.CSS("#c-body"), "<p>Hi {{.traits.email}}</p>"))
	clickTo(t, ctx, "#create-campaign", "#campaign-status")
	if got := text(t, ctx, "h1"); got != "Campaign Gold <news>" {
		t.Errorf("campaign page title %q", got)
	}
	clickTo(t, ctx, "#preview", "#preview-result")
	if got := text(t, ctx, "#preview-counts"); !strings.Contains(got, "Audience 3") || !strings.Contains(got, "may be sent to 1") {
		t.Errorf("preview counts %q; want audience 3, 1 eligible", got)
	}
	bars := barValues(t, ctx, "exclusions")
	if bars["no_consent"] != "1" || bars["suppressed"] != "1" || bars["objected"] != "0" {
		t.Errorf("exclusion chart %v; want no_consent 1, suppressed 1, objected 0", bars)
	}
	if got := text(t, ctx, "#preview-result .sample"); !strings.Contains(got, "<p>Hi camp-ok@example.com</p>") {
		t.Errorf("sample %q; want the rendered body, shown as text", got)
	}
	checkAccessible(t, ctx, "the console's campaign preview")
	screenshot(t, ctx, "console-campaign-preview")
	clickTo(t, ctx, "#send", "#progress")
	// The page refreshes itself while it sends.
	status := ""
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#campaign-status"))); err == nil {
			if status = strings.TrimSpace(s); status == "completed" {
				break
			}
		}
	}
	if status != "completed" {
		t.Fatalf("campaign is %q after 60s; want completed", status)
	}
	do(t, ctx, "wait for the progress chart", chromedp.WaitVisible(chromedp.CSS("#progress-chart")))
	if got := text(t, ctx, "#progress-counts"); !strings.Contains(got, "sent 1") {
		t.Errorf("progress %q; want 1 sent", got)
	}
	if bars := barValues(t, ctx, "progress-chart"); bars["no_consent"] != "1" || bars["suppressed"] != "1" {
		t.Errorf("progress chart %v", bars)
	}
	screenshot(t, ctx, "console-campaign")
	found := false
	for _, m := range smtp.Messages() {
		if strings.Contains(strings.Join(m.To, ","), "camp-ok@example.com") {
			found = true
		}
		for _, to := range m.To {
			if strings.Contains(to, "camp-noconsent") || strings.Contains(to, "camp-suppressed") {
				t.Errorf("a message went to %s", to)
			}
		}
	}
	if !found {
		t.Errorf("no message to camp-ok@example.com")
	}
	entries := srv.auditEntries(t, acme.SecretKey)
	for _, a := range []string{"campaign.create", "campaign.preview", "campaign.send"} {
		if !hasAudit(entries, "console:secret-key:Cam", a) {
			t.Errorf("no %s entry by console:secret-key:Cam", a)
		}
	}
}

// testConsoleConsents: grants and withdrawals recorded through the API
// appear in the consent page's charts and totals, and other tenants'
// records (Acme's, from the earlier flows) stay out of it.
func testConsoleConsents(t *testing.T, root context.Context, srv *testServer) {
	beta := srv.createTenant(t, "Consent Co")
	var batch []map[string]any
	for _, u := range []string{"c1", "c2", "c3", "c4"} {
		batch = append(batch, map[string]any{"type": "identify", "userId": "beta-" + u})
	}
	srv.ingest(t, beta.WriteKey, "/v1/batch", mustJSON(t, map[string]any{"batch": batch}))
	grant := func(u, channel string, granted bool) {
		srv.postConsent(t, beta.SecretKey, map[string]any{"identity": map[string]string{"type": "user_id", "value": "beta-" + u},
			"purpose": "marketing", "channel": channel, "granted": granted})
	}
	grant("c1", "email", true)
	grant("c2", "email", true)
	grant("c3", "email", true)
	grant("c3", "email", false)
	grant("c4", "sms", true)

	ctx := tab(t, root, "")
	signInConsole(t, ctx, srv, "Cora", beta.SecretKey)
	do(t, ctx, "open Consent", chromedp.Navigate(srv.URL+"/console/consents"), chromedp.WaitVisible(chromedp.CSS("#consent-totals")))
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#consent-totals tbody tr")].map(r => [...r.cells].map(c => c.textContent.trim()).join("|"))`))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"marketing|email|2|1|1", "marketing|sms|1|0|3"}
	if strings.Join(rows, " ") != strings.Join(want, " ") {
		t.Errorf("consent totals %v; want %v", rows, want)
	}
	series := func(id string) []string {
		s, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#`+id+` polyline title")].map(e => e.textContent)`))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if got := strings.Join(series("grants-chart"), ", "); got != "marketing × email: 3, marketing × sms: 1" {
		t.Errorf("grants chart series %q", got)
	}
	if got := strings.Join(series("withdrawals-chart"), ", "); got != "marketing × email: 1, marketing × sms: 0" {
		t.Errorf("withdrawals chart series %q", got)
	}
	checkAccessible(t, ctx, "the console's consent page")
	screenshot(t, ctx, "console-consent")
	if !hasAudit(srv.auditEntries(t, beta.SecretKey), "console:secret-key:Cora", "consent.report.read") {
		t.Errorf("no consent.report.read entry by Cora")
	}
}
