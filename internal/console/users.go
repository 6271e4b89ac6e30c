package console

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
	"github.com/custos-dev/custos/internal/tenants"
	"github.com/custos-dev/custos/internal/totp"
)

type userSigninData struct {
	CSRF, Tenant, Name, Error string
}

func (h *Handler) userSigninPage(w http.ResponseWriter, r *http.Request) {
	h.showUserSignin(w, r, http.StatusOK, userSigninData{Tenant: r.URL.Query().Get("tenant")})
}

func (h *Handler) showUserSignin(w http.ResponseWriter, r *http.Request, status int, d userSigninData) {
	d.CSRF = randomToken(24)
	setCookie(w, r, h.d.SecureCookies, preCookie, d.CSRF, "/console/signin", LinkTTL)
	h.render(w, status, "signin_user", consolePage{Title: "Sign in", Data: d})
}

// userSignin signs a console user in with the tenant's id, their name,
// their password and, when they set one up, a TOTP code. A code works
// once.
func (h *Handler) userSignin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	d := userSigninData{Tenant: strings.TrimSpace(r.PostFormValue("tenant")), Name: strings.TrimSpace(r.PostFormValue("name"))}
	fail := func(status int, msg string) {
		d.Error = msg
		h.showUserSignin(w, r, status, d)
	}
	if !checkPreAt(r) {
		fail(http.StatusForbidden, "This sign-in form is out of date or was not sent from this console. Try again.")
		return
	}
	// Failed attempts count, by address and by user: each sign-in takes
	// an attempt of both, forgotten unless its credentials fail.
	byAddr, ok := h.signinAttempt(r, fail, "Too many sign-in attempts. Wait a few minutes and try again.")
	if !ok {
		return
	}
	var byUser *attempt
	failed := false
	defer func() {
		if !failed {
			h.forgetAttempts(r, byAddr, byUser)
		}
	}()
	id, err := custos.ParseTenantID(d.Tenant)
	var t *custos.Tenant
	ok = err == nil
	if ok {
		t, ok = h.d.Tenants.Get(id)
	}
	if !ok {
		failed = true
		fail(http.StatusUnauthorized, "That tenant id, user name, password or code is not right.")
		return
	}
	if err := h.d.Tenants.Misdirected(t); err != nil {
		fail(http.StatusMisdirectedRequest, custos.ErrorMessage(err))
		return
	}
	if byUser, err = h.userLimit.take(r.Context(), t.ID, d.Name); err != nil {
		h.d.Log.Error("console: count sign-in attempts", "tenant", t.ID, "err", err)
		fail(http.StatusInternalServerError, "Something went wrong on our side; please try again.")
		return
	} else if byUser == nil {
		fail(http.StatusTooManyRequests, "Too many sign-in attempts. Wait a few minutes and try again.")
		return
	}
	cu, step, err := h.d.Tenants.CheckConsoleUser(t, d.Name, r.PostFormValue("password"), r.PostFormValue("code"), h.d.Now())
	if err == nil && step != 0 {
		var unused bool
		if unused, err = h.d.Sessions.UseTOTPStep(r.Context(), t.ID, cu.Name, step); err == nil && !unused {
			err = custos.Errorf(custos.Unauthorized, "that code was used already: wait for the next one")
		}
	}
	if err != nil {
		if statusOf(err) >= 500 {
			h.d.Log.Error("console: check user", "tenant", t.ID, "err", err)
			fail(http.StatusInternalServerError, "Something went wrong on our side; please try again.")
			return
		}
		failed = true
		if e := h.record(r.Context(), t.ID, audit.Entry{Actor: audit.ConsoleActor(audit.ConsoleUser, safeActorName(d.Name)), Action: "console.signin.refused"}); e != nil {
			h.d.Log.Error("console: audit refused sign-in", "tenant", t.ID, "err", e)
		}
		fail(statusOf(err), custos.ErrorMessage(err))
		return
	}
	s := &session{tenant: t.ID, user: cu.Name, how: audit.ConsoleUser, admin: cu.Admin}
	if err := h.startConsole(w, r, s, t.ID, "/console/requests"); err != nil {
		fail(http.StatusInternalServerError, "Signing in could not be recorded in the audit log; try again.")
	}
}

// safeActorName keeps what a refused sign-in typed as a name printable
// and short, for the audit entry.
func safeActorName(s string) string {
	if !validUserName(s) {
		return "(invalid name)"
	}
	return s
}

// checkPreAt checks the CSRF token of a sign-in form against its cookie.
func checkPreAt(r *http.Request) bool {
	c, err := r.Cookie(preCookie)
	return err == nil && sameToken(r.PostFormValue("csrf"), c.Value)
}

type operatorSigninData struct {
	CSRF, Name, Error string
}

