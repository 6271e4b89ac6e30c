package console

import "net/http"

// Auth is how a page of the console or the privacy center authenticates
// its caller.
type Auth int

// The authentication classes of Routes. A GET of a signed-in class
// without its session is sent to sign in (303); a POST without its
// session is too, and one with the session but without the session's
// CSRF token is refused 403.
const (
	// Public: sign-in pages and assets.
	Public Auth = iota + 1
	// TenantUser: anyone signed in to a tenant's console.
	TenantUser
	// TenantAdmin: the tenant's secret key, or a console user made admin.
	// Others signed in to the tenant get 403.
	TenantAdmin
	// Operator: signed in with the operator token.
	Operator
	// Subject: a data subject signed in to the tenant's privacy center.
	Subject
)

// String names the class as docs/console.md does.
func (a Auth) String() string {
	switch a {
	case Public:
		return "public"
	case TenantUser:
		return "tenant user"
	case TenantAdmin:
		return "tenant admin"
	case Operator:
		return "operator"
	case Subject:
		return "subject"
	}
	return "unknown"
}

// Route is one page or form of the console or the privacy center.
type Route struct {
	Method  string
	Pattern string
	Auth    Auth

	plain func(*Handler, http.ResponseWriter, *http.Request)
	user  func(*Handler, http.ResponseWriter, *http.Request, *user)
	subj  func(*Handler, http.ResponseWriter, *http.Request, *subjectUser)
}

func public(method, pattern string, h func(*Handler, http.ResponseWriter, *http.Request)) Route {
	return Route{Method: method, Pattern: pattern, Auth: Public, plain: h}
}

func tenantUser(method, pattern string, h func(*Handler, http.ResponseWriter, *http.Request, *user)) Route {
	return Route{Method: method, Pattern: pattern, Auth: TenantUser, user: h}
}

func tenantAdmin(method, pattern string, h func(*Handler, http.ResponseWriter, *http.Request, *user)) Route {
	return Route{Method: method, Pattern: pattern, Auth: TenantAdmin, user: h}
}

func operator(method, pattern string, h func(*Handler, http.ResponseWriter, *http.Request, *user)) Route {
	return Route{Method: method, Pattern: pattern, Auth: Operator, user: h}
}

func subject(method, pattern string, h func(*Handler, http.ResponseWriter, *http.Request, *subjectUser)) Route {
	return Route{Method: method, Pattern: pattern, Auth: Subject, subj: h}
}

