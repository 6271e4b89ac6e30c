package main

// The real browser SDKs, @segment/analytics-next and
// @rudderstack/analytics-js from npm, in Debian's headless Chromium driven
// with chromedp. The pages (testdata/jsclients/pages) are served by a
// server of the test's on another port than Custos, so every call to
// Custos is cross-origin; Custos serves the SDKs' settings too, so the
// browser talks to nobody else — the test checks every request it made.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromiumPath finds Debian's chromium, or fails the test (never skips).
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "/usr/bin/chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium is needed for the browser client tests and was not found: apt-get install -y chromium (as .ci/run does)")
	return ""
}

// startChromium starts one headless Chromium for the test and returns a
// context that has run once; each page gets a child context, a tab in a
// browser context of its own (fresh cookies and storage). Host
// resolution outside 127.0.0.1 and localhost is switched off, so nothing can reach the
// internet even by mistake.
func startChromium(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"),
		chromedp.WindowSize(1280, 900), // the console's screenshots
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() }) // before the user data dir is removed
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// pageServer serves the test pages and the SDK builds from node_modules.
func pageServer(t *testing.T, dir string) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("GET /pages/", http.StripPrefix("/pages/", http.FileServer(http.Dir(filepath.Join(dir, "pages")))))
	segmentUMD := filepath.Join(dir, "node_modules/@segment/analytics-next/dist/umd")
	mux.Handle("GET /vendor/segment/", http.StripPrefix("/vendor/segment/", http.FileServer(http.Dir(segmentUMD))))
	// analytics.js loads its lazy chunks from here (window.analytics._cdn).
	mux.Handle("GET /analytics-next/bundles/", http.StripPrefix("/analytics-next/bundles/", http.FileServer(http.Dir(segmentUMD))))
	rudderUMD := filepath.Join(dir, "node_modules/@rudderstack/analytics-js/dist/npm/modern/bundled/umd")
	mux.Handle("GET /vendor/rudderstack/", http.StripPrefix("/vendor/rudderstack/", http.FileServer(http.Dir(rudderUMD))))
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// browserRequest is one request a page made, as Chromium reports it.
type browserRequest struct {
	Method, URL, Type string
	Status            int64
	Failed            string // errorText, CORS error included
}

// browserLog is what a tab did: its requests and console output.
type browserLog struct {
	mu       sync.Mutex
	requests map[network.RequestID]*browserRequest
	order    []network.RequestID
	console  []string
}

func (l *browserLog) listen(ev any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		// Chromium may report a request again (a CORS preflight
		// interposed, a redirect), even after its answer: keep the answer.
		if r, ok := l.requests[ev.RequestID]; ok {
			r.Method, r.URL = ev.Request.Method, ev.Request.URL
			break
		}
		l.order = append(l.order, ev.RequestID)
		l.requests[ev.RequestID] = &browserRequest{Method: ev.Request.Method, URL: ev.Request.URL, Type: string(ev.Type)}
	case *network.EventResponseReceived:
		if r := l.requests[ev.RequestID]; r != nil {
			r.Status = ev.Response.Status
		}
	case *network.EventLoadingFailed:
		if r := l.requests[ev.RequestID]; r != nil {
			r.Failed = ev.ErrorText
			if ev.CorsErrorStatus != nil {
				r.Failed += " CORS " + string(ev.CorsErrorStatus.CorsError)
			}
		}
	case *runtime.EventConsoleAPICalled:
		var parts []string
		for _, a := range ev.Args {
			parts = append(parts, string(a.Value)+a.Description)
		}
		l.console = append(l.console, string(ev.Type)+": "+strings.Join(parts, " "))
	case *runtime.EventExceptionThrown:
		l.console = append(l.console, "exception: "+ev.ExceptionDetails.Text+" "+descr(ev.ExceptionDetails.Exception))
	}
}

func descr(o *runtime.RemoteObject) string {
	if o == nil {
		return ""
	}
	return o.Description
}

