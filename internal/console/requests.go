package console

import (
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/certificate"
	"github.com/custos-dev/custos/internal/rights"
)

// requestRow is a request as the queue and its page show it.
type requestRow struct {
	*custos.Request
	Overdue  bool
	DaysLeft int
}

func (h *Handler) row(r *custos.Request) requestRow {
	now := h.d.Now()
	return requestRow{Request: r, Overdue: rights.Overdue(r, now),
		DaysLeft: int(math.Ceil(r.DueAt.Sub(now).Hours() / 24))}
}

type queueData struct {
	Rows       []requestRow
	Status     string
	Type       string
	Overdue    bool
	Statuses   []custos.RequestStatus
	Types      []custos.RequestType
	IDTypes    []string
	Error      string
	Identifier string
}

var statuses = []custos.RequestStatus{custos.PendingVerification, custos.Pending, custos.InProgress,
	custos.Completed, custos.Failed, custos.Cancelled, custos.Rejected}

func (h *Handler) requestsPage(w http.ResponseWriter, r *http.Request, u *user) {
	h.showQueue(w, r, u, http.StatusOK, "")
}

func (h *Handler) showQueue(w http.ResponseWriter, r *http.Request, u *user, status int, msg string) {
	q := r.URL.Query()
	d := queueData{Status: q.Get("status"), Type: q.Get("type"), Overdue: q.Get("overdue") == "true",
		Statuses: statuses, Types: custos.RequestTypes, IDTypes: []string{"user_id", "email", "anonymous_id", "device_id"}, Error: msg}
	f := rights.Filter{Status: custos.RequestStatus(d.Status), Type: custos.RequestType(d.Type), Overdue: d.Overdue, Limit: 500}
	list, err := h.d.Requests.List(r.Context(), u.t.ID, f)
	if err != nil {
		h.fail(w, u, err)
		return
	}
	for _, req := range list {
		d.Rows = append(d.Rows, h.row(req))
	}
	// Overdue work first, the most overdue on top; then the newest.
	slices.SortStableFunc(d.Rows, func(a, b requestRow) int {
		switch {
		case a.Overdue && !b.Overdue:
			return -1
		case !a.Overdue && b.Overdue:
			return 1
		case a.Overdue && b.Overdue:
			return a.DueAt.Compare(b.DueAt)
		}
		return 0
	})
	h.render(w, status, "requests", u.page("Requests", d))
}

// fail shows an error page for err.
func (h *Handler) fail(w http.ResponseWriter, u *user, err error) {
	status := statusOf(err)
	if status >= 500 {
		h.d.Log.Error("console", "chain", u.chain(), "err", err)
	}
	h.render(w, status, "error", u.page("Error", errorData{Message: messageOf(err)}))
}

func (h *Handler) createRequest(w http.ResponseWriter, r *http.Request, u *user) {
	typ, err := custos.ParseIdentifierType(r.PostFormValue("identity_type"))
	if err != nil {
		h.showQueue(w, r, u, http.StatusBadRequest, "Identifier type: "+custos.ErrorMessage(err))
		return
	}
	in := rights.Input{Type: custos.RequestType(r.PostFormValue("type")),
		Identity: custos.Identifier{Type: typ, Value: strings.TrimSpace(r.PostFormValue("identity_value"))},
		Suppress: r.PostFormValue("suppress") == "on", Source: "console", Actor: u.actor()}
	if in.Suppress && in.Type != custos.Erasure {
		h.showQueue(w, r, u, http.StatusBadRequest, "“Also suppress” applies to erasure requests only.")
		return
	}
	if traits := strings.TrimSpace(r.PostFormValue("traits")); traits != "" {
		if in.Type != custos.Rectify {
			h.showQueue(w, r, u, http.StatusBadRequest, "Traits apply to rectify requests only.")
			return
		}
		if err := json.Unmarshal([]byte(traits), &in.Traits); err != nil {
			h.showQueue(w, r, u, http.StatusBadRequest, "Traits must be a JSON object, e.g. {\"email\": \"new@example.com\"}: "+err.Error())
			return
		}
	}
	req, err := h.d.Requests.Create(r.Context(), u.t.ID, in)
	if err != nil {
		if statusOf(err) >= 500 {
			h.fail(w, u, err)
			return
		}
		h.showQueue(w, r, u, statusOf(err), custos.ErrorMessage(err))
		return
	}
	http.Redirect(w, r, "/console/requests/"+url.PathEscape(req.ID), http.StatusSeeOther)
}

// step is one stage of an erasure and when it became durable.
type step struct {
	Name string
	At   time.Time
}

type requestData struct {
	requestRow
	Steps      []step
	Recipients []certificate.Outcome
	Callbacks  []certificate.Outcome
	// Certificate of a completed erasure, and whether its signature
	// verified with this node's key.
	Certificate    *certificate.Certificate
	CertVerified   bool
	CertProblem    string
	Refresh        bool
	Error          string
	Cancellable    bool
	Awaiting       bool
	Extendable     bool
	HasResult      bool
	Flash          string
	ExtensionsLeft []int
}

func (h *Handler) requestPage(w http.ResponseWriter, r *http.Request, u *user) {
	h.showRequest(w, r, u, http.StatusOK, "", r.URL.Query().Get("done"))
}