// Routes is every page and form of the console and the privacy center.
// Adding one is adding a line here; TestConsoleRoutes then tries it
// without a session, without the CSRF token, with the wrong kind of
// session and with another tenant's.
func Routes() []Route {
	return []Route{
		public("GET", "/console/static/", (*Handler).static),
		public("GET", "/console", (*Handler).home),
		public("GET", "/console/{$}", (*Handler).home),
		public("GET", "/console/signin", (*Handler).signinPage),
		public("POST", "/console/signin", (*Handler).signin),
		public("GET", "/console/signin/user", (*Handler).userSigninPage),
		public("POST", "/console/signin/user", (*Handler).userSignin),
		public("GET", "/console/signin/operator", (*Handler).operatorSigninPage),
		public("POST", "/console/signin/operator", (*Handler).operatorSignin),
		tenantUser("POST", "/console/signout", (*Handler).signout),

		tenantUser("GET", "/console/requests", (*Handler).requestsPage),
		tenantUser("POST", "/console/requests", (*Handler).createRequest),
		tenantUser("GET", "/console/requests/{id}", (*Handler).requestPage),
		tenantUser("GET", "/console/requests/{id}/certificate", (*Handler).downloadCertificate),
		tenantUser("GET", "/console/requests/{id}/result", (*Handler).downloadResult),
		tenantUser("POST", "/console/requests/{id}/extend", (*Handler).extendRequest),
		tenantUser("POST", "/console/requests/{id}/cancel", (*Handler).cancelRequest),
		tenantUser("POST", "/console/requests/{id}/approve", (*Handler).approveRequest),
		tenantUser("POST", "/console/requests/{id}/reject", (*Handler).rejectRequest),

		tenantUser("GET", "/console/people", (*Handler).peoplePage),
		tenantUser("GET", "/console/audit", (*Handler).auditPage),

		tenantUser("GET", "/console/incidents", (*Handler).incidentsPage),
		tenantUser("GET", "/console/incidents/{id}", (*Handler).incidentPage),
		tenantUser("POST", "/console/incidents/{id}/acknowledge", (*Handler).acknowledgeIncident),

		tenantUser("GET", "/console/consents", (*Handler).consentsPage),

		tenantUser("GET", "/console/campaigns", (*Handler).campaignsPage),
		tenantUser("POST", "/console/campaigns", (*Handler).createCampaign),
		tenantUser("GET", "/console/campaigns/{id}", (*Handler).campaignPage),
		tenantUser("POST", "/console/campaigns/{id}/preview", (*Handler).previewCampaign),
		tenantUser("POST", "/console/campaigns/{id}/send", (*Handler).sendCampaign),

		tenantUser("GET", "/console/account", (*Handler).accountPage),
		tenantUser("POST", "/console/account/totp", (*Handler).startTOTP),
		tenantUser("POST", "/console/account/totp/confirm", (*Handler).confirmTOTP),
		tenantAdmin("GET", "/console/settings", (*Handler).settingsPage),
		tenantAdmin("POST", "/console/settings", (*Handler).patchSettings),
		tenantAdmin("POST", "/console/recipients", (*Handler).addRecipient),
		tenantAdmin("POST", "/console/recipients/{id}/delete", (*Handler).deleteRecipient),
		tenantAdmin("POST", "/console/keys/rotate", (*Handler).rotateKeys),
		tenantUser("GET", "/console/processing-record", (*Handler).processingRecord),
		tenantAdmin("GET", "/console/users", (*Handler).usersPage),
		tenantAdmin("POST", "/console/users", (*Handler).createUser),
		tenantAdmin("POST", "/console/users/{name}/delete", (*Handler).deleteUser),
		tenantAdmin("POST", "/console/sessions/{id}/revoke", (*Handler).revokeSession),

		operator("GET", "/console/operator", (*Handler).operatorHome),
		operator("POST", "/console/operator/tenants", (*Handler).createTenant),
		operator("GET", "/console/operator/incidents", (*Handler).operatorIncidents),
		operator("POST", "/console/operator/incidents", (*Handler).openIncident),
		operator("POST", "/console/operator/incidents/{id}/updates", (*Handler).updateIncident),
		operator("POST", "/console/operator/incidents/{id}/close", (*Handler).closeIncident),
		operator("POST", "/console/operator/signout", (*Handler).signout),

		public("GET", "/privacy/{tenant}", (*Handler).privacyHome),
		public("GET", "/privacy/{tenant}/theme.css", (*Handler).privacyTheme),
		public("POST", "/privacy/{tenant}/signin", (*Handler).privacySignin),
		public("GET", "/privacy/{tenant}/enter", (*Handler).privacyEnterPage),
		public("POST", "/privacy/{tenant}/enter", (*Handler).privacyEnter),
		subject("GET", "/privacy/{tenant}/me", (*Handler).privacyMe),
		subject("POST", "/privacy/{tenant}/download", (*Handler).privacyDownload),
		subject("GET", "/privacy/{tenant}/erase", (*Handler).privacyEraseConfirm),
		subject("POST", "/privacy/{tenant}/erase", (*Handler).privacyErase),
		subject("POST", "/privacy/{tenant}/suppress", (*Handler).privacyFlag),
		subject("POST", "/privacy/{tenant}/object", (*Handler).privacyFlag),
		subject("POST", "/privacy/{tenant}/consent", (*Handler).privacyConsent),
		subject("POST", "/privacy/{tenant}/signout", (*Handler).privacySignout),
	}
}

// routes registers every route behind its class's checks; anything else
// under /console/ is an HTML 404.
func (h *Handler) routes() {
	for _, rt := range Routes() {
		var hd http.Handler
		switch {
		case rt.plain != nil:
			fn := rt.plain
			hd = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fn(h, w, r) })
		case rt.user != nil:
			fn := rt.user
			hd = h.signedInAs(rt.Auth, rt.Method == "POST", func(w http.ResponseWriter, r *http.Request, u *user) { fn(h, w, r, u) })
		case rt.subj != nil:
			fn := rt.subj
			next := func(w http.ResponseWriter, r *http.Request, u *subjectUser) { fn(h, w, r, u) }
			if rt.Method == "POST" {
				hd = h.subjectForm(next)
			} else {
				hd = h.subject(next)
			}
		default:
			panic("console: route " + rt.Method + " " + rt.Pattern + " has no handler")
		}
		h.mux.Handle(rt.Method+" "+rt.Pattern, hd)
	}
	h.mux.HandleFunc("/console/", func(w http.ResponseWriter, r *http.Request) {
		h.render(w, http.StatusNotFound, "error", consolePage{Title: "Not found", Data: errorData{Message: "There is no such page in the console."}})
	})
}
