package main

// Browser tests of the console's users, sessions, incidents and the
// operator's console (run by TestBrowser).

import (
	"context"
	"encoding/base32"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/custos-dev/custos/internal/totp"
)

// signInUser signs in on the console-user form and waits for want.
func signInUser(t *testing.T, ctx context.Context, srv *testServer, tenant, name, password, code, want string) {
	t.Helper()
	do(t, ctx, "open the user sign-in page", chromedp.Navigate(srv.URL+"/console/signin/user?tenant="+tenant),
		chromedp.WaitVisible(chromedp.CSS("#user-signin-form")),
		chromedp.SetValue(chromedp.CSS("#name"), name), chromedp.SetValue(chromedp.CSS("#password"), password))
	if code != "" {
		do(t, ctx, "enter the code", chromedp.SetValue(chromedp.CSS("#code"), code))
	}
	clickTo(t, ctx, "#signin", want)
}

// codeOf computes the current TOTP code of a base32 secret, as an
// authenticator app would.
func codeOf(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	b, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
	if err != nil {
		t.Fatalf("decode the TOTP secret %q: %v", secret, err)
	}
	return totp.At(b, totp.Counter(at))
}

// testConsoleUsers: an admin with the secret key creates users; a user
// signs in with a password, sets up a second factor and signs in with a
// code (once per code); an admin sees and revokes sessions and removes a
// user, which ends their sessions; each step is in the audit chain
// under the person's name.
func testConsoleUsers(t *testing.T, root context.Context, srv *testServer, acme, beta tenantInfo) {
	admin := tab(t, root, "")
	signInConsole(t, admin, srv, "Root", acme.SecretKey)
	do(t, admin, "open Users", chromedp.Navigate(srv.URL+"/console/users"), chromedp.WaitVisible(chromedp.CSS("#new-user")))
	checkAccessible(t, admin, "the console's users page")
	// A short password is refused, saying why.
	do(t, admin, "fill a user with a short password", chromedp.SetValue(chromedp.CSS("#new-name"), "mia"),
		chromedp.SetValue(chromedp.CSS("#new-password"), "short"))
	do(t, admin, "drop the browser's own length check", chromedp.Evaluate[chromedp.Void](`document.getElementById("new-password").removeAttribute("minlength")`))
	clickTo(t, admin, "#create-user", "#error")
	if got := text(t, admin, "#error"); !strings.Contains(got, "password must be 12") {
		t.Errorf("a short password: %q; want the rule", got)
	}
	const password = "correct horse battery"
	do(t, admin, "fill the user", chromedp.SetValue(chromedp.CSS("#new-name"), "mia"), chromedp.SetValue(chromedp.CSS("#new-password"), password))
	clickTo(t, admin, "#create-user", "#flash")
	do(t, admin, "fill a second user", chromedp.SetValue(chromedp.CSS("#new-name"), "noah"), chromedp.SetValue(chromedp.CSS("#new-password"), password+"!"))
	clickTo(t, admin, "#create-user", "#flash")
	if got := text(t, admin, "#users"); !strings.Contains(got, "mia") || !strings.Contains(got, "noah") {
		t.Errorf("users table %q; want mia and noah", got)
	}
	screenshot(t, admin, "console-users")

	// A wrong password is refused without saying which part was wrong.
	mia := tab(t, root, "")
	signInUser(t, mia, srv, acme.ID, "mia", "wrong password!!", "", "#error")
	if got := text(t, mia, "#error"); !strings.Contains(got, "not right") {
		t.Errorf("wrong password: %q", got)
	}
	// The right one, on another tenant's id, does not open either.
	signInUser(t, mia, srv, beta.ID, "mia", password, "", "#error")
	signInUser(t, mia, srv, acme.ID, "mia", password, "", "#queue")
	if got := text(t, mia, "#user-name"); got != "mia" {
		t.Errorf("signed in as %q", got)
	}
	// Not an admin: the users page is refused.
	do(t, mia, "open Users as a member", chromedp.Navigate(srv.URL+"/console/users"), chromedp.WaitVisible(chromedp.CSS("#error")))
	if got := text(t, mia, "#error"); !strings.Contains(got, "administrators") {
		t.Errorf("a member on the users page: %q", got)
	}

	// Two-factor: set up, confirm with a code from the key shown.
	do(t, mia, "open the account", chromedp.Navigate(srv.URL+"/console/account"), chromedp.WaitVisible(chromedp.CSS("#totp-start")))
	clickTo(t, mia, "#totp-start", "#totp-secret")
	checkAccessible(t, mia, "the console's account page")
	screenshot(t, mia, "console-account")
	secret := text(t, mia, "#totp-secret")
	do(t, mia, "enter a wrong code", chromedp.SetValue(chromedp.CSS("#totp-code"), "000000"))
	clickTo(t, mia, "#totp-confirm", "#error")
	do(t, mia, "enter the code", chromedp.SetValue(chromedp.CSS("#totp-code"), codeOf(t, secret, time.Now())))
	clickTo(t, mia, "#totp-confirm", "#flash")
	if got := text(t, mia, "#totp-state"); !strings.HasPrefix(got, "On") {
		t.Errorf("after confirming, two-factor is %q", got)
	}
	clickTo(t, mia, "#signout", "#signin-form")
	// Now the password alone is not enough; a code is.
	signInUser(t, mia, srv, acme.ID, "mia", password, "", "#error")
	if got := text(t, mia, "#error"); !strings.Contains(got, "6-digit code") {
		t.Errorf("password without the code: %q", got)
	}
	next := time.Now().Add(totp.Step) // the confirming code was used already
	signInUser(t, mia, srv, acme.ID, "mia", password, codeOf(t, secret, next), "#queue")
	// The same code a second time is refused.
	other := tab(t, root, "")
	signInUser(t, other, srv, acme.ID, "mia", password, codeOf(t, secret, next), "#error")
	if got := text(t, other, "#error"); !strings.Contains(got, "used already") && !strings.Contains(got, "not right") {
		t.Errorf("a used code: %q", got)
	}

	// The admin sees mia's session and revokes it: her next page sends
	// her to sign in.
	do(t, admin, "open the account", chromedp.Navigate(srv.URL+"/console/account"), chromedp.WaitVisible(chromedp.CSS("#sessions")))
	if got := text(t, admin, "#sessions"); !strings.Contains(got, "mia") || !strings.Contains(got, "Root (you)") {
		t.Errorf("sessions %q; want mia's and the admin's own", got)
	}
	clickTo(t, admin, "#revoke-mia", "#flash")
	do(t, mia, "open the queue after the revocation", chromedp.Navigate(srv.URL+"/console/requests"), chromedp.WaitVisible(chromedp.CSS("#signin-form")))

	// Removing noah ends his session.
	noah := tab(t, root, "")
	signInUser(t, noah, srv, acme.ID, "noah", password+"!", "", "#queue")
	do(t, admin, "open Users", chromedp.Navigate(srv.URL+"/console/users"), chromedp.WaitVisible(chromedp.CSS("#delete-noah")))
	clickTo(t, admin, "#delete-noah", "#flash")
	do(t, noah, "open the queue after removal", chromedp.Navigate(srv.URL+"/console/requests"), chromedp.WaitVisible(chromedp.CSS("#signin-form")))
	signInUser(t, noah, srv, acme.ID, "noah", password+"!", "", "#error")

	entries := srv.auditEntries(t, acme.SecretKey)
	for _, want := range []struct{ actor, action string }{
		{"console:secret-key:Root", "console.user.create"},
		{"console:user:mia", "console.signin"},
		{"console:user:mia", "console.user.totp"},
		{"console:user:mia", "console.signout"},
		{"console:user:mia", "console.signin.refused"},
		{"console:secret-key:Root", "console.session.revoke"},
		{"console:secret-key:Root", "console.user.delete"},
	} {
		if !hasAudit(entries, want.actor, want.action) {
			t.Errorf("no %s entry by %s in Acme's audit chain", want.action, want.actor)
		}
	}
	for _, e := range entries {
		if d, _ := e["details"].(map[string]any); d != nil && strings.Contains(strings.ToLower(toJSON(d)), "horse") {
			t.Errorf("an audit entry holds the password: %v", e)
		}
	}
}