func (h *Handler) operatorSigninPage(w http.ResponseWriter, r *http.Request) {
	h.showOperatorSignin(w, r, http.StatusOK, operatorSigninData{})
}

func (h *Handler) showOperatorSignin(w http.ResponseWriter, r *http.Request, status int, d operatorSigninData) {
	d.CSRF = randomToken(24)
	setCookie(w, r, h.d.SecureCookies, preCookie, d.CSRF, "/console/signin", LinkTTL)
	h.render(w, status, "signin_operator", consolePage{Title: "Operator sign-in", Data: d})
}

// operatorSignin signs the operator in with the operator token and a name
// for the operator's audit chain.
func (h *Handler) operatorSignin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	d := operatorSigninData{Name: strings.TrimSpace(r.PostFormValue("name"))}
	fail := func(status int, msg string) {
		d.Error = msg
		h.showOperatorSignin(w, r, status, d)
	}
	if !checkPreAt(r) {
		fail(http.StatusForbidden, "This sign-in form is out of date or was not sent from this console. Try again.")
		return
	}
	at, ok := h.signinAttempt(r, fail, "Too many sign-in attempts from your address. Wait a few minutes and try again.")
	if !ok {
		return
	}
	failed := false
	defer func() {
		if !failed {
			h.forgetAttempts(r, at)
		}
	}()
	switch {
	case !validUserName(d.Name):
		fail(http.StatusBadRequest, "Your name is required (1 to 64 printable characters): the operator's audit log records your actions under it.")
	case !h.operatorToken(r.PostFormValue("token")):
		failed = true
		fail(http.StatusUnauthorized, "That operator token is not valid.")
	default:
		s := &session{user: d.Name, how: audit.ConsoleOperator}
		if err := h.startConsole(w, r, s, custos.OperatorChain, "/console/operator"); err != nil {
			fail(http.StatusInternalServerError, "Signing in could not be recorded in the audit log; try again.")
		}
	}
}

