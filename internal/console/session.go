package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"

	"github.com/custos-dev/custos"
)

// session is one signed-in browser: a controller's user in the console, or
// a data subject in the privacy center.
type session struct {
	tenant  custos.TenantID
	user    string // console: the name the user signed in with
	csrf    string
	expires time.Time

	// Privacy center: the identifier the subject proved, and how.
	identity custos.Identifier
	via      string
}

// sessions are the live sessions of one kind, by the SHA-256 of their
// cookie value, so the map holds nothing a browser could present. They
// live in this node's memory: a restart signs everyone out.
type sessions struct {
	mu  sync.Mutex
	m   map[[32]byte]*session
	ttl time.Duration
	now func() time.Time
}

func newSessions(ttl time.Duration, now func() time.Time) *sessions {
	return &sessions{m: map[[32]byte]*session{}, ttl: ttl, now: now}
}

// randomToken returns n random bytes, base64url.
func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// start stores s and returns the cookie value that names it.
func (ss *sessions) start(s *session) string {
	token := randomToken(32)
	s.csrf = randomToken(32)
	s.expires = ss.now().Add(ss.ttl)
	ss.mu.Lock()
	defer ss.mu.Unlock()
	now := ss.now()
	for k, v := range ss.m { // drop expired sessions as new ones come
		if now.After(v.expires) {
			delete(ss.m, k)
		}
	}
	ss.m[sha256.Sum256([]byte(token))] = s
	return token
}

// get returns the live session a cookie value names.
func (ss *sessions) get(token string) (*session, bool) {
	if token == "" {
		return nil, false
	}
	k := sha256.Sum256([]byte(token))
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.m[k]
	if !ok {
		return nil, false
	}
	if ss.now().After(s.expires) {
		delete(ss.m, k)
		return nil, false
	}
	return s, true
}

// end revokes the session a cookie value names.
func (ss *sessions) end(token string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, sha256.Sum256([]byte(token)))
}

// endSubject revokes every privacy-center session of one identity (after
// its erasure).
func (ss *sessions) endIdentity(t custos.TenantID, id custos.Identifier) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for k, s := range ss.m {
		if s.tenant == t && s.identity == id {
			delete(ss.m, k)
		}
	}
}

// sameToken compares two CSRF tokens in constant time; empty never matches.
func sameToken(a, b string) bool {
	return a != "" && b != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// setCookie sets a session cookie: HttpOnly, SameSite=Strict, Secure under
// TLS, limited to path, expiring with the session (maxAge < 0 deletes it).
func setCookie(w http.ResponseWriter, r *http.Request, secure bool, name, value, path string, maxAge time.Duration) {
	c := &http.Cookie{Name: name, Value: value, Path: path, HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: secure || r.TLS != nil}
	if maxAge < 0 {
		c.MaxAge = -1
	} else {
		c.MaxAge = int(maxAge / time.Second)
	}
	http.SetCookie(w, c)
}

// limiter allows n events per key in each window.
type limiter struct {
	mu     sync.Mutex
	n      int
	window time.Duration
	now    func() time.Time
	seen   map[string][]time.Time
}

func newLimiter(n int, window time.Duration, now func() time.Time) *limiter {
	return &limiter{n: n, window: window, now: now, seen: map[string][]time.Time{}}
}

// allow records an event for key and reports whether it is within the limit.
func (l *limiter) allow(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.seen) > 100000 { // bound the memory an attacker can make us use
		for k, ts := range l.seen {
			if now.Sub(ts[len(ts)-1]) > l.window {
				delete(l.seen, k)
			}
		}
	}
	kept := l.seen[key][:0]
	for _, t := range l.seen[key] {
		if now.Sub(t) < l.window {
			kept = append(kept, t)
		}
	}
	if len(kept) >= l.n {
		l.seen[key] = kept
		return false
	}
	l.seen[key] = append(kept, now)
	return true
}

// links are the one-time sign-in links of the privacy center, by the
// SHA-256 of their token.
type links struct {
	mu  sync.Mutex
	m   map[[32]byte]link
	ttl time.Duration
	now func() time.Time
}

type link struct {
	tenant   custos.TenantID
	identity custos.Identifier
	expires  time.Time
}

func newLinks(ttl time.Duration, now func() time.Time) *links {
	return &links{m: map[[32]byte]link{}, ttl: ttl, now: now}
}

func (ls *links) issue(t custos.TenantID, id custos.Identifier) string {
	token := randomToken(32)
	ls.mu.Lock()
	defer ls.mu.Unlock()
	now := ls.now()
	for k, v := range ls.m {
		if now.After(v.expires) {
			delete(ls.m, k)
		}
	}
	ls.m[sha256.Sum256([]byte(token))] = link{tenant: t, identity: id, expires: now.Add(ls.ttl)}
	return token
}

// redeem uses a token up: it answers ok once, and only before it expires.
func (ls *links) redeem(t custos.TenantID, token string) (custos.Identifier, bool) {
	k := sha256.Sum256([]byte(token))
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l, ok := ls.m[k]
	if !ok || l.tenant != t {
		return custos.Identifier{}, false
	}
	delete(ls.m, k)
	if ls.now().After(l.expires) {
		return custos.Identifier{}, false
	}
	return l.identity, true
}

// valid reports whether a token would be redeemed, without using it up.
func (ls *links) valid(t custos.TenantID, token string) bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l, ok := ls.m[sha256.Sum256([]byte(token))]
	return ok && l.tenant == t && !ls.now().After(l.expires)
}
