package server

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/incident"
	"github.com/custos-dev/custos/internal/tenants"
)

// tenantIncidentView is an incident as its tenant sees it: the Art. 33(3)
// description, when the tenant was told and its 72-hour clock.
type tenantIncidentView struct {
	incident.View
	ApproxSubjects int64                    `json:"approx_subjects"`
	ApproxRecords  int64                    `json:"approx_records"`
	NotifiedAt     time.Time                `json:"notified_at"`
	AcknowledgedAt time.Time                `json:"acknowledged_at,omitzero"`
	Deadline       incident.Deadline        `json:"authority_deadline"`
	Messages       []custos.IncidentMessage `json:"messages"`
}

func viewTenantIncident(inc *custos.Incident, n *custos.IncidentNotification, now time.Time) tenantIncidentView {
	return tenantIncidentView{View: incident.ViewOf(inc), ApproxSubjects: n.Subjects, ApproxRecords: n.Records,
		NotifiedAt: n.NotifiedAt, AcknowledgedAt: n.AcknowledgedAt, Deadline: incident.DeadlineOf(n, now), Messages: n.Messages}
}

// operatorTenantView is one tenant's notification as the operator sees it.
type operatorTenantView struct {
	*custos.IncidentNotification
	TenantName string            `json:"tenant_name,omitempty"`
	Deadline   incident.Deadline `json:"authority_deadline"`
	Warnings   []string          `json:"warnings"`
}

// operatorIncidentView is an incident with its scope and each tenant's
// notification.
type operatorIncidentView struct {
	incident.View
	Scope         custos.IncidentScope `json:"scope"`
	Tenants       []custos.TenantID    `json:"tenants"`
	Notifications []operatorTenantView `json:"notifications"`
}

// incidentSummary is an incident in the operator's list: counts, named
// as counts (the detail has the lists).
type incidentSummary struct {
	ID          string    `json:"id"`
	Status      string    `json:"status"`
	OpenedAt    time.Time `json:"opened_at"`
	DetectedAt  time.Time `json:"detected_at"`
	Nature      string    `json:"nature"`
	TenantCount int       `json:"tenant_count"`
	UpdateCount int       `json:"update_count"`
}

func handleOpenIncident(log *slog.Logger, reg *incident.Register, tenantReg *tenants.Registry, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := decodeBody[incident.OpenInput](w, r, maxBody)
		if err != nil {
			writeError(w, log, err)
			return
		}
		inc, err := reg.Open(r.Context(), in)
		if err != nil && inc == nil {
			writeError(w, log, err)
			return
		}
		if err != nil {
			// Stored and resumable: the operator sees what reached whom.
			log.Error("incident opened, some notifications failed", "incident", inc.ID, "err", err)
		}
		log.Info("incident opened", "incident", inc.ID, "tenants", len(inc.Tenants))
		writeOperatorIncident(w, r, log, reg, tenantReg, now, inc.ID, http.StatusCreated)
	})
}

func writeOperatorIncident(w http.ResponseWriter, r *http.Request, log *slog.Logger, reg *incident.Register, tenantReg *tenants.Registry, now func() time.Time, id string, status int) {
	inc, ns, err := reg.Incident(r.Context(), id)
	if err != nil {
		writeError(w, log, err)
		return
	}
	writeJSON(w, status, operatorView(inc, ns, tenantReg, now()))
}

func operatorView(inc *custos.Incident, ns []*custos.IncidentNotification, tenantReg *tenants.Registry, now time.Time) operatorIncidentView {
	v := operatorIncidentView{View: incident.ViewOf(inc), Scope: inc.Scope, Tenants: inc.Tenants, Notifications: []operatorTenantView{}}
	for _, n := range ns {
		tv := operatorTenantView{IncidentNotification: n, Deadline: incident.DeadlineOf(n, now), Warnings: incident.Warnings(n)}
		if tenantReg != nil {
			if t, ok := tenantReg.Get(n.Tenant); ok {
				tv.TenantName = t.Name
			}
		}
		v.Notifications = append(v.Notifications, tv)
	}
	return v
}

func handleListIncidents(log *slog.Logger, reg *incident.Register) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := readPage(r, "incidents")
		if err != nil {
			writeError(w, log, err)
			return
		}
		all, err := reg.Incidents(r.Context())
		if err != nil {
			writeError(w, log, err)
			return
		}
		list, next := pageSlice(all, p, func(inc *custos.Incident) string { return inc.ID })
		out := make([]incidentSummary, len(list))
		for i, inc := range list {
			out[i] = incidentSummary{inc.ID, inc.Status, inc.OpenedAt, inc.DetectedAt, inc.Nature, len(inc.Tenants), len(inc.Updates)}
		}
		writeJSON(w, http.StatusOK, listPage("incidents", out, next))
	})
}

