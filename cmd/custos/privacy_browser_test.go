package main

import (
	"archive/zip"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/custos-dev/custos/internal/console"
	"github.com/custos-dev/custos/internal/mail/mailtest"
	"github.com/custos-dev/custos/internal/testdeps"
)

// axeDir is where package-lock.json pins axe-core; the tests install it
// there (npm ci) when node_modules is missing or stale.
const axeDir = "../../internal/console/testdata/axe"

// checkAccessible runs axe-core (WCAG 2.0/2.1 A and AA rules) on the page
// and fails on any violation.
func checkAccessible(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	for _, v := range axeViolations(t, ctx, page) {
		t.Errorf("accessibility of %s: %s", page, v)
	}
}

// axeViolations runs axe-core on the page and returns its violations.
func axeViolations(t *testing.T, ctx context.Context, page string) []string {
	t.Helper()
	dir := testdeps.NodeModules(t, axeDir)
	src, err := os.ReadFile(filepath.Join(dir, "node_modules", "axe-core", "axe.min.js"))
	if err != nil {
		t.Fatalf("the accessibility check needs axe-core, which %s/package-lock.json should pin: %v", axeDir, err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](string(src))); err != nil {
		t.Fatalf("inject axe-core into %s: %v", page, err)
	}
	violations, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}})
		.then(r => r.violations.map(v => v.id + " (" + v.impact + "): " + v.help + " at " + v.nodes.map(n => n.target.join(" ")).join(", ")))`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("run axe-core on %s: %v", page, err)
	}
	return violations
}

var linkRE = regexp.MustCompile(`https?://\S+/enter\?token=\S+`)