func (h *Handler) showRequest(w http.ResponseWriter, r *http.Request, u *user, status int, msg, flash string) {
	req, err := h.d.Requests.Get(r.Context(), u.t.ID, r.PathValue("id"))
	if err != nil {
		h.fail(w, u, err)
		return
	}
	d := requestData{requestRow: h.row(req), Error: msg, Refresh: !req.Status.Final() && req.Status != custos.PendingVerification,
		Cancellable: req.Status == custos.Pending || req.Status == custos.PendingVerification,
		Awaiting:    req.Status == custos.PendingVerification,
		Extendable:  !req.Status.Final() && req.ExtendedMonths < 2,
		HasResult:   req.Status == custos.Completed && (req.Type == custos.Access || req.Type == custos.Portability)}
	switch flash {
	case "extended", "cancelled", "approved", "rejected":
		d.Flash = "Request " + flash + "."
	}
	for m := 1; m <= 2-req.ExtendedMonths; m++ {
		d.ExtensionsLeft = append(d.ExtensionsLeft, m)
	}
	d.Steps = append(d.Steps, step{"received", req.ReceivedAt})
	if e := req.Erasure; e != nil {
		d.Steps = append(d.Steps, step{"identifiers tombstoned", e.ErasedAt}, step{"key shredded", e.ShreddedAt},
			step{"records deleted", e.DeletedAt}, step{"bytes purged", e.PurgedAt})
	}
	if !req.CompletedAt.IsZero() {
		d.Steps = append(d.Steps, step{string(req.Status), req.CompletedAt})
	}
	if d.Recipients, err = h.d.Requests.Outcomes(r.Context(), req); err != nil {
		h.fail(w, u, err)
		return
	}
	if d.Callbacks, err = h.d.Requests.Callbacks(r.Context(), req); err != nil {
		h.fail(w, u, err)
		return
	}
	if req.Type == custos.Erasure && req.Status == custos.Completed {
		raw, err := h.d.Requests.Certificate(r.Context(), u.t.ID, req.ID)
		if err == nil {
			c, perr := certificate.Parse(raw)
			switch {
			case perr != nil:
				d.CertProblem = perr.Error()
			case h.d.SigningKey == nil:
				d.CertProblem = "this node has no signing key to verify with"
			default:
				if verr := certificate.Verify(c, h.d.SigningKey); verr != nil {
					d.CertProblem = verr.Error()
				} else {
					d.CertVerified = true
				}
			}
			d.Certificate = &c
		}
	}
	h.render(w, status, "request", u.page("Request "+req.ID, d))
}

func (h *Handler) downloadCertificate(w http.ResponseWriter, r *http.Request, u *user) {
	raw, err := h.d.Requests.Certificate(r.Context(), u.t.ID, r.PathValue("id"))
	if err != nil {
		h.fail(w, u, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="erasure-certificate-`+safeName(r.PathValue("id"))+`.json"`)
	w.Write(raw)
}

// safeName keeps the characters of s that may go into a file name.
func safeName(s string) string {
	return strings.Map(func(c rune) rune {
		if c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			return c
		}
		return -1
	}, s)
}

func (h *Handler) downloadResult(w http.ResponseWriter, r *http.Request, u *user) {
	started := false
	err := h.d.Requests.Result(r.Context(), u.t.ID, r.PathValue("id"), r.URL.Query().Get("format"), w, func(ct, filename string) {
		w.Header().Set("Content-Type", ct)
		w.Header().Set("Content-Disposition", `attachment; filename="`+filename+`"`)
		started = true
	})
	if err != nil {
		if started {
			h.d.Log.Error("console: result stream failed", "tenant", u.t.ID, "err", err)
			return
		}
		h.fail(w, u, err)
	}
}

// afterAction goes back to the request's page, or shows the error there.
func (h *Handler) afterAction(w http.ResponseWriter, r *http.Request, u *user, err error, done string) {
	if err != nil {
		if statusOf(err) >= 500 {
			h.fail(w, u, err)
			return
		}
		h.showRequest(w, r, u, statusOf(err), custos.ErrorMessage(err), "")
		return
	}
	http.Redirect(w, r, "/console/requests/"+url.PathEscape(r.PathValue("id"))+"?done="+done, http.StatusSeeOther)
}

func (h *Handler) extendRequest(w http.ResponseWriter, r *http.Request, u *user) {
	months, err := strconv.Atoi(r.PostFormValue("months"))
	if err != nil {
		h.afterAction(w, r, u, custos.Errorf(custos.Invalid, "months must be 1 or 2"), "")
		return
	}
	_, err = h.d.Requests.Extend(r.Context(), u.t.ID, r.PathValue("id"), months, r.PostFormValue("reason"), u.actor())
	h.afterAction(w, r, u, err, "extended")
}

func (h *Handler) cancelRequest(w http.ResponseWriter, r *http.Request, u *user) {
	_, err := h.d.Requests.Cancel(r.Context(), u.t.ID, r.PathValue("id"), u.actor())
	h.afterAction(w, r, u, err, "cancelled")
}

func (h *Handler) approveRequest(w http.ResponseWriter, r *http.Request, u *user) {
	_, err := h.d.Requests.Approve(r.Context(), u.t.ID, r.PathValue("id"), u.actor())
	h.afterAction(w, r, u, err, "approved")
}

func (h *Handler) rejectRequest(w http.ResponseWriter, r *http.Request, u *user) {
	_, err := h.d.Requests.Reject(r.Context(), u.t.ID, r.PathValue("id"), r.PostFormValue("reason"), u.actor())
	h.afterAction(w, r, u, err, "rejected")
}