func toJSON(v any) string {
	var b strings.Builder
	for k, x := range v.(map[string]any) {
		b.WriteString(k)
		b.WriteString("=")
		if s, ok := x.(string); ok {
			b.WriteString(s)
		}
		b.WriteString(" ")
	}
	return b.String()
}

// testConsoleIncidents: the operator opens an incident for Acme; Acme's
// console shows it with its 72-hour clock, acknowledges it, lists the
// affected people and the Art. 34 notice; Beta sees nothing of it.
func testConsoleIncidents(t *testing.T, root context.Context, srv *testServer, acme, beta tenantInfo) {
	srv.ingest(t, acme.WriteKey, "/v1/batch", mustJSON(t, map[string]any{"batch": []map[string]any{
		{"type": "identify", "userId": "breached-1", "traits": map[string]any{"email": "breached@example.com"}}}}))
	r := srv.do(t, "POST", "/admin/v1/incidents", mustJSON(t, map[string]any{"detected_at": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339),
		"nature": "Backup <copied>", "data_categories": []string{"contact.email"}, "likely_consequences": "Phishing",
		"measures_taken": "Rotated credentials", "contact_point": "dpo@processor.example", "scope": map[string]any{"tenants": []string{acme.ID}}}),
		"Authorization", "Bearer "+srv.cfg.token)
	if r.status != http.StatusCreated {
		t.Fatalf("open an incident: %d %s", r.status, r.body)
	}
	id := jsonField(t, "incident", r.body, "id")

	ctx := tab(t, root, "")
	signInConsole(t, ctx, srv, "Ines", acme.SecretKey)
	do(t, ctx, "open Incidents", chromedp.Navigate(srv.URL+"/console/incidents"), chromedp.WaitVisible(chromedp.CSS("#incidents")))
	if got := text(t, ctx, "#incidents"); !strings.Contains(got, id) || !strings.Contains(got, "Backup <copied>") || !strings.Contains(got, "71h") {
		t.Errorf("incidents %q; want %s with about 71 hours left", got, id)
	}
	checkAccessible(t, ctx, "the console's incidents page")
	clickTo(t, ctx, "#incidents a", "#clock")
	if got := text(t, ctx, "#countdown"); !strings.Contains(got, "left to notify") {
		t.Errorf("countdown %q", got)
	}
	if got := text(t, ctx, "#affected"); !strings.Contains(got, "breached@example.com") {
		t.Errorf("affected people %q; want breached@example.com", got)
	}
	if got := text(t, ctx, "#notice-text"); !strings.Contains(got, "e-mail") {
		t.Errorf("notice %q; want it to name the e-mail address", got)
	}
	clickTo(t, ctx, "#acknowledge", "#acknowledged")
	checkAccessible(t, ctx, "the console's incident page")
	screenshot(t, ctx, "console-incident")
	r = srv.do(t, "GET", "/api/v1/incidents/"+id, nil, "Authorization", "Bearer "+acme.SecretKey)
	if jsonField(t, "incident", r.body, "acknowledged_at") == "" {
		t.Errorf("the API does not show the acknowledgement: %s", r.body)
	}
	entries := srv.auditEntries(t, acme.SecretKey)
	for _, a := range []string{"incident.acknowledge", "incident.affected_subjects.read", "incident.notice.draft"} {
		if !hasAudit(entries, "console:secret-key:Ines", a) {
			t.Errorf("no %s entry by console:secret-key:Ines", a)
		}
	}
	// Beta's console: no such incident.
	b := tab(t, root, "")
	signInConsole(t, b, srv, "Bo", beta.SecretKey)
	do(t, b, "open Beta's incidents", chromedp.Navigate(srv.URL+"/console/incidents"), chromedp.WaitVisible(chromedp.CSS("#incidents")))
	if got := text(t, b, "#incidents"); strings.Contains(got, id) {
		t.Errorf("Beta's incidents list Acme's: %q", got)
	}
	do(t, b, "open Acme's incident as Beta", chromedp.Navigate(srv.URL+"/console/incidents/"+id), chromedp.WaitVisible(chromedp.CSS("#error")))
	if got := text(t, b, "main"); strings.Contains(got, "Backup") || strings.Contains(got, "breached") {
		t.Errorf("Beta sees Acme's incident: %q", got)
	}
}

