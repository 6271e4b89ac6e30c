package console

import (
	"crypto/tls"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/custos-dev/custos"
)

// clock is a settable time source.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestLinksExpireAndWorkOnce(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	ls := newLinks(LinkTTL, c.now)
	a, b := custos.TenantID{1}, custos.TenantID{2}
	id := custos.Identifier{Type: custos.Email, Value: "mia@example.com"}

	tok := ls.issue(a, id)
	if _, ok := ls.redeem(b, tok); ok {
		t.Errorf("another tenant redeemed tenant a's link")
	}
	// The failed attempt of the other tenant did not use it up.
	if got, ok := ls.redeem(a, tok); !ok || got != id {
		t.Fatalf("redeem a fresh link = %v, %v; want %v, true", got, ok, id)
	}
	if _, ok := ls.redeem(a, tok); ok {
		t.Errorf("a link worked twice")
	}

	tok = ls.issue(a, id)
	c.t = c.t.Add(LinkTTL - time.Second)
	if !ls.valid(a, tok) {
		t.Errorf("a link is invalid a second before it expires")
	}
	c.t = c.t.Add(2 * time.Second)
	if ls.valid(a, tok) {
		t.Errorf("valid() = true after expiry")
	}
	if _, ok := ls.redeem(a, tok); ok {
		t.Errorf("an expired link worked")
	}
}

func TestSessionsExpireAndEnd(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	ss := newSessions(time.Hour, c.now)
	tok := ss.start(&session{tenant: custos.TenantID{1}, user: "Ada"})
	s, ok := ss.get(tok)
	if !ok || s.user != "Ada" || len(s.csrf) < 32 {
		t.Fatalf("get a new session = %+v, %v; want Ada's, with a CSRF token", s, ok)
	}
	if _, ok := ss.get(tok + "x"); ok {
		t.Errorf("another token opened the session")
	}
	ss.end(tok)
	if _, ok := ss.get(tok); ok {
		t.Errorf("an ended session still opens")
	}
	tok = ss.start(&session{tenant: custos.TenantID{1}, user: "Ada"})
	c.t = c.t.Add(time.Hour + time.Second)
	if _, ok := ss.get(tok); ok {
		t.Errorf("a session opens after it expired")
	}
}

func TestLimiter(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	l := newLimiter(3, time.Minute, c.now)
	for i := range 3 {
		if !l.allow("k") {
			t.Fatalf("attempt %d refused; want 3 allowed", i+1)
		}
	}
	if l.allow("k") {
		t.Errorf("4th attempt within the window allowed")
	}
	if !l.allow("other") {
		t.Errorf("another key was limited")
	}
	c.t = c.t.Add(time.Minute)
	if !l.allow("k") {
		t.Errorf("attempt after the window refused")
	}
}

func TestCookieSecureUnderTLS(t *testing.T) {
	for _, tc := range []struct {
		name         string
		tls, forced  bool
		wantSecure   bool
		wantSameSite string
	}{
		{"plain", false, false, false, "Strict"},
		{"tls", true, false, true, "Strict"},
		{"proxy", false, true, true, "Strict"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/console", nil)
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			}
			w := httptest.NewRecorder()
			setCookie(w, r, tc.forced, consoleCookie, "v", "/console", time.Hour)
			c := w.Result().Cookies()[0]
			if c.Secure != tc.wantSecure || !c.HttpOnly || c.MaxAge != 3600 || c.Path != "/console" {
				t.Errorf("cookie %+v; want Secure=%v, HttpOnly, Max-Age 3600, Path /console", c, tc.wantSecure)
			}
			if got := w.Header().Get("Set-Cookie"); !strings.Contains(got, "SameSite="+tc.wantSameSite) {
				t.Errorf("Set-Cookie %q; want SameSite=%s", got, tc.wantSameSite)
			}
		})
	}
}

func TestNegotiate(t *testing.T) {
	for _, tc := range []struct{ header, want string }{
		{"", "en"},
		{"de-DE,de;q=0.9,en;q=0.8", "de"},
		{"fr-CH, fr;q=0.9, en;q=0.8", "fr"},
		{"es-ES,es;q=0.9,fr;q=0.5,de;q=0.7", "de"},
		{"ja", "en"},
		{"en;q=0.1,fr;q=0.9", "fr"},
	} {
		if got := negotiate(tc.header); got != tc.want {
			t.Errorf("negotiate(%q) = %q, want %q", tc.header, got, tc.want)
		}
	}
}

// TestCataloguesComplete checks every language has every text, with the
// same format verbs.
func TestCataloguesComplete(t *testing.T) {
	for _, lang := range languages {
		for key, en := range catalogues["en"] {
			s, ok := catalogues[lang][key]
			if !ok {
				t.Errorf("%s lacks %q", lang, key)
				continue
			}
			if strings.Count(s, "%") != strings.Count(en, "%") {
				t.Errorf("%s %q has other format verbs than English: %q vs %q", lang, key, s, en)
			}
		}
		for key := range catalogues[lang] {
			if _, ok := catalogues["en"][key]; !ok {
				t.Errorf("%s has %q, which English lacks", lang, key)
			}
		}
	}
	if !slices.Equal(languages, []string{"en", "de", "fr"}) {
		t.Errorf("languages = %v", languages)
	}
}

func TestTextContrast(t *testing.T) {
	for _, c := range []string{"#000000", "#ffffff", "#0b4f9c", "#ffcc00", "#777777", "#12a4d9", "#e91e63"} {
		if r := contrast(c, textOn(c)); r < 4.5 {
			t.Errorf("text %s on %s has contrast %.2f; want at least 4.5", textOn(c), c, r)
		}
	}
	if r := contrast("#000000", "#ffffff"); r < 20.9 || r > 21.1 {
		t.Errorf("contrast(black, white) = %.2f, want 21", r)
	}
}

func TestTemplatesParse(t *testing.T) {
	h, err := New(Deps{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"signin", "requests", "request", "error", "privacy_signin", "privacy_enter", "privacy_me", "privacy_erase", "privacy_message"} {
		if h.pages[p] == nil {
			t.Errorf("page %s is missing", p)
		}
	}
}
