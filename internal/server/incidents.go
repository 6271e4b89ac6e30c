package server

import (
	"log/slog"
	"net/http"
	"strconv"
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

// operatorIncidentView is an incident with each tenant's notification.
type operatorIncidentView struct {
	*custos.Incident
	Notifications []operatorTenantView `json:"notifications"`
}

func handleOpenIncident(log *slog.Logger, reg *incident.Register, tenantReg *tenants.Registry, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in incident.OpenInput
		if err := decodeJSON(r, &in); err != nil {
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
	v := operatorIncidentView{Incident: inc, Notifications: []operatorTenantView{}}
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
		list, err := reg.Incidents(r.Context())
		if err != nil {
			writeError(w, log, err)
			return
		}
		type summary struct {
			ID         string    `json:"id"`
			Status     string    `json:"status"`
			OpenedAt   time.Time `json:"opened_at"`
			DetectedAt time.Time `json:"detected_at"`
			Nature     string    `json:"nature"`
			Tenants    int       `json:"tenants"`
			Updates    int       `json:"updates"`
		}
		out := []summary{}
		for _, inc := range list {
			out = append(out, summary{inc.ID, inc.Status, inc.OpenedAt, inc.DetectedAt, inc.Nature, len(inc.Tenants), len(inc.Updates)})
		}
		writeJSON(w, http.StatusOK, map[string]any{"incidents": out})
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
		var in incident.UpdateInput
		if err := decodeJSON(r, &in); err != nil {
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
		var in struct {
			Note string `json:"note"`
		}
		if err := decodeJSON(r, &in); err != nil {
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
		incs, ns, err := reg.TenantIncidents(r.Context(), t.ID)
		if err != nil {
			writeError(w, log, err)
			return
		}
		out := []tenantIncidentView{}
		for i := range incs {
			out = append(out, viewTenantIncident(incs[i], ns[i], now()))
		}
		writeJSON(w, http.StatusOK, map[string]any{"incidents": out})
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
		q := r.URL.Query()
		limit := 100
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1000 {
				writeError(w, log, custos.Errorf(custos.Invalid, "limit must be a whole number from 1 to 1000"))
				return
			}
			limit = n
		}
		var after custos.SubjectID
		if v := q.Get("cursor"); v != "" {
			var err error
			if after, err = custos.ParseSubjectID(v); err != nil {
				writeError(w, log, custos.Errorf(custos.Invalid, "cursor is not one this server issued"))
				return
			}
		}
		subjects, more, err := reg.AffectedSubjects(r.Context(), t.ID, r.PathValue("id"), after, limit)
		if err != nil {
			writeError(w, log, err)
			return
		}
		next := ""
		if more && len(subjects) > 0 {
			next = subjects[len(subjects)-1].Subject.String()
		}
		writeJSON(w, http.StatusOK, map[string]any{"subjects": subjects, "next_cursor": next})
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
