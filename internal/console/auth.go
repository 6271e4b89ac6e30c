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
)

// Cookie names. The console's is limited to /console; the privacy
// center's to the tenant's /privacy/{tenant}.
const (
	consoleCookie = "custos_console"
	preCookie     = "custos_signin" // the CSRF token of a sign-in form
	privacyCookie = "custos_privacy"
)

// user is a signed-in console user and the tenant they act for.
type user struct {
	s *session
	t *custos.Tenant
}

// actor is who the audit chain names for the user's actions.
func (u *user) actor() string { return audit.ConsoleActor(audit.ConsoleSecretKey, u.s.user) }

// consolePage is what every console page shows around its content.
type consolePage struct {
	Title  string
	User   string
	Tenant string
	CSRF   string
	Flash  string
	Error  string
	Data   any
}

func (u *user) page(title string, data any) consolePage {
	return consolePage{Title: title, User: u.s.user, Tenant: u.t.Name, CSRF: u.s.csrf, Data: data}
}

type userHandler func(w http.ResponseWriter, r *http.Request, u *user)

// signedIn returns the user of the request's session cookie.
func (h *Handler) signedIn(r *http.Request) (*user, bool) {
	c, err := r.Cookie(consoleCookie)
	if err != nil {
		return nil, false
	}
	s, ok := h.console.get(c.Value)
	if !ok {
		return nil, false
	}
	t, ok := h.d.Tenants.Get(s.tenant)
	if !ok || h.d.Tenants.Misdirected(t) != nil {
		return nil, false
	}
	return &user{s: s, t: t}, true
}

// page serves GET pages to a signed-in user, and sends anyone else to
// sign in.
func (h *Handler) page(next userHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok := h.signedIn(r)
		if !ok {
			http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
			return
		}
		next(w, r, u)
	})
}

// form serves POSTed forms of a signed-in user whose CSRF token matches
// the session's.
func (h *Handler) form(next userHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		u, ok := h.signedIn(r)
		if !ok {
			http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
			return
		}
		if !sameToken(r.PostFormValue("csrf"), u.s.csrf) {
			h.render(w, http.StatusForbidden, "error", u.page("Forbidden", errorData{
				Message: "This form is out of date or was not sent from this console (its CSRF token does not match). Reload the page and try again."}))
			return
		}
		next(w, r, u)
	})
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
	if _, ok := h.signedIn(r); ok {
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
	if !h.signinLimit.allow(clientIP(r)) {
		h.showSignin(w, r, http.StatusTooManyRequests, name, "Too many sign-in attempts from your address. Wait a few minutes and try again.")
		return
	}
	if !validUserName(name) {
		h.showSignin(w, r, http.StatusBadRequest, name, "Your name is required (1 to 64 printable characters): the audit log records your actions under it.")
		return
	}
	t, ok := h.d.Tenants.BySecretKey(strings.TrimSpace(r.PostFormValue("secret_key")))
	if !ok {
		h.showSignin(w, r, http.StatusUnauthorized, name, "That secret key is not valid. Use the tenant's secret key (sk_…), not its write key.")
		return
	}
	if err := h.d.Tenants.Misdirected(t); err != nil {
		h.showSignin(w, r, http.StatusMisdirectedRequest, name, custos.ErrorMessage(err))
		return
	}
	s := &session{tenant: t.ID, user: name}
	token := h.console.start(s)
	if err := h.record(r.Context(), t.ID, audit.Entry{Actor: audit.ConsoleActor(audit.ConsoleSecretKey, name), Action: "console.signin"}); err != nil {
		h.console.end(token)
		h.showSignin(w, r, http.StatusInternalServerError, name, "Signing in could not be recorded in the audit log; try again.")
		return
	}
	setCookie(w, r, h.d.SecureCookies, preCookie, "", "/console/signin", -1)
	setCookie(w, r, h.d.SecureCookies, consoleCookie, token, "/console", ConsoleSessionTTL)
	http.Redirect(w, r, "/console/requests", http.StatusSeeOther)
}

func (h *Handler) signout(w http.ResponseWriter, r *http.Request, u *user) {
	if c, err := r.Cookie(consoleCookie); err == nil {
		h.console.end(c.Value)
	}
	if err := h.record(r.Context(), u.t.ID, audit.Entry{Actor: u.actor(), Action: "console.signout"}); err != nil {
		h.d.Log.Error("console: audit sign-out", "tenant", u.t.ID, "err", err)
	}
	setCookie(w, r, h.d.SecureCookies, consoleCookie, "", "/console", -1)
	http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
}