// testPrivacyCenter signs a data subject in by e-mail and by a signed app
// link, and exercises each of their rights in the browser.
func testPrivacyCenter(t *testing.T, root context.Context, srv *testServer, smtp *mailtest.Server, acme, beta tenantInfo) {
	srv.patchSettings(t, acme.SecretKey, map[string]any{
		"smtp": map[string]any{"host": smtp.Host, "port": smtp.Port, "username": smtp.Username, "password": smtp.Password,
			"from": "privacy@acme.test", "region": "eu"},
		"privacy_center": map[string]any{"name": "Acme Privacy", "primary_color": "#7b1fa2", "policy_url": "https://acme.test/privacy"},
	})
	mia := "mia-" + randomHex(4) + "@example.com"
	srv.ingest(t, acme.WriteKey, "/v1/batch", mustJSON(t, map[string]any{"batch": []map[string]any{
		{"type": "identify", "userId": "mia-1", "traits": map[string]any{"email": mia, "name": "Mia <b>Muster</b>"}},
		{"type": "track", "userId": "mia-1", "event": "Order Completed", "properties": map[string]any{"total": 42}},
		{"type": "page", "userId": "mia-1", "name": "Home"},
	}}))
	// Beta knows a person with the same address; Acme's center never shows Beta's data.
	srv.ingest(t, beta.WriteKey, "/v1/batch", mustJSON(t, map[string]any{"batch": []map[string]any{
		{"type": "identify", "userId": "beta-mia", "traits": map[string]any{"email": mia, "plan": "beta-only-plan"}},
	}}))
	base := srv.URL + "/privacy/" + acme.ID
	dl := t.TempDir()
	ctx := tab(t, root, dl)

	// The accessibility check can fail: a page with an unlabelled field fails it.
	do(t, ctx, "open a page with an unlabelled field", chromedp.Navigate("data:text/html,<html lang=en><title>x</title><main><input id=q></main>"),
		chromedp.WaitVisible(chromedp.CSS("#q")))
	if v := axeViolations(t, ctx, "the unlabelled page"); len(v) == 0 {
		t.Errorf("axe-core found nothing wrong with an unlabelled field")
	}

	// The language follows Accept-Language and can be switched.
	if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Accept-Language": "de-DE,de;q=0.9"}}); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, "open the privacy center", chromedp.Navigate(base), chromedp.WaitVisible(chromedp.CSS("#email-form")))
	if got := text(t, ctx, "h1"); got != "Ihre Daten und Ihre Entscheidungen" {
		t.Errorf("with Accept-Language de the title is %q", got)
	}
	clickTo(t, ctx, "#lang-fr", "#email-form")
	if got := text(t, ctx, "h1"); got != "Vos données et vos choix" {
		t.Errorf("after choosing français the title is %q", got)
	}
	clickTo(t, ctx, "#lang-en", "#email-form")
	if got := text(t, ctx, "h1"); got != "Your data and your choices" {
		t.Errorf("after choosing English the title is %q", got)
	}
	if got := text(t, ctx, "#pc-name"); got != "Acme Privacy" {
		t.Errorf("the center is named %q; want the setting's name", got)
	}
	screenshot(t, ctx, "privacy-signin")
	checkAccessible(t, ctx, "the privacy center's sign-in page")

	// An unknown address gets the same answer as a known one, and no mail.
	// The SMTP server is shared with other subtests: count from here.
	before := len(smtp.Messages())
	do(t, ctx, "ask a link for an unknown address", chromedp.SetValue(chromedp.CSS("#email"), "nobody@example.com"))
	clickTo(t, ctx, "#send-link", "#flash")
	unknownAnswer := text(t, ctx, "main")
	do(t, ctx, "back to sign-in", chromedp.Navigate(base), chromedp.WaitVisible(chromedp.CSS("#email-form")),
		chromedp.SetValue(chromedp.CSS("#email"), strings.ToUpper(mia)))
	clickTo(t, ctx, "#send-link", "#flash")
	if known := text(t, ctx, "main"); known != unknownAnswer {
		t.Errorf("known address answered %q, unknown %q; want the same", known, unknownAnswer)
	}
	msgs := smtp.Wait(before+1, 30*time.Second)[before:]
	if len(msgs) != 1 || len(msgs[0].To) != 1 || msgs[0].To[0] != mia {
		var to [][]string
		for _, m := range msgs {
			to = append(to, m.To)
		}
		t.Fatalf("mails sent since the sign-in page: to %v; want one, to %s", to, mia)
	}
	body := mailText(t, msgs[0])
	link := linkRE.FindString(body)
	if link == "" || !strings.HasPrefix(link, base+"/enter?token=") {
		t.Fatalf("no sign-in link to %s in the mail:\n%s", base, body)
	}

	// Following the link signs in after one click.
	do(t, ctx, "follow the link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#continue")))
	clickTo(t, ctx, "#continue", "#identifiers")
	held := text(t, ctx, "main")
	for _, want := range []string{"mia-1", mia, "Mia <b>Muster</b>", "Order Completed", "analytics", "395"} {
		if !strings.Contains(held, want) {
			t.Errorf("what is held does not show %q:\n%s", want, held)
		}
	}
	if strings.Contains(held, "beta-only-plan") || strings.Contains(held, "beta-mia") {
		t.Errorf("Acme's privacy center shows Beta's data:\n%s", held)
	}
	screenshot(t, ctx, "privacy-data")
	checkAccessible(t, ctx, "the privacy center's data page")

	// The link worked once.
	tab2 := tab(t, root, "")
	do(t, tab2, "follow the used link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#error")))
	if got := text(t, tab2, "#error"); !strings.Contains(got, "expired or was already used") {
		t.Errorf("a used link says %q", got)
	}

	// Consent: grant marketing by e-mail, then withdraw it.
	subject := srv.findProfile(t, acme.SecretKey, "user_id", "mia-1").SubjectID
	do(t, ctx, "tick marketing by e-mail", chromedp.Click(chromedp.CSS("#c\\.marketing\\.email")))
	clickTo(t, ctx, "#save-consent", "#flash")
	if st := srv.consents(t, acme.SecretKey, subject).status("marketing", "email"); st != "granted" {
		t.Errorf("after the grant in the center, marketing/email is %s", st)
	}
	do(t, ctx, "untick marketing by e-mail", chromedp.Click(chromedp.CSS("#c\\.marketing\\.email")))
	clickTo(t, ctx, "#save-consent", "#flash")
	if st := srv.consents(t, acme.SecretKey, subject).status("marketing", "email"); st != "withdrawn" {
		t.Errorf("after the withdrawal in the center, marketing/email is %s", st)
	}

	// Download: the portability ZIP holds the person's data.
	do(t, ctx, "download", chromedp.Click(chromedp.CSS("#download")))
	zipPath := waitFile(t, dl, ".zip")
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		t.Fatalf("open the downloaded export: %v", err)
	}
	var all strings.Builder
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		all.Write(b)
	}
	zr.Close()
	if !strings.Contains(all.String(), "mia-1") || !strings.Contains(all.String(), "Order Completed") {
		t.Errorf("the export lacks the person's data; files: %d", len(zr.File))
	}

	// Object to marketing and suppress: real requests.
	clickTo(t, ctx, "#object", "#flash")
	clickTo(t, ctx, "#suppress", "#flash")
	bySource := map[string]int{}
	var fromCenter []string
	for _, r := range srv.requestsOf(t, acme.SecretKey) {
		if r["source"] == "privacy_center" && r["status"] == "completed" {
			bySource[fmt.Sprint(r["type"])]++
			fromCenter = append(fromCenter, fmt.Sprint(r["id"]))
		}
	}
	// They are in the controller's console too.
	cons := tab(t, root, "")
	signInConsole(t, cons, srv, "Pia", acme.SecretKey)
	queue := text(t, cons, "#queue")
	for _, id := range fromCenter {
		if !strings.Contains(queue, id) {
			t.Errorf("the console's queue lacks the privacy center's request %s", id)
		}
	}
	for _, typ := range []string{"portability", "object", "suppress"} {
		if bySource[typ] != 1 {
			t.Errorf("completed %s requests from the privacy center: %d, want 1 (all: %v)", typ, bySource[typ], bySource)
		}
	}
	entries := srv.auditEntries(t, acme.SecretKey)
	for _, action := range []string{"privacy.signin", "privacy.view", "consent.grant", "consent.withdraw", "request.completed"} {
		if !hasAudit(entries, "subject:privacy-center", action) {
			t.Errorf("no %s entry by subject:privacy-center in the audit chain", action)
		}
	}

	// A CSRF attempt in the center is refused.
	do(t, ctx, "tamper with the center's CSRF token", chromedp.SetValue(chromedp.CSS("#consent-form input[name=csrf]"), "forged"))
	clickTo(t, ctx, "#save-consent", "#error")
	do(t, ctx, "sign out", chromedp.Navigate(base+"/me"), chromedp.WaitVisible(chromedp.CSS("#pc-signout")))
	clickTo(t, ctx, "#pc-signout", "#email-form")

	// A signed link from the tenant's app: expired, then valid.
	exp := time.Now().Add(-time.Minute).Unix()
	expired := fmt.Sprintf("%s/enter?user_id=mia-1&expires=%d&signature=%s", base, exp, console.AppLinkSignature(acme.Identity, "mia-1", exp))
	do(t, ctx, "follow an expired app link", chromedp.Navigate(expired), chromedp.WaitVisible(chromedp.CSS("#error")))
	if got := text(t, ctx, "#error"); !strings.Contains(got, "expired") {
		t.Errorf("an expired app link says %q", got)
	}
	exp = time.Now().Add(10 * time.Minute).Unix()
	forged := fmt.Sprintf("%s/enter?user_id=mia-1&expires=%d&signature=%s", base, exp, console.AppLinkSignature("iv_wrong", "mia-1", exp))
	do(t, ctx, "follow a forged app link", chromedp.Navigate(forged), chromedp.WaitVisible(chromedp.CSS("#error")))
	if got := text(t, ctx, "#error"); !strings.Contains(got, "not valid") {
		t.Errorf("a forged app link says %q", got)
	}
	valid := fmt.Sprintf("%s/enter?user_id=mia-1&expires=%d&signature=%s", base, exp, console.AppLinkSignature(acme.Identity, "mia-1", exp))
	do(t, ctx, "follow a valid app link", chromedp.Navigate(valid), chromedp.WaitVisible(chromedp.CSS("#continue")))
	clickTo(t, ctx, "#continue", "#identifiers")

	// Erasure asks for confirmation first.
	clickTo(t, ctx, "#erase", "#erase-form")
	screenshot(t, ctx, "privacy-erase")
	do(t, ctx, "confirm", chromedp.Click(chromedp.CSS("#confirm")))
	clickTo(t, ctx, "#erase-confirm", "#flash")
	if got := text(t, ctx, "#flash"); !strings.Contains(got, "being erased") {
		t.Errorf("after the erasure the page says %q", got)
	}
	if r := srv.lookup(t, acme.SecretKey, "user_id", "mia-1"); r.status != http.StatusNotFound {
		t.Errorf("after the erasure from the center the API finds mia-1: %d %s", r.status, r.body)
	}
	if r := srv.lookup(t, beta.SecretKey, "user_id", "beta-mia"); r.status != http.StatusOK {
		t.Errorf("Acme's erasure touched Beta's subject: %d %s", r.status, r.body)
	}
	// The session ended with the data.
	do(t, ctx, "open the data page again", chromedp.Navigate(base+"/me"), chromedp.WaitVisible(chromedp.CSS("#email-form")))

	// Stopping the server waits for every mail the privacy center started:
	// none of them went to the unknown address.
	srv.stop(t)
	for _, m := range smtp.Messages()[before:] {
		if slices.Contains(m.To, "nobody@example.com") {
			t.Errorf("a sign-in mail went to the unknown address nobody@example.com")
		}
	}
}
