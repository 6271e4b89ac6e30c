package console

import (
	"context"
	"net"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
	"github.com/custos-dev/custos/internal/tenants"
)

// Cookie names. The console's is limited to /console; the privacy
// center's to the tenant's /privacy/{tenant}.
const (
	consoleCookie = "custos_console"
	preCookie     = "custos_signin" // the CSRF token of a sign-in form
	privacyCookie = "custos_privacy"
)

// user is someone signed in to the console: a tenant's user (t set) or
// the operator (t nil).
type user struct {
	s     *session
	t     *custos.Tenant
	token string
}

// actor is who the audit chain names for the user's actions.
func (u *user) actor() string { return audit.ConsoleActor(u.s.how, u.s.user) }

// admin reports whether the user may manage users, settings and keys.
func (u *user) admin() bool { return u.t != nil && (u.s.how == audit.ConsoleSecretKey || u.s.admin) }

// consolePage is what every console page shows around its content.
type consolePage struct {
	Title    string
	User     string
	How      string
	Tenant   string
	Admin    bool
	Operator bool
	CSRF     string
	Flash    string
	Error    string
	Data     any
}

func (u *user) page(title string, data any) consolePage {
	p := consolePage{Title: title, User: u.s.user, How: u.s.how, CSRF: u.s.csrf, Data: data, Admin: u.admin(), Operator: u.t == nil}
	if u.t != nil {
		p.Tenant = u.t.Name
	}
	return p
}

type userHandler func(w http.ResponseWriter, r *http.Request, u *user)

// signedIn returns the user of the request's session cookie: nil if
// there is none or it ended, an error if the store could not tell.
func (h *Handler) signedIn(r *http.Request) (*user, error) {
	c, err := r.Cookie(consoleCookie)
	if err != nil {
		return nil, nil
	}
	ctx := r.Context()
	s, err := h.console.get(ctx, c.Value)
	if s == nil || err != nil {
		return nil, err
	}
	if s.how == audit.ConsoleOperator {
		if s.tenant != custos.OperatorChain {
			return nil, nil
		}
		return &user{s: s, token: c.Value}, nil
	}
	t, ok := h.d.Tenants.Get(s.tenant)
	if !ok || h.d.Tenants.Misdirected(t) != nil {
		return nil, nil
	}
	if s.how == audit.ConsoleUser {
		// A removed user's sessions end with them; an admin flag follows
		// the user's record.
		cu, ok := tenants.ConsoleUser(t, s.user)
		if !ok {
			return nil, h.console.end(ctx, c.Value)
		}
		s.admin = cu.Admin
	}
	return &user{s: s, t: t, token: c.Value}, nil
}

// unavailable answers a request the store could not serve: 503, retry.
func (h *Handler) unavailable(w http.ResponseWriter, err error) {
	h.d.Log.Error("console: read session", "err", err)
	h.render(w, http.StatusServiceUnavailable, "error", consolePage{Title: "Unavailable",
		Data: errorData{Message: "Sessions could not be read just now; please try again."}})
}

// signedInAs serves a route of class a: a GET page sends anyone without
// the session to sign in, a POST form also needs the session's CSRF
// token; a session of the wrong kind is refused 403.
func (h *Handler) signedInAs(a Auth, post bool, next userHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if post {
			r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		}
		u, err := h.signedIn(r)
		if err != nil {
			h.unavailable(w, err)
			return
		}
		if u == nil {
			to := "/console/signin"
			if a == Operator {
				to = "/console/signin/operator"
			}
			http.Redirect(w, r, to, http.StatusSeeOther)
			return
		}
		var refuse string
		switch {
		case a == Operator && u.t != nil:
			refuse = "This page is the operator's: sign in with the operator token."
		case a != Operator && u.t == nil:
			refuse = "This page is a tenant's: the operator token does not open it."
		case a == TenantAdmin && !u.admin():
			refuse = "Only the tenant's administrators may do this."
		}
		if refuse != "" {
			h.render(w, http.StatusForbidden, "error", u.page("Forbidden", errorData{Message: refuse}))
			return
		}
		if post && !sameToken(r.PostFormValue("csrf"), u.s.csrf) {
			h.render(w, http.StatusForbidden, "error", u.page("Forbidden", errorData{
				Message: "This form is out of date or was not sent from this console (its CSRF token does not match). Reload the page and try again."}))
			return
		}
		next(w, r, u)
	})
}