func (l *browserLog) all() []browserRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]browserRequest, 0, len(l.order))
	for _, id := range l.order {
		out = append(out, *l.requests[id])
	}
	return out
}

// pending reports whether a request to origin has neither an answer nor a
// failure yet (beacons aside: their answers are not reported).
func (l *browserLog) pending(origin string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.requests {
		if strings.HasPrefix(r.URL, origin+"/") && r.Status == 0 && r.Failed == "" && r.Type != "Ping" {
			return true
		}
	}
	return false
}

func (l *browserLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, id := range l.order {
		r := l.requests[id]
		fmt.Fprintf(&b, "  %s %s [%s] %d %s\n", r.Method, r.URL, r.Type, r.Status, r.Failed)
	}
	for _, c := range l.console {
		fmt.Fprintf(&b, "  console %s\n", c)
	}
	return b.String()
}

// pageResult is window.__result of a test page.
type pageResult struct {
	Done        bool     `json:"done"`
	Errors      []string `json:"errors"`
	AnonymousID string   `json:"anonymousId"`
	MessageIDs  []string `json:"messageIds"`
}

// openPage loads pageURL in a new tab of its own browser context, waits
// for window.__result.done and returns the result, the tab's log and its
// context.
func openPage(t *testing.T, browser context.Context, pageURL string) (pageResult, *browserLog, context.Context) {
	t.Helper()
	log := &browserLog{requests: map[network.RequestID]*browserRequest{}}
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext(), chromedp.WithListener(log.listen))
	t.Cleanup(cancel)
	// The tab lives as long as the context of its first Run: ctx, without
	// a timeout, so that its events keep coming until the test ends.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	tctx, cancelTimeout := context.WithTimeout(ctx, 45*time.Second)
	defer cancelTimeout()
	if err := chromedp.Do(tctx, chromedp.Navigate(pageURL)); err != nil {
		t.Fatalf("open %s: %v\n%s", pageURL, err, log)
	}
	if _, err := chromedp.Run(tctx, chromedp.Poll[bool]("window.__result && window.__result.done", chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		t.Fatalf("%s: the SDK did not finish: %v\n%s", pageURL, err, log)
	}
	raw, err := chromedp.Run(tctx, chromedp.Evaluate[string]("JSON.stringify(window.__result)"))
	if err != nil {
		t.Fatalf("%s: read window.__result: %v", pageURL, err)
	}
	var res pageResult
	if err := json.Unmarshal([]byte(raw), &res); err != nil {
		t.Fatalf("%s: window.__result %s: %v", pageURL, raw, err)
	}
	if len(res.Errors) > 0 || res.AnonymousID == "" {
		t.Fatalf("%s: the SDK reports errors %q, anonymous id %q\n%s", pageURL, res.Errors, res.AnonymousID, log)
	}
	// Keep the tab open until the test ends: the RudderStack SDK delivers
	// after ready, from this tab.
	return res, log, ctx
}

// leavePage navigates the tab to about:blank, as a visitor leaving the site.
func leavePage(t *testing.T, tab context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("leave the page: %v", err)
	}
}

// browserVisitor is the person a page identifies, with a consent choice.
type browserVisitor struct {
	userID, email, name string
}

func newBrowserVisitor(label string) browserVisitor {
	r := randomHex(6)
	return browserVisitor{userID: "user-" + label + "-" + r, email: "Grace.Hopper." + r + "@Example.ORG", name: "Grace Hopper " + r}
}