func handleGetIncident(log *slog.Logger, reg *incident.Register, tenantReg *tenants.Registry, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inc, ns, err := reg.Incident(r.Context(), r.PathValue("id"))
		if err != nil {
			writeError(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, operatorView(inc, ns, tenantReg, now()))
	})
}

func handleUpdateIncident(log *slog.Logger, reg *incident.Register, tenantReg *tenants.Registry, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := decodeBody[incident.UpdateInput](w, r, maxBody)
		if err != nil {
			writeError(w, log, err)
			return
		}
		inc, err := reg.Update(r.Context(), r.PathValue("id"), in)
		if err != nil && inc == nil {
			writeError(w, log, err)
			return
		}
		if err != nil {
			log.Error("incident updated, some notifications failed", "incident", inc.ID, "err", err)
		}
		writeOperatorIncident(w, r, log, reg, tenantReg, now, inc.ID, http.StatusCreated)
	})
}

func handleCloseIncident(log *slog.Logger, reg *incident.Register, tenantReg *tenants.Registry, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := decodeOptionalBody[struct {
			Note string `json:"note"`
		}](w, r, maxBody)
		if err != nil {
			writeError(w, log, err)
			return
		}
		inc, err := reg.Close(r.Context(), r.PathValue("id"), in.Note)
		if err != nil && inc == nil {
			writeError(w, log, err)
			return
		}
		if err != nil {
			log.Error("incident closed, some notifications failed", "incident", inc.ID, "err", err)
		}
		writeOperatorIncident(w, r, log, reg, tenantReg, now, inc.ID, http.StatusOK)
	})
}

func handleTenantIncidents(log *slog.Logger, reg *incident.Register, now func() time.Time) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		p, err := readPage(r, "incidents")
		if err != nil {
			writeError(w, log, err)
			return
		}
		incs, ns, err := reg.TenantIncidents(r.Context(), t.ID)
		if err != nil {
			writeError(w, log, err)
			return
		}
		all := make([]tenantIncidentView, len(incs))
		for i := range incs {
			all[i] = viewTenantIncident(incs[i], ns[i], now())
		}
		out, next := pageSlice(all, p, func(v tenantIncidentView) string { return v.ID })
		writeJSON(w, http.StatusOK, listPage("incidents", out, next))
	}
}

func handleTenantIncident(log *slog.Logger, reg *incident.Register, now func() time.Time) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		inc, n, err := reg.TenantIncident(r.Context(), t.ID, r.PathValue("id"))
		if err != nil {
			writeError(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, viewTenantIncident(inc, n, now()))
	}
}

func handleAcknowledgeIncident(log *slog.Logger, reg *incident.Register, now func() time.Time) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		if _, err := reg.Acknowledge(r.Context(), t.ID, r.PathValue("id")); err != nil {
			writeError(w, log, err)
			return
		}
		handleTenantIncident(log, reg, now)(w, r, t)
	}
}

func handleAffectedSubjects(log *slog.Logger, reg *incident.Register) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		p, err := readPage(r, "affected-subjects")
		if err != nil {
			writeError(w, log, err)
			return
		}
		var after custos.SubjectID
		if p.Position != "" {
			if after, err = custos.ParseSubjectID(p.Position); err != nil {
				writeError(w, log, custos.Errorf(custos.Invalid, "cursor is not a next_cursor this list (affected-subjects) issued"))
				return
			}
		}
		subjects, more, err := reg.AffectedSubjects(r.Context(), t.ID, r.PathValue("id"), after, p.Limit)
		if err != nil {
			writeError(w, log, err)
			return
		}
		next := ""
		if more && len(subjects) > 0 {
			next = p.cursor(subjects[len(subjects)-1].Subject.String())
		}
		writeJSON(w, http.StatusOK, listPage("subjects", subjects, next))
	}
}

func handleIncidentNotice(log *slog.Logger, reg *incident.Register) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		format := r.URL.Query().Get("format")
		if format != "" && format != "json" && format != "text" {
			writeError(w, log, custos.Errorf(custos.Invalid, "format must be json or text"))
			return
		}
		n, err := reg.Notice(r.Context(), t, r.PathValue("id"))
		if err != nil {
			writeError(w, log, err)
			return
		}
		if format == "text" {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Write([]byte("Subject: " + n.Subject + "\n\n" + n.Text))
			return
		}
		writeJSON(w, http.StatusOK, n)
	}
}
