package main

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// testConsoleSettings: an admin changes the privacy center's branding
// and a setting, is told what is wrong with a bad patch, adds and removes
// a recipient, rotates the keys (the old ones stop working, the session
// does not) and opens the record of processing; each step is audited
// under the person's name.
func testConsoleSettings(t *testing.T, root context.Context, srv *testServer) {
	ten := srv.createTenant(t, "Settings Co")
	ctx := tab(t, root, "")
	signInConsole(t, ctx, srv, "Sam", ten.SecretKey)
	do(t, ctx, "open Settings", chromedp.Navigate(srv.URL+"/console/settings"), chromedp.WaitVisible(chromedp.CSS("#branding")),
		chromedp.SetValue(chromedp.CSS("#b-name"), "Settings <Co> Privacy"), chromedp.SetValue(chromedp.CSS("#b-primary"), "#1b5e20"))
	checkAccessible(t, ctx, "the console's settings page")
	clickTo(t, ctx, "#save-branding", "#flash")
	if got := text(t, ctx, "#settings-json"); !strings.Contains(got, `"primary_color": "#1b5e20"`) || !strings.Contains(got, `Settings \u003cCo\u003e Privacy`) {
		t.Errorf("settings after branding: %s", got)
	}
	r := srv.do(t, "GET", "/privacy/"+ten.ID+"/theme.css", nil)
	if !strings.Contains(string(r.body), "#1b5e20") {
		t.Errorf("the privacy center's theme does not take the colour: %s", r.body)
	}
	do(t, ctx, "enter a bad patch", chromedp.SetValue(chromedp.CSS("#patch"), `{"event_retention_days": "long"}`))
	clickTo(t, ctx, "#save-patch", "#error")
	if got := text(t, ctx, "#error"); !strings.Contains(got, "event_retention_days") {
		t.Errorf("a bad patch: %q; want the field named", got)
	}
	do(t, ctx, "enter a patch", chromedp.SetValue(chromedp.CSS("#patch"), `{"controller_name": "Settings Company Ltd"}`))
	clickTo(t, ctx, "#save-patch", "#flash")
	if got := text(t, ctx, "#settings-json"); !strings.Contains(got, "Settings Company Ltd") {
		t.Errorf("settings after the patch: %s", got)
	}

	do(t, ctx, "fill a recipient", chromedp.SetValue(chromedp.CSS("#r-name"), "CRM <main>"),
		chromedp.SetValue(chromedp.CSS("#r-url"), "https://crm.example/hook"), chromedp.SetValue(chromedp.CSS("#r-secret"), "0123456789abcdef0123"))
	clickTo(t, ctx, "#add-recipient", "#flash")
	if got := text(t, ctx, "#recipients"); !strings.Contains(got, "CRM <main>") {
		t.Errorf("recipients %q", got)
	}
	clickTo(t, ctx, "#recipients button", "#flash")
	if got := text(t, ctx, "#recipients"); strings.Contains(got, "CRM") {
		t.Errorf("after removal, recipients %q", got)
	}

	do(t, ctx, "confirm the rotation", chromedp.SetValue(chromedp.CSS("#confirm"), "rotate"))
	clickTo(t, ctx, "#rotate-keys", "#new-keys")
	newSecret := text(t, ctx, "#new-secret-key")
	if newSecret == ten.SecretKey || !strings.HasPrefix(newSecret, "sk_") {
		t.Fatalf("new secret key %q", newSecret)
	}
	screenshot(t, ctx, "console-settings")
	if r := srv.do(t, "GET", "/api/v1/settings", nil, "Authorization", "Bearer "+ten.SecretKey); r.status != http.StatusUnauthorized {
		t.Errorf("the old secret key after rotation: %d", r.status)
	}
	if r := srv.do(t, "GET", "/api/v1/settings", nil, "Authorization", "Bearer "+newSecret); r.status != http.StatusOK {
		t.Errorf("the new secret key: %d %s", r.status, r.body)
	}

	clickTo(t, ctx, "#processing-record", "h1")
	if got := text(t, ctx, "h1"); got != "Record of processing activities" {
		t.Errorf("record of processing title %q", got)
	}
	// Its style block is allowed by its hash: the page is styled.
	size, err := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector("h1")).fontSize`))
	if err != nil || size != "24px" {
		t.Errorf("record of processing h1 is %q (%v); want 24px from its style block", size, err)
	}
	r = srv.do(t, "GET", "/console/processing-record", nil)
	if csp := r.header.Get("Content-Security-Policy"); r.status == http.StatusOK && strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q", csp)
	}

	entries := srv.auditEntries(t, newSecret)
	for _, a := range []string{"settings.update", "recipient.created", "recipient.deleted", "tenant.keys.rotate", "processing_record.read"} {
		if !hasAudit(entries, "console:secret-key:Sam", a) {
			t.Errorf("no %s entry by console:secret-key:Sam", a)
		}
	}
}