// waitForEvents polls the management API until the visitor's subject holds
// n events, and returns its profile and events.
func waitForEvents(t *testing.T, srv *testServer, secretKey string, v browserVisitor, n int, log *browserLog) (profile, []event) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := srv.lookup(t, secretKey, "user_id", v.userID)
		if r.status == http.StatusOK {
			var p profile
			if err := json.Unmarshal(r.body, &p); err != nil {
				t.Fatalf("decode profile %s: %v", r.body, err)
			}
			evs := srv.events(t, secretKey, p.SubjectID, 0)
			if len(evs) >= n {
				return p, evs
			}
		} else if r.status != http.StatusNotFound {
			t.Fatalf("look up %s: status %d: %s", v.userID, r.status, r.body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %d events of %s stored within 30 s (lookup %d %s)\nbrowser:\n%s", n, v.userID, r.status, r.body, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkBrowserFlow checks what a page sent: one subject for the user id,
// the SDK's anonymous id and the e-mail; the identify traits; a page, an
// identify and a track with their content, the library, the browser's user
// agent; and the consent ledger the categories produced.
func checkBrowserFlow(t *testing.T, srv *testServer, secretKey string, v browserVisitor, res pageResult, log *browserLog, library string) {
	t.Helper()
	prof, evs := waitForEvents(t, srv, secretKey, v, 3, log)
	for _, lk := range []struct{ typ, value string }{{"anonymous_id", res.AnonymousID}, {"email", v.email}} {
		if got := srv.findProfile(t, secretKey, lk.typ, lk.value); got.SubjectID != prof.SubjectID {
			t.Errorf("lookup by %s %q: subject %s, want %s (the subject of user_id)", lk.typ, lk.value, got.SubjectID, prof.SubjectID)
		}
	}
	if want := []string{strings.ToLower(v.email)}; !slices.Equal(prof.Identifiers["email"], want) {
		t.Errorf("identifiers.email = %q, want %q", prof.Identifiers["email"], want)
	}
	for k, want := range map[string]string{"email": v.email, "name": v.name} {
		if got := prof.Traits[k]; !jsonEqual(got, mustJSON(t, want)) {
			t.Errorf("trait %s = %s, want %q", k, got, want)
		}
	}
	if len(evs) != 3 {
		t.Errorf("%d events stored, want 3 (page, identify, track): %+v", len(evs), evs)
	}
	byType := map[string]event{}
	for _, e := range evs {
		byType[e.Type] = e
		if e.AnonymousID != res.AnonymousID {
			t.Errorf("%s event: anonymous_id %q, want the SDK's %q", e.Type, e.AnonymousID, res.AnonymousID)
		}
		ctx := decodeObject(t, e.Type+" context", e.Context)
		lib, _ := ctx["library"].(map[string]any)
		if lib["name"] != library {
			t.Errorf("%s event: context.library = %v, want name %q", e.Type, ctx["library"], library)
		}
		if ua, _ := ctx["userAgent"].(string); !strings.Contains(ua, "Chrome") {
			t.Errorf("%s event: context.userAgent = %q, want Chromium's", e.Type, ua)
		}
	}
	if res.MessageIDs != nil {
		for _, id := range res.MessageIDs {
			if !slices.ContainsFunc(evs, func(e event) bool { return e.MessageID == id }) {
				t.Errorf("message %s the SDK sent is not stored", id)
			}
		}
	}
	if e := byType["page"]; e.Name != "Install" || !jsonEqual(e.Properties, []byte(`{"section":"browser"}`)) && !strings.Contains(string(e.Properties), `"section":"browser"`) {
		t.Errorf("page event: name %q properties %s, want Install with section browser", e.Name, e.Properties)
	}
	if e := byType["identify"]; e.UserID != v.userID {
		t.Errorf("identify event: user_id %q, want %q", e.UserID, v.userID)
	}
	if e := byType["track"]; e.Event != "Signed Up" || e.UserID != v.userID ||
		!strings.Contains(string(e.Properties), `"plan":"pro"`) || !strings.Contains(string(e.Properties), `"seats":3`) {
		t.Errorf("track event: %q user %q properties %s, want Signed Up by %s with plan pro, seats 3", e.Event, e.UserID, e.Properties, v.userID)
	}

	// The page said yes to analytics and no to marketing (through a mapped
	// category or a purpose's own name): one record each, from the SDK,
	// however many events repeated it.
	c := srv.consents(t, secretKey, prof.SubjectID)
	var got []string
	for _, r := range c.History {
		got = append(got, fmt.Sprintf("%s/%q=%v", r.Purpose, r.Channel, r.Granted))
		if r.Source != "sdk" || !strings.Contains(r.UserAgent, "Chrome") {
			t.Errorf("consent record %+v: want source sdk and Chromium's user agent", r)
		}
	}
	slices.Sort(got)
	if want := []string{`analytics/""=true`, `marketing/""=false`}; !slices.Equal(got, want) {
		t.Errorf("consent ledger = %v, want %v", got, want)
	}
	if s := c.status("analytics", "email"); s != "granted" {
		t.Errorf("analytics/email = %q, want granted", s)
	}
	if s := c.status("marketing", "email"); s != "withdrawn" {
		t.Errorf("marketing/email = %q, want withdrawn", s)
	}
}

// checkRequests checks how the page talked to Custos. Chromium's view:
// every request went to the page's server or to Custos, none failed (a
// missing CORS header fails a fetch or an XHR), preflights were answered
// 204 and everything else 200 (a beacon's answer is not shown to pages, so
// Chromium may report none; nor for what a page sends as it is left, when
// left is set). Custos' view, through the proxy in front of
// it: the calls are exactly want (method and path; preflights aside), each
// came from the page's origin, and each answer allowed that origin.
func checkRequests(t *testing.T, log *browserLog, proxy *recordingProxy, pageOrigin string, want []string, left bool) {
	t.Helper()
	// Custos may have stored a message before Chromium reports the answer.
	for deadline := time.Now().Add(10 * time.Second); !left && log.pending(proxy.URL) && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	for _, r := range log.all() {
		u, err := url.Parse(r.URL)
		if err != nil {
			t.Errorf("request to %q: %v", r.URL, err)
			continue
		}
		switch origin := u.Scheme + "://" + u.Host; origin {
		case pageOrigin:
			if r.Failed != "" {
				t.Errorf("%s %s failed: %s", r.Method, r.URL, r.Failed)
			}
		case proxy.URL:
			wantStatus := int64(http.StatusOK)
			if r.Method == http.MethodOptions {
				wantStatus = http.StatusNoContent
			}
			if r.Failed != "" || r.Status != wantStatus && !(r.Status == 0 && (r.Type == "Ping" || left)) {
				t.Errorf("%s %s: status %d, failure %q; want %d, readable across origins", r.Method, r.URL, r.Status, r.Failed, wantStatus)
			}
		default:
			t.Errorf("page made a request to %s (%s %s): only the page's server and Custos may be called", origin, r.Method, r.URL)
		}
	}
	// The proxy notes a call once Custos answered it, which can be after
	// the messages are readable through the API.
	calls := func() []string {
		var got []string
		for _, r := range proxy.recorded() {
			if r.Method != http.MethodOptions && !slices.Contains(got, r.call()) {
				got = append(got, r.call())
			}
		}
		slices.Sort(got)
		return got
	}
	want = slices.Sorted(slices.Values(want))
	for deadline := time.Now().Add(10 * time.Second); !slices.Equal(calls(), want) && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	for _, r := range proxy.recorded() {
		if r.Origin != pageOrigin || r.AllowOrigin != pageOrigin {
			t.Errorf("%s %s: Origin %q, Access-Control-Allow-Origin %q; want both %q", r.Method, r.Path, r.Origin, r.AllowOrigin, pageOrigin)
		}
		if r.Method == http.MethodOptions {
			if r.Status != http.StatusNoContent || !slices.Contains(want, "POST "+r.Path) && !slices.Contains(want, "GET "+r.Path) {
				t.Errorf("preflight OPTIONS %s answered %d; want 204, and only for a call in %q", r.Path, r.Status, want)
			}
			continue
		}
		if r.Status != http.StatusOK {
			t.Errorf("%s %s answered %d, want 200", r.Method, r.Path, r.Status)
		}
	}
	if got := calls(); !slices.Equal(got, want) {
		t.Errorf("calls to Custos = %q, want %q", got, want)
	}
	if t.Failed() {
		t.Logf("browser:\n%s", log)
	}
}

// TestBrowserClients loads Segment's analytics.js and RudderStack's
// JavaScript SDK, from npm, in headless Chromium on a page of another
// origin than Custos; each fetches its settings from Custos and sends a
// page, an identify and a track with consent categories, by its ordinary
// transport and by its batching or beacon one. Custos stores them all:
// read back through the management API with the secret key.
func TestBrowserClients(t *testing.T) {
	t.Parallel()
	dir := requireJSClients(t, "@segment/analytics-next", "@rudderstack/analytics-js")
	browser := startChromium(t)
	srv := startServer(t, newServerConfig(t))
	pages := pageServer(t, dir)
	if pages.URL == srv.URL {
		t.Fatal("the page and Custos share an origin; the test needs two")
	}

	for _, c := range []struct {
		name, page, library string
		query               url.Values
		calls               func(wk string) []string
		// leave: the page hands its events over and is left; the SDK
		// must send them as the page goes.
		leave bool
	}{
		{
			name: "segment", page: "segment.html", library: "analytics.js",
			query: url.Values{"consent": {`{"Analytics":true,"Advertising":false,"Functional":true}`}},
			calls: func(wk string) []string {
				return []string{"GET /v1/projects/" + wk + "/settings", "POST /v1/p", "POST /v1/i", "POST /v1/t"}
			},
		},
		{
			// Batching: the batch is not full and its timeout far off when
			// the page is left; analytics.js sends it to /v1/b with
			// keepalive, which outlives the page.
			name: "segment batching", page: "segment.html", library: "analytics.js",
			query: url.Values{"consent": {`{"Analytics":true,"Advertising":false}`}, "batching": {"1"}},
			calls: func(wk string) []string { return []string{"GET /v1/projects/" + wk + "/settings", "POST /v1/b"} },
			leave: true,
		},
		{
			name: "rudderstack", page: "rudderstack.html", library: "RudderLabs JavaScript SDK",
			query: url.Values{"allowed": {"C0002,functional"}, "denied": {"marketing"}},
			calls: func(string) []string {
				return []string{"GET /sourceConfig/", "POST /v1/page", "POST /v1/identify", "POST /v1/track"}
			},
		},
		{
			// The beacon queue's flush interval is far off when the page is
			// left; the SDK sends its events with navigator.sendBeacon to
			// /beacon/v1/batch?writeKey=… as the page goes.
			name: "rudderstack beacon", page: "rudderstack.html", library: "RudderLabs JavaScript SDK",
			query: url.Values{"allowed": {"analytics"}, "denied": {"C0004"}, "beacon": {"1"}},
			calls: func(string) []string { return []string{"GET /sourceConfig/", "POST /beacon/v1/batch"} },
			leave: true,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			tn := srv.createTenant(t, "browser-"+strings.ReplaceAll(c.name, " ", "-"))
			srv.patchSettings(t, tn.SecretKey, map[string]any{"consent_categories": map[string]string{
				"Advertising": "marketing", "C0004": "marketing", "C0002": "analytics",
			}})
			v := newBrowserVisitor(strings.ReplaceAll(c.name, " ", "-"))
			// Custos behind a proxy that notes every call the page makes.
			proxy := newRecordingProxy(t, srv.URL)
			q := url.Values{"custos": {proxy.URL}, "wk": {tn.WriteKey}, "user": {v.userID}, "email": {v.email}, "name": {v.name}}
			for k, vs := range c.query {
				q[k] = vs
			}
			res, log, tab := openPage(t, browser, pages.URL+"/pages/"+c.page+"?"+q.Encode())
			if c.leave {
				// Nothing was sent yet; leaving the page sends it all.
				for _, r := range proxy.recorded() {
					if r.Method != http.MethodGet && r.Method != http.MethodOptions {
						t.Errorf("before the page is left, Custos got %+v; want only the settings fetch", r)
					}
				}
				leavePage(t, tab)
			}
			checkBrowserFlow(t, srv, tn.SecretKey, v, res, log, c.library)
			checkRequests(t, log, proxy, pages.URL, c.calls(tn.WriteKey), c.leave)
		})
	}
}
