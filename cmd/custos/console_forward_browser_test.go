package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserOpenDSRForward: a request forwarded to an OpenDSR recipient
// (a second Custos, the processor) shows the forward's progress and
// outcome on the controller's console page.
func TestBrowserOpenDSRForward(t *testing.T) {
	root := startChromium(t)
	bCfg := newServerConfig(t)
	bCfg.extraArgs = []string{"--opendsr-allow-http-callbacks"}
	b := startServer(t, bCfg)
	tb := b.createTenant(t, "processor-b")
	_, bCertPEM := processorKey(t, b.cfg.dir)
	bProxy := newSwitchProxy(t, false)
	bProxy.point(t, b.URL)
	aFront := newSwitchProxy(t, false)
	aCfg := newServerConfig(t)
	aCfg.extraArgs = []string{"--public-url", aFront.srv.URL, "--opendsr-poll-interval", "1h"}
	a := startServer(t, aCfg)
	aFront.point(t, a.URL)
	ta := a.createTenant(t, "controller-a")
	user := "fwd-" + randomHex(6)
	for _, s := range []struct {
		srv *testServer
		key string
	}{{a, ta.WriteKey}, {b, tb.WriteKey}} {
		s.srv.ingest(t, s.key, "/v1/batch", batchBody(t, "", trackMessages(user, "m-"+randomHex(4), 2)))
	}
	if r := addOpenDSRRecipient(t, a, ta.SecretKey, map[string]any{"name": "custos-b", "kind": "opendsr", "url": bProxy.srv.URL + "/opendsr/v2",
		"secret": tb.SecretKey, "domain": "localhost", "certificate_pem": string(bCertPEM), "region": "eu"}); r.status != http.StatusCreated {
		t.Fatalf("add the OpenDSR recipient: %d %s", r.status, r.body)
	}
	id := createErasure(t, a, ta.SecretKey, user)
	_, f := waitForward(t, a, ta.SecretKey, id, "custos-b", 10*time.Second, func(f forwardView) bool { return f.Status == "completed" })

	ctx := tab(t, root, "")
	signInConsole(t, ctx, a, "Fay", ta.SecretKey)
	do(t, ctx, "open the forwarded request", chromedp.Navigate(a.URL+"/console/requests/"+id), chromedp.WaitVisible(chromedp.CSS("#forwards")))
	forwards := text(t, ctx, "#forwards")
	if !strings.Contains(forwards, "custos-b") || !strings.Contains(forwards, f.SubjectRequestID) || !strings.Contains(forwards, "completed") {
		t.Errorf("forwards table %q; want custos-b, its request %s, completed", forwards, f.SubjectRequestID)
	}
	if got := text(t, ctx, "#recipient-outcomes"); !strings.Contains(got, "custos-b") || !strings.Contains(got, "completed") {
		t.Errorf("recipient outcomes %q; want custos-b completed", got)
	}
	checkAccessible(t, ctx, "the console's forwarded request page")
}
