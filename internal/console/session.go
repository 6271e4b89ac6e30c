package console

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
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

	// Console: how the user signed in (audit.ConsoleUser, ...), whether
	// they are an admin, from where, and since when.
	how     string
	admin   bool
	ip      string
	agent   string
	started time.Time
	// pendingTOTP is a second factor being set up, until confirmed.
	pendingTOTP []byte

	// Privacy center: the identifier the subject proved, and how.
	identity custos.Identifier
	via      string
	// holder is whose session it is (custos.Session.Holder).
	holder string
}

// sealedPart is what of a session only its token opens: the store keeps
// it sealed with a key derived from the token, which the store never
// sees, so the identifier a data subject proved or a second factor being
// set up cannot be read from the database.
type sealedPart struct {
	IDType      custos.IdentifierType `json:"t,omitempty"`
	IDValue     string                `json:"v,omitempty"`
	Via         string                `json:"via,omitempty"`
	PendingTOTP []byte                `json:"totp,omitempty"`
}

// sessions are the sessions of one kind. They live in the store, not in
// this node's memory, so any node serves a session another started, and
// ending one on any node ends it everywhere; every request reads its
// session from the store. The store knows a session by the SHA-256 of
// its token only.
type sessions struct {
	st   custos.SessionStore
	kind string
	ttl  time.Duration
	now  func() time.Time
	log  *slog.Logger
}

func newSessions(st custos.SessionStore, kind string, ttl time.Duration, now func() time.Time, log *slog.Logger) *sessions {
	return &sessions{st: st, kind: kind, ttl: ttl, now: now, log: log}
}

// randomToken returns n random bytes, base64url.
func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// newToken returns a session token: the tenant's id, a dot and 32 random
// bytes. The id lets a node find the session under its tenant in the
// store; the random part is the secret.
func newToken(t custos.TenantID) string { return t.String() + "." + randomToken(32) }

// tokenTenant returns the tenant a token names.
func tokenTenant(token string) (custos.TenantID, bool) {
	id, _, ok := strings.Cut(token, ".")
	if !ok {
		return custos.TenantID{}, false
	}
	t, err := custos.ParseTenantID(id)
	return t, err == nil
}

// derive returns a key derived from a token for one purpose.
func derive(token, purpose string) []byte {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("custos session " + purpose))
	return m.Sum(nil)
}

// csrfOf is a session's CSRF token, derived from its token so that no
// node needs to keep it.
func csrfOf(token string) string { return base64.RawURLEncoding.EncodeToString(derive(token, "csrf")) }

// seal seals p with the key token derives, bound to the session's kind
// and hash.
func seal(token, kind string, hash [32]byte, p sealedPart) ([]byte, error) {
	plain, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	aead, err := sessionAEAD(token)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	return aead.Seal(nonce, nonce, plain, append([]byte(kind), hash[:]...)), nil
}

func unseal(token, kind string, hash [32]byte, sealed []byte) (sealedPart, error) {
	var p sealedPart
	aead, err := sessionAEAD(token)
	if err != nil {
		return p, err
	}
	if len(sealed) < aead.NonceSize() {
		return p, errors.New("sealed session part too short")
	}
	plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], append([]byte(kind), hash[:]...))
	if err != nil {
		return p, fmt.Errorf("open sealed session part: %w", err)
	}
	return p, json.Unmarshal(plain, &p)
}