// operatorToken compares a token with the operator's in constant time.
func (h *Handler) operatorToken(s string) bool {
	if h.d.OperatorToken == "" || s == "" {
		return false
	}
	a, b := sha256.Sum256([]byte(strings.TrimSpace(s))), sha256.Sum256([]byte(h.d.OperatorToken))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

type accountData struct {
	TOTP      bool
	Secret    string // a second factor being set up
	URI       string
	IsUser    bool
	Sessions  []SessionInfo
	Error     string
	Flash     string
	Admin     bool
	TenantID  string
	SignInURL string
}

// accountPage shows the signed-in user's account: their second factor
// and, to admins, the tenant's live sessions.
func (h *Handler) accountPage(w http.ResponseWriter, r *http.Request, u *user) {
	h.showAccount(w, r, u, http.StatusOK, "")
}

func (h *Handler) showAccount(w http.ResponseWriter, r *http.Request, u *user, status int, msg string) {
	d := accountData{IsUser: u.s.how == audit.ConsoleUser, Error: msg, Admin: u.admin(), TenantID: u.t.ID.String(),
		SignInURL: "/console/signin/user?tenant=" + url.QueryEscape(u.t.ID.String())}
	if cu, ok := tenants.ConsoleUser(u.t, u.s.user); ok && d.IsUser {
		d.TOTP = len(cu.TOTPSealed) > 0
	}
	if u.s.pendingTOTP != nil {
		d.Secret, d.URI = totp.Encode(u.s.pendingTOTP), totp.URI("Custos "+u.t.Name, u.s.user, u.s.pendingTOTP)
	}
	switch r.URL.Query().Get("done") {
	case "totp":
		d.Flash = "Two-factor sign-in is on: from now on you sign in with a code from your app."
	case "revoked":
		d.Flash = "Session revoked."
	}
	if d.Admin {
		var err error
		if d.Sessions, err = h.console.of(r.Context(), u.t.ID, u.token); err != nil {
			h.fail(w, u, err)
			return
		}
		slices.SortFunc(d.Sessions, func(a, b SessionInfo) int { return b.Started.Compare(a.Started) })
	}
	h.render(w, status, "account", u.page("Your account", d))
}

// startTOTP makes a new secret for the signed-in console user to add to
// their app; it takes effect once a code from it is confirmed.
func (h *Handler) startTOTP(w http.ResponseWriter, r *http.Request, u *user) {
	if u.s.how != audit.ConsoleUser {
		h.showAccount(w, r, u, http.StatusBadRequest, "Two-factor sign-in is for console users; the secret key has none.")
		return
	}
	u.s.pendingTOTP = totp.NewSecret()
	if !h.updateSession(w, r, u) {
		return
	}
	h.showAccount(w, r, u, http.StatusOK, "")
}

func (h *Handler) confirmTOTP(w http.ResponseWriter, r *http.Request, u *user) {
	if u.s.pendingTOTP == nil {
		h.showAccount(w, r, u, http.StatusBadRequest, "Start setting up two-factor sign-in first.")
		return
	}
	step, ok := totp.Check(u.s.pendingTOTP, r.PostFormValue("code"), h.d.Now())
	if !ok {
		h.showAccount(w, r, u, http.StatusBadRequest, "That code does not match: check the app's clock and enter the current 6-digit code.")
		return
	}
	if err := h.d.Changes.As(u.actor()).SetConsoleTOTP(r.Context(), u.t.ID, u.s.user, u.s.pendingTOTP); err != nil {
		h.fail(w, u, err)
		return
	}
	// The code confirming the factor is used: it does not sign in again.
	if _, err := h.d.Sessions.UseTOTPStep(r.Context(), u.t.ID, u.s.user, step); err != nil {
		h.fail(w, u, err)
		return
	}
	u.s.pendingTOTP = nil
	if !h.updateSession(w, r, u) {
		return
	}
	http.Redirect(w, r, "/console/account?done=totp", http.StatusSeeOther)
}

// updateSession stores what changed in the user's session (a second
// factor being set up); if the session ended meanwhile, on any node, the
// user is sent to sign in again.
func (h *Handler) updateSession(w http.ResponseWriter, r *http.Request, u *user) bool {
	ok, err := h.console.update(r.Context(), u.token, u.s)
	if err != nil {
		h.fail(w, u, err)
		return false
	}
	if !ok {
		http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
	}
	return ok
}

type usersData struct {
	Users     []custos.ConsoleUser
	Error     string
	Flash     string
	Name      string
	MinLength int
	SignInURL string
}

// usersPage lists the tenant's console users, for admins to add and
// remove.
func (h *Handler) usersPage(w http.ResponseWriter, r *http.Request, u *user) {
	flash := ""
	switch r.URL.Query().Get("done") {
	case "created":
		flash = "User created. They sign in at the address below with their name and password."
	case "deleted":
		flash = "User removed; their sessions have ended."
	}
	h.showUsers(w, r, u, http.StatusOK, "", flash, "")
}

func (h *Handler) showUsers(w http.ResponseWriter, r *http.Request, u *user, status int, msg, flash, name string) {
	d := usersData{Users: u.t.ConsoleUsers, Error: msg, Flash: flash, Name: name, MinLength: tenants.MinPasswordLength,
		SignInURL: "/console/signin/user?tenant=" + url.QueryEscape(u.t.ID.String())}
	h.render(w, status, "users", u.page("Console users", d))
}

func (h *Handler) createUser(w http.ResponseWriter, r *http.Request, u *user) {
	name := strings.TrimSpace(r.PostFormValue("name"))
	err := h.d.Changes.As(u.actor()).AddConsoleUser(r.Context(), u.t.ID, name, r.PostFormValue("password"), r.PostFormValue("admin") == "on")
	if err != nil {
		if statusOf(err) >= 500 {
			h.fail(w, u, err)
			return
		}
		h.showUsers(w, r, u, statusOf(err), custos.ErrorMessage(err), "", name)
		return
	}
	http.Redirect(w, r, "/console/users?done=created", http.StatusSeeOther)
}

func (h *Handler) deleteUser(w http.ResponseWriter, r *http.Request, u *user) {
	name := r.PathValue("name")
	if err := h.d.Changes.As(u.actor()).RemoveConsoleUser(r.Context(), u.t.ID, name); err != nil {
		h.fail(w, u, err)
		return
	}
	if err := h.console.endHolder(r.Context(), u.t.ID, audit.ConsoleActor(audit.ConsoleUser, name)); err != nil {
		h.fail(w, u, err)
		return
	}
	http.Redirect(w, r, "/console/users?done=deleted", http.StatusSeeOther)
}

// revokeSession ends one of the tenant's console sessions.
func (h *Handler) revokeSession(w http.ResponseWriter, r *http.Request, u *user) {
	s, ok, err := h.console.revoke(r.Context(), u.t.ID, r.PathValue("id"))
	if err != nil {
		h.fail(w, u, err)
		return
	}
	if !ok {
		h.fail(w, u, custos.Errorf(custos.NotFound, "no live session %s", r.PathValue("id")))
		return
	}
	if err := h.record(r.Context(), u.t.ID, audit.Entry{Actor: u.actor(), Action: "console.session.revoke",
		Details: map[string]any{"session_of": audit.ConsoleActor(s.How, s.User)}}); err != nil {
		h.fail(w, u, err)
		return
	}
	http.Redirect(w, r, "/console/account?done=revoked", http.StatusSeeOther)
}