// home sends the visitor where they belong.
func (h *Handler) home(w http.ResponseWriter, r *http.Request) {
	to := "/console/signin"
	u, err := h.signedIn(r)
	if err != nil {
		h.unavailable(w, err)
		return
	}
	if u != nil {
		to = "/console/requests"
		if u.t == nil {
			to = "/console/operator"
		}
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

type errorData struct{ Message string }

// record appends an entry to the tenant's audit chain.
func (h *Handler) record(ctx context.Context, t custos.TenantID, e audit.Entry) error {
	if h.d.Audit == nil {
		return nil
	}
	_, err := h.d.Audit.Record(ctx, t, e)
	return err
}

type signinData struct {
	CSRF  string
	Name  string
	Error string
}

func (h *Handler) signinPage(w http.ResponseWriter, r *http.Request) {
	if u, err := h.signedIn(r); err != nil {
		h.unavailable(w, err)
		return
	} else if u != nil {
		http.Redirect(w, r, "/console/requests", http.StatusSeeOther)
		return
	}
	h.showSignin(w, r, http.StatusOK, "", "")
}

func (h *Handler) showSignin(w http.ResponseWriter, r *http.Request, status int, name, msg string) {
	token := randomToken(24)
	setCookie(w, r, h.d.SecureCookies, preCookie, token, "/console/signin", LinkTTL)
	h.render(w, status, "signin", consolePage{Title: "Sign in", Data: signinData{CSRF: token, Name: name, Error: msg}})
}

// clientIP is the address the request came from (no proxy headers are
// trusted).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// validUserName reports whether s is a name to show in the audit chain:
// 1 to 64 printable characters.
func validUserName(s string) bool {
	if s == "" || utf8.RuneCountInString(s) > 64 || !utf8.ValidString(s) {
		return false
	}
	for _, c := range s {
		if !unicode.IsPrint(c) {
			return false
		}
	}
	return true
}

func (h *Handler) signin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	name := strings.TrimSpace(r.PostFormValue("name"))
	pre, err := r.Cookie(preCookie)
	if err != nil || !sameToken(r.PostFormValue("csrf"), pre.Value) {
		h.showSignin(w, r, http.StatusForbidden, name, "This sign-in form is out of date or was not sent from this console. Try again.")
		return
	}
	at, ok := h.signinAttempt(r, func(status int, msg string) { h.showSignin(w, r, status, name, msg) },
		"Too many sign-in attempts from your address. Wait a few minutes and try again.")
	if !ok {
		return
	}
	failed := false // on its credentials: the attempt counts
	defer func() {
		if !failed {
			h.forgetAttempts(r, at)
		}
	}()
	if !validUserName(name) {
		h.showSignin(w, r, http.StatusBadRequest, name, "Your name is required (1 to 64 printable characters): the audit log records your actions under it.")
		return
	}
	t, ok := h.d.Tenants.BySecretKey(strings.TrimSpace(r.PostFormValue("secret_key")))
	if !ok {
		failed = true
		h.showSignin(w, r, http.StatusUnauthorized, name, "That secret key is not valid. Use the tenant's secret key (sk_…), not its write key.")
		return
	}
	if err := h.d.Tenants.Misdirected(t); err != nil {
		h.showSignin(w, r, http.StatusMisdirectedRequest, name, custos.ErrorMessage(err))
		return
	}
	s := &session{user: name, how: audit.ConsoleSecretKey}
	if err := h.startConsole(w, r, s, t.ID, "/console/requests"); err != nil {
		h.d.Log.Error("console: sign in", "tenant", t.ID, "err", err)
		h.showSignin(w, r, http.StatusInternalServerError, name, "Signing in could not be recorded in the audit log; try again.")
	}
}

// startConsole starts a console session of chain (the tenant's, or the
// operator's), audits the sign-in there and sends the browser to next.
func (h *Handler) startConsole(w http.ResponseWriter, r *http.Request, s *session, chain custos.TenantID, next string) error {
	s.ip, s.agent = clientIP(r), truncate(r.UserAgent(), 200)
	s.tenant, s.holder = chain, audit.ConsoleActor(s.how, s.user)
	token, err := h.console.start(r.Context(), s)
	if err != nil {
		return err
	}
	if err := h.record(r.Context(), chain, audit.Entry{Actor: audit.ConsoleActor(s.how, s.user), Action: "console.signin"}); err != nil {
		if e := h.console.end(r.Context(), token); e != nil {
			h.d.Log.Error("console: end unaudited session", "err", e)
		}
		return err
	}
	setCookie(w, r, h.d.SecureCookies, preCookie, "", "/console/signin", -1)
	setCookie(w, r, h.d.SecureCookies, consoleCookie, token, "/console", ConsoleSessionTTL)
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

func (h *Handler) signout(w http.ResponseWriter, r *http.Request, u *user) {
	if err := h.console.end(r.Context(), u.token); err != nil {
		h.fail(w, u, err)
		return
	}
	if err := h.record(r.Context(), u.chain(), audit.Entry{Actor: u.actor(), Action: "console.signout"}); err != nil {
		h.d.Log.Error("console: audit sign-out", "chain", u.chain(), "err", err)
	}
	setCookie(w, r, h.d.SecureCookies, consoleCookie, "", "/console", -1)
	to := "/console/signin"
	if u.t == nil {
		to = "/console/signin/operator"
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// chain is the audit chain of the user's actions: the tenant's, or the
// operator's.
func (u *user) chain() custos.TenantID {
	if u.t == nil {
		return custos.OperatorChain
	}
	return u.t.ID
}
