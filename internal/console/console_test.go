package console

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/pebble"
)

// clock is a settable time source.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// openStore opens an empty embedded store for the sessions.
func openStore(t *testing.T) custos.SessionStore {
	t.Helper()
	st, err := pebble.Open(t.TempDir(), pebble.Options{CacheSize: 1 << 20, MemTableSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestLinksExpireAndWorkOnce(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	st := openStore(t)
	ls := newLinks(st, LinkTTL, c.now, slog.New(slog.DiscardHandler))
	// A second node's handler: links are in the store, not in ls.
	other := newLinks(st, LinkTTL, c.now, slog.New(slog.DiscardHandler))
	a, b := custos.TenantID{1}, custos.TenantID{2}
	id := custos.Identifier{Type: custos.Email, Value: "mia@example.com"}
	ctx := t.Context()

	tok, err := ls.issue(ctx, a, id, "mia")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := other.redeem(ctx, b, tok); ok || err != nil {
		t.Errorf("another tenant redeemed tenant a's link: %v, %v", ok, err)
	}
	// The failed attempt of the other tenant did not use it up.
	if got, ok, err := other.redeem(ctx, a, tok); !ok || err != nil || got != id {
		t.Fatalf("redeem a fresh link on another node = %v, %v, %v; want %v, true, nil", got, ok, err, id)
	}
	if _, ok, _ := ls.redeem(ctx, a, tok); ok {
		t.Errorf("a link worked twice")
	}

	tok, _ = ls.issue(ctx, a, id, "mia")
	rec, err := st.Session(ctx, a, custos.SessionLink, tokenHash(tok), c.t)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(rec.Sealed, []byte(id.Value)) || rec.Holder == id.Value || rec.Hash == [32]byte{} {
		t.Errorf("the stored link %+v shows the address", rec)
	}
	c.t = c.t.Add(LinkTTL - time.Second)
	if ok, err := other.valid(ctx, a, tok); !ok || err != nil {
		t.Errorf("a link is invalid a second before it expires: %v, %v", ok, err)
	}
	c.t = c.t.Add(2 * time.Second)
	if ok, _ := other.valid(ctx, a, tok); ok {
		t.Errorf("valid() = true after expiry")
	}
	if _, ok, _ := other.redeem(ctx, a, tok); ok {
		t.Errorf("an expired link worked")
	}
}

func TestSessionsExpireAndEnd(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	st := openStore(t)
	log := slog.New(slog.DiscardHandler)
	ss := newSessions(st, custos.SessionPrivacy, time.Hour, c.now, log)
	other := newSessions(st, custos.SessionPrivacy, time.Hour, c.now, log)
	ctx := t.Context()
	id := custos.Identifier{Type: custos.Email, Value: "ada@example.com"}
	tok, err := ss.start(ctx, &session{tenant: custos.TenantID{1}, identity: id, via: "email-link", holder: "h"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := other.get(ctx, tok)
	if s == nil || err != nil || s.identity != id || s.via != "email-link" || len(s.csrf) < 32 {
		t.Fatalf("get a new session on another node = %+v, %v; want Ada's, with a CSRF token", s, err)
	}
	if s2, _ := other.get(ctx, tok); s2 == nil || s2.csrf != s.csrf {
		t.Errorf("the CSRF token changed between reads")
	}
	rec, err := st.Session(ctx, custos.TenantID{1}, custos.SessionPrivacy, tokenHash(tok), c.t)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(rec.Sealed, []byte(id.Value)) || bytes.Contains(rec.Sealed, []byte(tok)) {
		t.Errorf("the stored session shows the address or the token")
	}
	for _, bad := range []string{tok + "x", "", "x" + tok, custos.TenantID{2}.String() + tok[strings.IndexByte(tok, '.'):]} {
		if s, _ := other.get(ctx, bad); s != nil {
			t.Errorf("token %q opened the session", bad)
		}
	}
	if err := other.end(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if s, _ := ss.get(ctx, tok); s != nil {
		t.Errorf("a session ended on another node still opens")
	}
	if ok, err := ss.update(ctx, tok, s); ok || err != nil {
		t.Errorf("update of an ended session = %v, %v; want false, nil", ok, err)
	}
	tok, _ = ss.start(ctx, &session{tenant: custos.TenantID{1}, identity: id, holder: "h"})
	c.t = c.t.Add(time.Hour + time.Second)
	if s, _ := other.get(ctx, tok); s != nil {
		t.Errorf("a session opens after it expired")
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
	h, err := New(Deps{Sessions: openStore(t), Hasher: testHasher{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"signin", "requests", "request", "error", "privacy_signin", "privacy_enter", "privacy_me", "privacy_erase", "privacy_message",
		"signin_user", "signin_operator", "account", "users", "incidents", "incident", "operator", "operator_incidents", "campaigns", "campaign", "consents", "settings"} {
		if h.pages[p] == nil {
			t.Errorf("page %s is missing", p)
		}
	}
}

// testHasher hashes under one fixed key.
type testHasher struct{}

func (testHasher) HashValue(t custos.TenantID, domain string, v []byte) ([32]byte, error) {
	m := hmac.New(sha256.New, t[:])
	m.Write([]byte(domain))
	m.Write(v)
	return [32]byte(m.Sum(nil)), nil
}

func TestSessionsListAndRevoke(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	st := openStore(t)
	log := slog.New(slog.DiscardHandler)
	// Two nodes' handles on one store.
	ss := newSessions(st, custos.SessionConsole, time.Hour, c.now, log)
	other := newSessions(st, custos.SessionConsole, time.Hour, c.now, log)
	ctx := t.Context()
	a, b := custos.TenantID{1}, custos.TenantID{2}
	start := func(ss *sessions, ten custos.TenantID, user, how string) string {
		t.Helper()
		tok, err := ss.start(ctx, &session{tenant: ten, user: user, how: how, holder: how + ":" + user})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	admin := start(ss, a, "root", "secret-key")
	mia := start(other, a, "mia", "user")
	start(ss, b, "mia", "user")
	list, err := ss.of(ctx, a, admin)
	if err != nil || len(list) != 2 {
		t.Fatalf("tenant a's sessions: %+v, %v; want 2", list, err)
	}
	var miaID string
	for _, s := range list {
		if s.Current != (s.User == "root") {
			t.Errorf("session %+v: Current wrong", s)
		}
		if s.User == "mia" {
			miaID = s.ID
		}
		if strings.Contains(mia, s.ID) || strings.Contains(admin, s.ID) {
			t.Errorf("a session's public id %q is part of its cookie", s.ID)
		}
	}
	if _, ok, _ := other.revoke(ctx, b, miaID); ok {
		t.Errorf("tenant b revoked tenant a's session")
	}
	if _, ok, err := other.revoke(ctx, a, miaID); !ok || err != nil {
		t.Fatalf("revoke mia's session = %v, %v", ok, err)
	}
	if s, _ := ss.get(ctx, mia); s != nil {
		t.Errorf("a session revoked on another node still opens")
	}
	if err := other.endHolder(ctx, b, "user:mia"); err != nil {
		t.Fatal(err)
	}
	if l, _ := ss.of(ctx, b, ""); len(l) != 0 {
		t.Errorf("tenant b's mia still has a session after endHolder")
	}
	if s, _ := ss.get(ctx, admin); s == nil {
		t.Errorf("the admin's session ended with the others")
	}
}

// TestAttemptTakeAndForget: take records attempts up to the limit and
// refuses, recording nothing, beyond it; a forgotten attempt (a sign-in
// that succeeded) frees its place; the window ends them. Here for a
// client address, which belongs to no tenant and is counted under
// custos.OperatorChain.
func TestAttemptTakeAndForget(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	st := openStore(t)
	l := newAttempts(st, testHasher{}, "signin-address", 2, time.Minute, c.now)
	ctx := t.Context()
	take := func(addr string, want bool) *attempt {
		t.Helper()
		at, err := l.take(ctx, custos.OperatorChain, addr)
		if (at != nil) != want || err != nil {
			t.Fatalf("take(%s) = %v, %v; want taken %v", addr, at, err, want)
		}
		return at
	}
	first := take("203.0.113.7", true)
	take("203.0.113.7", true)
	take("203.0.113.7", false)
	take("203.0.113.8", true) // another address
	if err := first.forget(ctx); err != nil {
		t.Fatal(err)
	}
	take("203.0.113.7", true)
	take("203.0.113.7", false)
	if n, err := st.CountHolderSessions(ctx, custos.OperatorChain, custos.SessionAttempt, mustHolder(t, l, "203.0.113.7"), c.t); n != 2 || err != nil {
		t.Errorf("attempts recorded for the address: %d, %v; want 2 (refused ones are not recorded)", n, err)
	}
	c.t = c.t.Add(time.Minute + time.Second)
	take("203.0.113.7", true)
}

func mustHolder(t *testing.T, a *attempts, key string) string {
	t.Helper()
	h, err := a.holder(custos.OperatorChain, key)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestAttemptsCountAcrossNodes(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	st := openStore(t)
	nodeA := newAttempts(st, testHasher{}, "link", 3, time.Minute, c.now)
	nodeB := newAttempts(st, testHasher{}, "link", 3, time.Minute, c.now)
	ctx := t.Context()
	ten, other := custos.TenantID{1}, custos.TenantID{2}
	for i, n := range []*attempts{nodeA, nodeB, nodeA} {
		if ok, err := n.allow(ctx, ten, "mia@example.com"); !ok || err != nil {
			t.Fatalf("attempt %d = %v, %v; want allowed", i+1, ok, err)
		}
	}
	if ok, _ := nodeB.allow(ctx, ten, "mia@example.com"); ok {
		t.Errorf("4th attempt within the window, on another node, allowed")
	}
	if ok, _ := nodeB.allow(ctx, ten, "max@example.com"); !ok {
		t.Errorf("another key was limited")
	}
	if ok, _ := nodeB.allow(ctx, other, "mia@example.com"); !ok {
		t.Errorf("another tenant's key was limited")
	}
	if recs, _ := st.Sessions(ctx, ten, custos.SessionAttempt, c.t); len(recs) == 0 || strings.Contains(recs[0].Holder, "mia") {
		t.Errorf("attempt records %+v: want some, naming the key only by a keyed hash", recs)
	}
	c.t = c.t.Add(time.Minute + time.Second)
	if ok, err := nodeA.allow(ctx, ten, "mia@example.com"); !ok || err != nil {
		t.Errorf("attempt after the window = %v, %v; want allowed", ok, err)
	}
}
