package console

import "net/http"

// routes lists every page of the console and the privacy center.
func (h *Handler) routes() {
	m := h.mux
	m.HandleFunc("GET /console/static/", h.static)

	m.HandleFunc("GET /console", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/console/requests", http.StatusSeeOther)
	})
	m.HandleFunc("GET /console/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/console/requests", http.StatusSeeOther)
	})
	m.HandleFunc("GET /console/signin", h.signinPage)
	m.HandleFunc("POST /console/signin", h.signin)
	m.Handle("POST /console/signout", h.form(h.signout))

	m.Handle("GET /console/requests", h.page(h.requestsPage))
	m.Handle("POST /console/requests", h.form(h.createRequest))
	m.Handle("GET /console/requests/{id}", h.page(h.requestPage))
	m.Handle("GET /console/requests/{id}/certificate", h.page(h.downloadCertificate))
	m.Handle("GET /console/requests/{id}/result", h.page(h.downloadResult))
	m.Handle("POST /console/requests/{id}/extend", h.form(h.extendRequest))
	m.Handle("POST /console/requests/{id}/cancel", h.form(h.cancelRequest))
	m.Handle("POST /console/requests/{id}/approve", h.form(h.approveRequest))
	m.Handle("POST /console/requests/{id}/reject", h.form(h.rejectRequest))

	m.Handle("GET /console/people", h.page(h.peoplePage))
	m.Handle("GET /console/audit", h.page(h.auditPage))

	m.HandleFunc("GET /privacy/{tenant}", h.privacyHome)
	m.HandleFunc("GET /privacy/{tenant}/theme.css", h.privacyTheme)
	m.HandleFunc("POST /privacy/{tenant}/signin", h.privacySignin)
	m.HandleFunc("GET /privacy/{tenant}/enter", h.privacyEnterPage)
	m.HandleFunc("POST /privacy/{tenant}/enter", h.privacyEnter)
	m.Handle("GET /privacy/{tenant}/me", h.subject(h.privacyMe))
	m.Handle("POST /privacy/{tenant}/download", h.subjectForm(h.privacyDownload))
	m.Handle("GET /privacy/{tenant}/erase", h.subject(h.privacyEraseConfirm))
	m.Handle("POST /privacy/{tenant}/erase", h.subjectForm(h.privacyErase))
	m.Handle("POST /privacy/{tenant}/suppress", h.subjectForm(h.privacyFlag))
	m.Handle("POST /privacy/{tenant}/object", h.subjectForm(h.privacyFlag))
	m.Handle("POST /privacy/{tenant}/consent", h.subjectForm(h.privacyConsent))
	m.Handle("POST /privacy/{tenant}/signout", h.subjectForm(h.privacySignout))
}