func sessionAEAD(token string) (cipher.AEAD, error) {
	block, err := aes.NewCipher(derive(token, "seal"))
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func tokenHash(token string) [32]byte { return sha256.Sum256([]byte(token)) }

// start stores s and returns the token that names it. Each start also
// deletes a bounded number of expired sessions of any tenant, so that
// sessions nobody signs out of do not pile up.
func (ss *sessions) start(ctx context.Context, s *session) (string, error) {
	token := newToken(s.tenant)
	hash := tokenHash(token)
	s.csrf = csrfOf(token)
	s.started = ss.now()
	s.expires = s.started.Add(ss.ttl)
	sealed, err := seal(token, ss.kind, hash, sealedPart{IDType: s.identity.Type, IDValue: s.identity.Value, Via: s.via, PendingTOTP: s.pendingTOTP})
	if err != nil {
		return "", err
	}
	if n, err := ss.st.DeleteExpiredSessions(ctx, s.started, 100); err != nil {
		ss.log.Warn("console: delete expired sessions", "err", err)
	} else if n > 0 {
		ss.log.Debug("console: deleted expired sessions", "n", n)
	}
	err = ss.st.CreateSession(ctx, &custos.Session{Tenant: s.tenant, Kind: ss.kind, Hash: hash, Holder: s.holder,
		User: s.user, How: s.how, IP: s.ip, Agent: s.agent, Created: s.started, Expires: s.expires, Sealed: sealed})
	if err != nil {
		return "", err
	}
	return token, nil
}

// get returns the live session a token names: nil and no error if there
// is none; an error if the store could not tell.
func (ss *sessions) get(ctx context.Context, token string) (*session, error) {
	t, ok := tokenTenant(token)
	if !ok {
		return nil, nil
	}
	hash := tokenHash(token)
	rec, err := ss.st.Session(ctx, t, ss.kind, hash, ss.now())
	if custos.ErrorCode(err) == custos.NotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	p, err := unseal(token, ss.kind, hash, rec.Sealed)
	if err != nil {
		return nil, err
	}
	return &session{tenant: rec.Tenant, user: rec.User, csrf: csrfOf(token), expires: rec.Expires, how: rec.How,
		ip: rec.IP, agent: rec.Agent, started: rec.Created, pendingTOTP: p.PendingTOTP,
		identity: custos.Identifier{Type: p.IDType, Value: p.IDValue}, via: p.Via, holder: rec.Holder}, nil
}

// update stores the sealed part of s again (a second factor being set
// up); it reports false if the session ended meanwhile.
func (ss *sessions) update(ctx context.Context, token string, s *session) (bool, error) {
	hash := tokenHash(token)
	sealed, err := seal(token, ss.kind, hash, sealedPart{IDType: s.identity.Type, IDValue: s.identity.Value, Via: s.via, PendingTOTP: s.pendingTOTP})
	if err != nil {
		return false, err
	}
	err = ss.st.UpdateSession(ctx, s.tenant, ss.kind, hash, sealed, ss.now())
	if custos.ErrorCode(err) == custos.NotFound {
		return false, nil
	}
	return err == nil, err
}

// end ends the session a token names, if there is one.
func (ss *sessions) end(ctx context.Context, token string) error {
	t, ok := tokenTenant(token)
	if !ok {
		return nil
	}
	err := ss.st.DeleteSession(ctx, t, ss.kind, tokenHash(token))
	if custos.ErrorCode(err) == custos.NotFound {
		return nil
	}
	return err
}

// endHolder ends every session of one holder of a tenant.
func (ss *sessions) endHolder(ctx context.Context, t custos.TenantID, holder string) error {
	_, err := ss.st.DeleteHolderSessions(ctx, t, ss.kind, holder)
	return err
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

// attempts limits attempts of one purpose to n per key in each window,
// counting them in the store (custos.SessionAttempt records), so that the
// limit holds across every node of a cluster, not per node. A key is
// kept only as a keyed hash under the tenant's key (under
// custos.OperatorChain's for what belongs to no tenant, a client
// address). Each attempt is counted and recorded in one step, so that
// attempts racing on several nodes at once do not pass the limit.
type attempts struct {
	st      custos.SessionStore
	hasher  Hasher
	purpose string
	n       int
	window  time.Duration
	now     func() time.Time
}

func newAttempts(st custos.SessionStore, hasher Hasher, purpose string, n int, window time.Duration, now func() time.Time) *attempts {
	return &attempts{st: st, hasher: hasher, purpose: purpose, n: n, window: window, now: now}
}

func (a *attempts) holder(t custos.TenantID, key string) (string, error) {
	sum, err := a.hasher.HashValue(t, "console-attempt-"+a.purpose, []byte(key))
	if err != nil {
		return "", err
	}
	return a.purpose + ":" + hex.EncodeToString(sum[:]), nil
}

// attempt is one attempt recorded against a limit (attempts.take).
type attempt struct {
	st custos.SessionStore
	t  custos.TenantID
	id [32]byte
}

// take records an attempt for key if fewer than n are recorded in the
// window, and returns it; nil, and nothing recorded, at the limit.
func (a *attempts) take(ctx context.Context, t custos.TenantID, key string) (*attempt, error) {
	h, err := a.holder(t, key)
	if err != nil {
		return nil, err
	}
	at := &attempt{st: a.st, t: t}
	rand.Read(at.id[:])
	now := a.now()
	ok, err := a.st.CreateSessionBelow(ctx, &custos.Session{Tenant: t, Kind: custos.SessionAttempt, Hash: at.id, Holder: h,
		Created: now, Expires: now.Add(a.window)}, a.n, now)
	if err != nil || !ok {
		return nil, err
	}
	return at, nil
}

// allow records an attempt for key and reports whether it is within the
// limit; one beyond it is not recorded.
func (a *attempts) allow(ctx context.Context, t custos.TenantID, key string) (bool, error) {
	at, err := a.take(ctx, t, key)
	return at != nil, err
}

// forget removes an attempt that is not to count (a sign-in that
// succeeded, or a form refused before its credentials were checked).
func (at *attempt) forget(ctx context.Context) error {
	if at == nil {
		return nil
	}
	if err := at.st.DeleteSession(ctx, at.t, custos.SessionAttempt, at.id); err != nil && custos.ErrorCode(err) != custos.NotFound {
		return err
	}
	return nil
}

// signinAttempt takes a sign-in attempt against r's client address. Every
// sign-in counts until it is known not to have failed on its
// credentials; then the caller forgets it (forgetAttempts), so that only
// failed sign-ins are counted, and never more than the limit even when
// they race on several nodes. When none can be taken it answers through
// fail: 500 on a store error, 429 with tooMany at the limit.
func (h *Handler) signinAttempt(r *http.Request, fail func(status int, msg string), tooMany string) (*attempt, bool) {
	at, err := h.signinByAddr.take(r.Context(), custos.OperatorChain, clientIP(r))
	if err != nil {
		h.d.Log.Error("console: count sign-in attempts", "err", err)
		fail(http.StatusInternalServerError, "Something went wrong on our side; please try again.")
		return nil, false
	}
	if at == nil {
		fail(http.StatusTooManyRequests, tooMany)
		return nil, false
	}
	return at, true
}

// forgetAttempts forgets attempts that did not fail; an error is logged:
// the attempt then counts as a failure until its window ends.
func (h *Handler) forgetAttempts(r *http.Request, ats ...*attempt) {
	for _, at := range ats {
		if err := at.forget(r.Context()); err != nil {
			h.d.Log.Error("console: forget a sign-in attempt", "err", err)
		}
	}
}

// links are the one-time sign-in links of the privacy center. They are
// kept like sessions (of kind custos.SessionLink): by the SHA-256 of
// their token, the identity sealed with a key the token derives, so any
// node redeems a link another issued, and only once.
type links struct {
	ss *sessions
}

func newLinks(st custos.SessionStore, ttl time.Duration, now func() time.Time, log *slog.Logger) *links {
	return &links{ss: newSessions(st, custos.SessionLink, ttl, now, log)}
}

// issue stores a link for an identity and returns its token.
func (ls *links) issue(ctx context.Context, t custos.TenantID, id custos.Identifier, holder string) (string, error) {
	return ls.ss.start(ctx, &session{tenant: t, identity: id, holder: holder})
}

// redeem uses a token up: it answers ok once, and only before it
// expires, on whichever node.
func (ls *links) redeem(ctx context.Context, t custos.TenantID, token string) (custos.Identifier, bool, error) {
	if tt, ok := tokenTenant(token); !ok || tt != t {
		return custos.Identifier{}, false, nil
	}
	hash := tokenHash(token)
	rec, err := ls.ss.st.TakeSession(ctx, t, custos.SessionLink, hash, ls.ss.now())
	if custos.ErrorCode(err) == custos.NotFound {
		return custos.Identifier{}, false, nil
	}
	if err != nil {
		return custos.Identifier{}, false, err
	}
	p, err := unseal(token, custos.SessionLink, hash, rec.Sealed)
	if err != nil {
		return custos.Identifier{}, false, err
	}
	return custos.Identifier{Type: p.IDType, Value: p.IDValue}, true, nil
}

// valid reports whether a token would be redeemed, without using it up.
func (ls *links) valid(ctx context.Context, t custos.TenantID, token string) (bool, error) {
	if tt, ok := tokenTenant(token); !ok || tt != t {
		return false, nil
	}
	s, err := ls.ss.get(ctx, token)
	return s != nil, err
}

// SessionInfo is a live console session as the users page lists it.
type SessionInfo struct {
	ID      string // names the session for revoking; not its cookie
	User    string
	How     string
	IP      string
	Agent   string
	Started time.Time
	Expires time.Time
	Current bool
}

// sessionID is the public name of a session: the first bytes of its
// cookie's SHA-256, which tells nothing of the cookie.
func sessionID(k [32]byte) string { return base64.RawURLEncoding.EncodeToString(k[:12]) }

// of lists the live console sessions of a tenant, marking the one
// current names.
func (ss *sessions) of(ctx context.Context, t custos.TenantID, current string) ([]SessionInfo, error) {
	recs, err := ss.st.Sessions(ctx, t, ss.kind, ss.now())
	if err != nil {
		return nil, err
	}
	cur := tokenHash(current)
	var out []SessionInfo
	for _, s := range recs {
		out = append(out, SessionInfo{ID: sessionID(s.Hash), User: s.User, How: s.How, IP: s.IP, Agent: s.Agent,
			Started: s.Created, Expires: s.Expires, Current: s.Hash == cur})
	}
	return out, nil
}

// revoke ends the tenant's session of that public id.
func (ss *sessions) revoke(ctx context.Context, t custos.TenantID, id string) (SessionInfo, bool, error) {
	recs, err := ss.st.Sessions(ctx, t, ss.kind, ss.now())
	if err != nil {
		return SessionInfo{}, false, err
	}
	for _, s := range recs {
		if sessionID(s.Hash) != id {
			continue
		}
		err := ss.st.DeleteSession(ctx, t, ss.kind, s.Hash)
		if custos.ErrorCode(err) == custos.NotFound {
			return SessionInfo{}, false, nil
		}
		if err != nil {
			return SessionInfo{}, false, err
		}
		return SessionInfo{ID: id, User: s.User, How: s.How}, true, nil
	}
	return SessionInfo{}, false, nil
}
