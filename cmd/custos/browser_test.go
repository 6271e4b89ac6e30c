package main

// This file is the console's browser harness over startChromium (in
// browser_clients_e2e_test.go: the Debian chromium package, nothing
// downloads a browser), each flow in its own browser context (its own
// cookies).

import (
	"context"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/custos-dev/custos/internal/mail/mailtest"
	"github.com/custos-dev/custos/internal/testenv"
)

// tab opens a tab in a new browser context (fresh cookies) whose actions
// fail after limit; downloads go to dir.
func tab(t *testing.T, root context.Context, dir string) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(root, chromedp.WithNewBrowserContext())
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		t.Fatalf("open a tab: %v", err)
	}
	if dir != "" {
		_, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
			Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir,
			BrowserContextID: chromedp.FromContext(ctx).BrowserContextID})
		if err != nil {
			cancel()
			t.Fatalf("allow downloads: %v", err)
		}
	}
	tctx, cancelT := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelT(); cancel() })
	return tctx
}

// do runs browser steps or fails the test, naming what it was doing.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("browser: %s: %v", what, err)
	}
}

// text returns the text of the first element sel matches.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("browser: text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

// location returns the page's URL.
func location(t *testing.T, ctx context.Context) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatalf("browser: location: %v", err)
	}
	return s
}

// clickTo clicks sel and waits for the next page to load and show next.
func clickTo(t *testing.T, ctx context.Context, sel, next string) {
	t.Helper()
	do(t, ctx, "click "+sel+", wait for "+next,
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Evaluate[chromedp.Void]("window.__custosOld = true")(ctx, tg)
			return err
		}),
		chromedp.Click(chromedp.CSS(sel)),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			// The old page goes away while we ask: errors mean "not yet".
			for {
				done, err := chromedp.Evaluate[bool]("!window.__custosOld && document.readyState === 'complete'")(ctx, tg)
				if err == nil && done {
					return nil
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(50 * time.Millisecond):
				}
			}
		}),
		chromedp.WaitVisible(chromedp.CSS(next)))
}

// screenshot saves a full-page PNG as name in docs/screenshots when
// CUSTOS_SCREENSHOTS=1, and in a temporary directory otherwise.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("browser: screenshot %s: %v", name, err)
	}
	dir := t.TempDir()
	if os.Getenv("CUSTOS_SCREENSHOTS") == "1" {
		dir = filepath.Join("..", "..", "docs", "screenshots")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitFile waits for a finished download in dir whose name ends with suffix.
func waitFile(t *testing.T, dir, suffix string) string {
	t.Helper()
	found := ""
	testenv.Poll(t, 30*time.Second, "a finished download ending in "+suffix+" in "+dir, func() bool {
		entries, _ := os.ReadDir(dir)
		found = ""
		for _, e := range entries {
			// Chromium reserves the final name with an empty file while
			// it writes to a .crdownload one, then renames that over it.
			if strings.HasSuffix(e.Name(), ".crdownload") {
				return false
			}
			if info, err := e.Info(); err == nil && strings.HasSuffix(e.Name(), suffix) && info.Size() > 0 {
				found = filepath.Join(dir, e.Name())
			}
		}
		return found != ""
	})
	return found
}

// mailText returns the decoded plain-text body of a received message.
func mailText(t *testing.T, m mailtest.Message) string {
	t.Helper()
	msg, err := mail.ReadMessage(strings.NewReader(string(m.Data)))
	if err != nil {
		t.Fatalf("parse mail: %v", err)
	}
	ct, params, _ := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	decode := func(enc string, b []byte) string {
		if strings.EqualFold(enc, "quoted-printable") {
			out, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(string(b))))
			if err != nil {
				t.Fatalf("decode quoted-printable: %v", err)
			}
			return string(out)
		}
		return string(b)
	}
	if strings.HasPrefix(ct, "multipart/") {
		mr := multipart.NewReader(msg.Body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				t.Fatalf("no text/plain part in the mail: %v", err)
			}
			if strings.HasPrefix(p.Header.Get("Content-Type"), "text/plain") {
				b, _ := io.ReadAll(p)
				return decode(p.Header.Get("Content-Transfer-Encoding"), b)
			}
		}
	}
	b, _ := io.ReadAll(msg.Body)
	return decode(msg.Header.Get("Content-Transfer-Encoding"), b)
}
