package console

import (
	"context"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
	"github.com/custos-dev/custos/internal/incident"
	"github.com/custos-dev/custos/internal/tenants"
)

// Incidents is what the console needs of the incident register.
type Incidents interface {
	TenantIncidents(ctx context.Context, t custos.TenantID) ([]*custos.Incident, []*custos.IncidentNotification, error)
	TenantIncident(ctx context.Context, t custos.TenantID, id string) (*custos.Incident, *custos.IncidentNotification, error)
	Acknowledge(ctx context.Context, t custos.TenantID, id, actor string) (*custos.IncidentNotification, error)
	AffectedSubjects(ctx context.Context, t custos.TenantID, id string, after custos.SubjectID, limit int, actor string) ([]incident.Affected, bool, error)
	Incidents(ctx context.Context) ([]*custos.Incident, error)
	CloseBy(ctx context.Context, id, note, actor string) (*custos.Incident, error)
	OpenBy(ctx context.Context, in incident.OpenInput, actor string) (*custos.Incident, error)
	UpdateBy(ctx context.Context, id string, u incident.UpdateInput, actor string) (*custos.Incident, error)
}

// incidentRow is an incident with the tenant's 72-hour clock.
type incidentRow struct {
	*custos.Incident
	N        *custos.IncidentNotification
	Deadline incident.Deadline
	// Left is the time left on the clock, as "41 h 12 min".
	Left string
}

func (h *Handler) incidentRow(inc *custos.Incident, n *custos.IncidentNotification) incidentRow {
	row := incidentRow{Incident: inc, N: n}
	if n != nil {
		row.Deadline = incident.DeadlineOf(n, h.d.Now())
		left := row.Deadline.DeadlineAt.Sub(h.d.Now())
		if left > 0 {
			row.Left = (left.Truncate(time.Minute)).String()
		}
	}
	return row
}

func (h *Handler) incidentsPage(w http.ResponseWriter, r *http.Request, u *user) {
	if h.d.Incidents == nil {
		h.fail(w, u, custos.Errorf(custos.NotImplemented, "this node has no incident register"))
		return
	}
	incs, ns, err := h.d.Incidents.TenantIncidents(r.Context(), u.t.ID)
	if err != nil {
		h.fail(w, u, err)
		return
	}
	rows := make([]incidentRow, len(incs))
	for i := range incs {
		rows[i] = h.incidentRow(incs[i], ns[i])
	}
	h.render(w, http.StatusOK, "incidents", u.page("Incidents", rows))
}

type incidentData struct {
	incidentRow
	Affected []incident.Affected
	More     bool
	Next     string
	Notice   incident.Notice
	Flash    string
}

// affectedPerPage is how many affected subjects the incident page lists
// at a time.
const affectedPerPage = 25

// incidentPage shows an incident the tenant was told of: its clock, the
// Art. 33(3) description, the affected subjects (paged; each page read is
// audited) and the draft of the Art. 34 notice to them.
func (h *Handler) incidentPage(w http.ResponseWriter, r *http.Request, u *user) {
	if h.d.Incidents == nil {
		h.fail(w, u, custos.Errorf(custos.NotImplemented, "this node has no incident register"))
		return
	}
	ctx, id := r.Context(), r.PathValue("id")
	inc, n, err := h.d.Incidents.TenantIncident(ctx, u.t.ID, id)
	if err != nil {
		h.fail(w, u, err)
		return
	}
	d := incidentData{incidentRow: h.incidentRow(inc, n)}
	if r.URL.Query().Get("done") == "acknowledged" {
		d.Flash = "Incident acknowledged."
	}
	var after custos.SubjectID
	if c := r.URL.Query().Get("after"); c != "" {
		if after, err = custos.ParseSubjectID(c); err != nil {
			h.fail(w, u, custos.Errorf(custos.Invalid, "after must be a subject id"))
			return
		}
	}
	d.Affected, d.More, err = h.d.Incidents.AffectedSubjects(ctx, u.t.ID, id, after, affectedPerPage, u.actor())
	if err != nil {
		h.fail(w, u, err)
		return
	}
	if d.More && len(d.Affected) > 0 {
		d.Next = "/console/incidents/" + url.PathEscape(id) + "?after=" + d.Affected[len(d.Affected)-1].Subject.String()
	}
	d.Notice = incident.Draft(inc, &u.t.Settings)
	if err := h.record(ctx, u.t.ID, audit.Entry{Actor: u.actor(), Action: "incident.notice.draft", RequestID: id,
		Details: map[string]any{"incident": id, "exception_likely": d.Notice.ExceptionLikely}}); err != nil {
		h.fail(w, u, err)
		return
	}
	h.render(w, http.StatusOK, "incident", u.page("Incident "+inc.ID, d))
}