// testOperatorConsole: a wrong token is refused; the operator signs in,
// sees the node's health, the tenants and the incidents; a tenant's
// session does not open the operator's pages, nor the operator's a
// tenant's.
func testOperatorConsole(t *testing.T, root context.Context, srv *testServer, acme tenantInfo) {
	r := srv.do(t, "POST", "/admin/v1/incidents", mustJSON(t, map[string]any{"detected_at": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339),
		"nature": "Operator <view>", "data_categories": []string{"contact.email"}, "likely_consequences": "Low",
		"measures_taken": "Closed the bucket", "contact_point": "dpo@processor.example", "scope": map[string]any{"tenants": []string{acme.ID}}}),
		"Authorization", "Bearer "+srv.cfg.token)
	if r.status != http.StatusCreated {
		t.Fatalf("open an incident: %d %s", r.status, r.body)
	}
	ctx := tab(t, root, "")
	do(t, ctx, "open the operator sign-in", chromedp.Navigate(srv.URL+"/console/signin/operator"), chromedp.WaitVisible(chromedp.CSS("#operator-signin-form")),
		chromedp.SetValue(chromedp.CSS("#name"), "Olga"), chromedp.SetValue(chromedp.CSS("#token"), "not-the-token"))
	clickTo(t, ctx, "#signin", "#error")
	checkAccessible(t, ctx, "the operator sign-in page")
	do(t, ctx, "enter the token", chromedp.SetValue(chromedp.CSS("#name"), "Olga"), chromedp.SetValue(chromedp.CSS("#token"), srv.cfg.token))
	clickTo(t, ctx, "#signin", "#health")
	if got := text(t, ctx, "#ready"); got != "yes" {
		t.Errorf("ready %q", got)
	}
	if got := text(t, ctx, "#tenants"); !strings.Contains(got, acme.ID) || !strings.Contains(got, "Acme <Shop>") {
		t.Errorf("tenants %q; want Acme", got)
	}
	// Create a tenant: its keys are shown once and work.
	do(t, ctx, "name a tenant", chromedp.SetValue(chromedp.CSS("#t-name"), "Newco <GmbH>"))
	clickTo(t, ctx, "#create-tenant", "#created")
	sk := text(t, ctx, "#created-secret-key")
	if r := srv.do(t, "GET", "/api/v1/settings", nil, "Authorization", "Bearer "+sk); r.status != http.StatusOK {
		t.Errorf("the new tenant's secret key: %d %s", r.status, r.body)
	}
	if got := text(t, ctx, "#tenants"); !strings.Contains(got, "Newco <GmbH>") {
		t.Errorf("tenants after creation %q", got)
	}
	do(t, ctx, "name a tenant in a bad region", chromedp.SetValue(chromedp.CSS("#t-name"), "Elsewhere"), chromedp.SetValue(chromedp.CSS("#t-region"), "no such region!"))
	clickTo(t, ctx, "#create-tenant", "#error")
	checkAccessible(t, ctx, "the operator's node page")
	screenshot(t, ctx, "console-operator")
	do(t, ctx, "open the incidents", chromedp.Navigate(srv.URL+"/console/operator/incidents"), chromedp.WaitVisible(chromedp.CSS("#op-incidents")))
	if got := text(t, ctx, "#op-incidents"); !strings.Contains(got, "Operator <view>") {
		t.Errorf("operator incidents %q", got)
	}
	checkAccessible(t, ctx, "the operator's incidents page")
	// Close it with a note, under the operator's name.
	incID := jsonField(t, "incident", r.body, "id")
	do(t, ctx, "write the closing note", chromedp.SetValue(chromedp.CSS("#note-"+incID), "Bucket closed <for good>"))
	clickTo(t, ctx, `form[action$="/`+incID+`/close"] button`, "#flash")
	if got := text(t, ctx, "#op-incidents"); !strings.Contains(got, "Bucket closed <for good>") {
		t.Errorf("after closing: %q", got)
	}
	// Open an incident from the console: its scope is refused while it
	// names no tenant, then Acme is notified at once; a phased update
	// reaches Acme too.
	detected := time.Now().Add(-2 * time.Hour).UTC().Format("2006-01-02T15:04")
	do(t, ctx, "fill the incident form", chromedp.SetValue(chromedp.CSS("#i-detected"), detected),
		chromedp.SetValue(chromedp.CSS("#i-nature"), "Console <breach>"), chromedp.SetValue(chromedp.CSS("#i-categories"), "contact.email, identifiers"),
		chromedp.SetValue(chromedp.CSS("#i-consequences"), "Phishing"), chromedp.SetValue(chromedp.CSS("#i-measures"), "Keys rotated"),
		chromedp.SetValue(chromedp.CSS("#i-contact"), "dpo@processor.example"), chromedp.SetValue(chromedp.CSS("#i-tenants"), "not-a-tenant"))
	clickTo(t, ctx, "#open-incident-submit", "#error")
	if got := text(t, ctx, "#error"); !strings.Contains(got, "tenants[0]") {
		t.Errorf("a bad tenant id in the scope: %q; want the field named", got)
	}
	do(t, ctx, "fill the incident form again", chromedp.SetValue(chromedp.CSS("#i-detected"), detected),
		chromedp.SetValue(chromedp.CSS("#i-nature"), "Console <breach>"), chromedp.SetValue(chromedp.CSS("#i-categories"), "contact.email, identifiers"),
		chromedp.SetValue(chromedp.CSS("#i-consequences"), "Phishing"), chromedp.SetValue(chromedp.CSS("#i-measures"), "Keys rotated"),
		chromedp.SetValue(chromedp.CSS("#i-contact"), "dpo@processor.example"), chromedp.SetValue(chromedp.CSS("#i-tenants"), acme.ID))
	clickTo(t, ctx, "#open-incident-submit", "#flash")
	if got := text(t, ctx, "#op-incidents"); !strings.Contains(got, "Console <breach>") {
		t.Errorf("the opened incident is not listed: %q", got)
	}
	var tenantIncs struct {
		Incidents []struct {
			ID     string `json:"id"`
			Nature string `json:"nature"`
		} `json:"incidents"`
	}
	r = srv.do(t, "GET", "/api/v1/incidents", nil, "Authorization", "Bearer "+acme.SecretKey)
	mustDecode(t, r.body, &tenantIncs)
	var opened string
	for _, inc := range tenantIncs.Incidents {
		if inc.Nature == "Console <breach>" {
			opened = inc.ID
		}
	}
	if opened == "" {
		t.Fatalf("Acme was not notified of the incident opened in the console: %s", r.body)
	}
	do(t, ctx, "write an update", chromedp.SetValue(chromedp.CSS("#update-"+opened), "Fewer people than feared"))
	clickTo(t, ctx, `form[action$="/`+opened+`/updates"] button`, "#flash")
	r = srv.do(t, "GET", "/api/v1/incidents/"+opened, nil, "Authorization", "Bearer "+acme.SecretKey)
	if !strings.Contains(string(r.body), "Fewer people than feared") {
		t.Errorf("Acme's view of the incident lacks the console's update: %s", r.body)
	}
	checkAccessible(t, ctx, "the operator's incidents page with the open form")

	// The operator's session opens no tenant page.
	do(t, ctx, "open a tenant page as operator", chromedp.Navigate(srv.URL+"/console/requests"), chromedp.WaitVisible(chromedp.CSS("#error")))
	do(t, ctx, "back", chromedp.Navigate(srv.URL+"/console/operator"), chromedp.WaitVisible(chromedp.CSS("#signout")))
	clickTo(t, ctx, "#signout", "#operator-signin-form")

	// A tenant's session opens no operator page.
	tc := tab(t, root, "")
	signInConsole(t, tc, srv, "Ted", acme.SecretKey)
	do(t, tc, "open the operator page as a tenant", chromedp.Navigate(srv.URL+"/console/operator"), chromedp.WaitVisible(chromedp.CSS("#error")))
	if got := text(t, tc, "main"); strings.Contains(got, "Open incidents") {
		t.Errorf("a tenant sees the operator page: %q", got)
	}
	r = srv.do(t, "GET", "/admin/v1/audit", nil, "Authorization", "Bearer "+srv.cfg.token)
	if !strings.Contains(string(r.body), `"console:operator:Olga"`) || !strings.Contains(string(r.body), "console.signin") || !strings.Contains(string(r.body), "tenant.create") || !strings.Contains(string(r.body), "incident.close") ||
		!strings.Contains(string(r.body), "incident.open") || !strings.Contains(string(r.body), "incident.update") {
		t.Errorf("the operator's audit chain lacks Olga's sign-in, tenant creation or incident changes: %s", r.body)
	}
	var chain struct {
		Entries []struct {
			Actor, Action string
		} `json:"entries"`
	}
	mustDecode(t, r.body, &chain)
	for _, action := range []string{"incident.open", "incident.update", "incident.close"} {
		if !slices.ContainsFunc(chain.Entries, func(e struct{ Actor, Action string }) bool {
			return e.Action == action && e.Actor == "console:operator:Olga"
		}) {
			t.Errorf("no %s entry by console:operator:Olga in the operator's chain", action)
		}
	}
}