func (h *Handler) acknowledgeIncident(w http.ResponseWriter, r *http.Request, u *user) {
	if h.d.Incidents == nil {
		h.fail(w, u, custos.Errorf(custos.NotImplemented, "this node has no incident register"))
		return
	}
	if _, err := h.d.Incidents.Acknowledge(r.Context(), u.t.ID, r.PathValue("id"), u.actor()); err != nil {
		h.fail(w, u, err)
		return
	}
	http.Redirect(w, r, "/console/incidents/"+url.PathEscape(r.PathValue("id"))+"?done=acknowledged", http.StatusSeeOther)
}

// health is the node's state as the operator's home page shows it.
type health struct {
	Ready      bool
	Region     string
	Started    time.Time
	Uptime     string
	GoVersion  string
	Goroutines int
	HeapMB     uint64
	Tenants    int
	Open       int
}

type operatorData struct {
	Health  health
	Tenants []tenantRow
	Created *tenants.Keys
	NewID   string
	Error   string
	Name    string
	Region  string
}

type tenantRow struct {
	*custos.Tenant
	Users int
	Here  bool
}

// operatorHome shows the node's health and the tenants.
func (h *Handler) operatorHome(w http.ResponseWriter, r *http.Request, u *user) {
	h.showOperator(w, r, u, http.StatusOK, operatorData{})
}

// createTenant makes a tenant, audited in both chains under the
// operator's name, and shows its keys once.
func (h *Handler) createTenant(w http.ResponseWriter, r *http.Request, u *user) {
	name, region := strings.TrimSpace(r.PostFormValue("name")), strings.TrimSpace(r.PostFormValue("region"))
	t, keys, err := h.d.Changes.As(u.actor()).Create(r.Context(), name, region)
	if err != nil {
		if statusOf(err) >= 500 {
			h.fail(w, u, err)
			return
		}
		h.showOperator(w, r, u, statusOf(err), operatorData{Error: custos.ErrorMessage(err), Name: name, Region: region})
		return
	}
	h.showOperator(w, r, u, http.StatusCreated, operatorData{Created: &keys, NewID: t.ID.String()})
}

func (h *Handler) showOperator(w http.ResponseWriter, r *http.Request, u *user, status int, d operatorData) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	now := h.d.Now()
	d.Health = health{Ready: h.d.Ready == nil || h.d.Ready(), Region: h.d.Region, Started: h.started,
		Uptime: now.Sub(h.started).Truncate(time.Second).String(), GoVersion: runtime.Version(),
		Goroutines: runtime.NumGoroutine(), HeapMB: ms.HeapAlloc >> 20}
	for _, t := range h.d.Tenants.List() {
		d.Tenants = append(d.Tenants, tenantRow{Tenant: t, Users: len(t.ConsoleUsers), Here: h.d.Tenants.Misdirected(t) == nil})
	}
	d.Health.Tenants = len(d.Tenants)
	if h.d.Incidents != nil {
		incs, err := h.d.Incidents.Incidents(r.Context())
		if err != nil {
			h.fail(w, u, err)
			return
		}
		for _, inc := range incs {
			if inc.Status == custos.IncidentOpen {
				d.Health.Open++
			}
		}
	}
	h.render(w, status, "operator", u.page("Node", d))
}

// operatorIncident is an incident as the operator lists it.
type operatorIncident struct {
	*custos.Incident
	DeadlineAt time.Time
	Overdue    bool
}

func (h *Handler) operatorIncidents(w http.ResponseWriter, r *http.Request, u *user) {
	h.showOperatorIncidents(w, r, u, http.StatusOK, "")
}

func (h *Handler) showOperatorIncidents(w http.ResponseWriter, r *http.Request, u *user, status int, msg string) {
	if h.d.Incidents == nil {
		h.fail(w, u, custos.Errorf(custos.NotImplemented, "this node has no incident register"))
		return
	}
	incs, err := h.d.Incidents.Incidents(r.Context())
	if err != nil {
		h.fail(w, u, err)
		return
	}
	rows := make([]operatorIncident, 0, len(incs))
	for _, inc := range incs {
		at := inc.OpenedAt.Add(incident.AuthorityWindow)
		rows = append(rows, operatorIncident{Incident: inc, DeadlineAt: at, Overdue: inc.Status == custos.IncidentOpen && h.d.Now().After(at)})
	}
	slices.SortFunc(rows, func(a, b operatorIncident) int { return b.OpenedAt.Compare(a.OpenedAt) })
	p := u.page("Incidents", rows)
	switch r.URL.Query().Get("done") {
	case "closed":
		p.Flash = "Incident closed; every tenant it concerns is told."
	case "opened":
		p.Flash = "Incident opened; every tenant in its scope is notified."
	case "updated":
		p.Flash = "Update recorded; every tenant notified of the incident is told."
	}
	p.Error = msg
	h.render(w, status, "operator_incidents", p)
}

// closeIncident closes an incident with a note, audited under the
// operator's name; the tenants are told.
func (h *Handler) closeIncident(w http.ResponseWriter, r *http.Request, u *user) {
	if h.d.Incidents == nil {
		h.fail(w, u, custos.Errorf(custos.NotImplemented, "this node has no incident register"))
		return
	}
	if _, err := h.d.Incidents.CloseBy(r.Context(), r.PathValue("id"), strings.TrimSpace(r.PostFormValue("note")), u.actor()); err != nil {
		if statusOf(err) >= 500 || statusOf(err) == http.StatusNotFound {
			h.fail(w, u, err)
			return
		}
		h.showOperatorIncidents(w, r, u, statusOf(err), custos.ErrorMessage(err))
		return
	}
	http.Redirect(w, r, "/console/operator/incidents?done=closed", http.StatusSeeOther)
}

// formList splits a comma- or newline-separated form field into its
// trimmed, non-empty items.
func formList(v string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == '\n' }) {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// incidentFailed shows an incident form's error on the incidents page,
// or the error page for what the form cannot fix.
func (h *Handler) incidentFailed(w http.ResponseWriter, r *http.Request, u *user, err error) {
	if statusOf(err) >= 500 || statusOf(err) == http.StatusNotFound {
		h.fail(w, u, err)
		return
	}
	h.showOperatorIncidents(w, r, u, statusOf(err), custos.ErrorMessage(err))
}

// openIncident registers an incident (Art. 33) from the operator's form,
// audited under the operator's name; every tenant in its scope is
// notified at once.
func (h *Handler) openIncident(w http.ResponseWriter, r *http.Request, u *user) {
	if h.d.Incidents == nil {
		h.fail(w, u, custos.Errorf(custos.NotImplemented, "this node has no incident register"))
		return
	}
	detected, err := time.Parse("2006-01-02T15:04", r.PostFormValue("detected_at"))
	if err != nil {
		h.incidentFailed(w, r, u, custos.Errorf(custos.Invalid, "detected_at: give the date and time (UTC) the breach was detected"))
		return
	}
	in := incident.OpenInput{
		DetectedAt: detected.UTC(), Nature: strings.TrimSpace(r.PostFormValue("nature")),
		DataCategories: formList(r.PostFormValue("data_categories")),
		Encrypted:      r.PostFormValue("encrypted") == "on", KeysSafe: r.PostFormValue("keys_safe") == "on",
		Consequences: strings.TrimSpace(r.PostFormValue("likely_consequences")), Measures: strings.TrimSpace(r.PostFormValue("measures_taken")),
		ContactPoint: strings.TrimSpace(r.PostFormValue("contact_point")),
		Scope:        custos.IncidentScope{AllTenants: r.PostFormValue("all_tenants") == "on"},
	}
	for i, id := range formList(r.PostFormValue("tenants")) {
		tid, err := custos.ParseTenantID(id)
		if err != nil {
			h.incidentFailed(w, r, u, custos.Errorf(custos.Invalid, "tenants[%d]: %q is not a tenant id", i, id))
			return
		}
		in.Scope.Tenants = append(in.Scope.Tenants, tid)
	}
	if _, err := h.d.Incidents.OpenBy(r.Context(), in, u.actor()); err != nil {
		h.incidentFailed(w, r, u, err)
		return
	}
	http.Redirect(w, r, "/console/operator/incidents?done=opened", http.StatusSeeOther)
}

// updateIncident records a phased update (Art. 33(4)) from the operator's
// form; the tenants notified of the incident are told.
func (h *Handler) updateIncident(w http.ResponseWriter, r *http.Request, u *user) {
	if h.d.Incidents == nil {
		h.fail(w, u, custos.Errorf(custos.NotImplemented, "this node has no incident register"))
		return
	}
	up := incident.UpdateInput{Message: strings.TrimSpace(r.PostFormValue("message")),
		Measures: strings.TrimSpace(r.PostFormValue("measures_taken"))}
	if _, err := h.d.Incidents.UpdateBy(r.Context(), r.PathValue("id"), up, u.actor()); err != nil {
		h.incidentFailed(w, r, u, err)
		return
	}
	http.Redirect(w, r, "/console/operator/incidents?done=updated", http.StatusSeeOther)
}
