package server

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
	"github.com/custos-dev/custos/internal/incident"
	"github.com/custos-dev/custos/internal/tenants"
)

// incidentView is an incident's description (Art. 33(3)) and its phased
// updates, as both its tenants and the operator see it.
type incidentView struct {
	ID             string               `json:"id"`
	Status         string               `json:"status"`
	OpenedAt       time.Time            `json:"opened_at"`
	DetectedAt     time.Time            `json:"detected_at"`
	Nature         string               `json:"nature"`
	DataCategories []string             `json:"data_categories"`
	Encrypted      bool                 `json:"encrypted"`
	KeysSafe       bool                 `json:"keys_safe"`
	Consequences   string               `json:"likely_consequences"`
	Measures       string               `json:"measures_taken"`
	ContactPoint   string               `json:"contact_point"`
	EventsFrom     time.Time            `json:"events_from,omitzero"`
	EventsTo       time.Time            `json:"events_to,omitzero"`
	Updates        []incidentUpdateView `json:"updates"`
	ClosedAt       time.Time            `json:"closed_at,omitzero"`
	ClosingNote    string               `json:"closing_note,omitempty"`
}

// incidentUpdateView is one phased update (Art. 33(4)).
type incidentUpdateView struct {
	Seq            int       `json:"seq"`
	At             time.Time `json:"at"`
	Message        string    `json:"message"`
	Nature         string    `json:"nature,omitempty"`
	DataCategories []string  `json:"data_categories,omitempty"`
	Consequences   string    `json:"likely_consequences,omitempty"`
	Measures       string    `json:"measures_taken,omitempty"`
}

func viewIncident(inc *custos.Incident) incidentView {
	v := incidentView{ID: inc.ID, Status: inc.Status, OpenedAt: inc.OpenedAt, DetectedAt: inc.DetectedAt, Nature: inc.Nature,
		DataCategories: inc.DataCategories, Encrypted: inc.Encrypted, KeysSafe: inc.KeysSafe, Consequences: inc.Consequences,
		Measures: inc.Measures, ContactPoint: inc.ContactPoint, EventsFrom: inc.Scope.EventsFrom, EventsTo: inc.Scope.EventsTo,
		Updates: make([]incidentUpdateView, len(inc.Updates)), ClosedAt: inc.ClosedAt, ClosingNote: inc.ClosingNote}
	for i, u := range inc.Updates {
		v.Updates[i] = incidentUpdateView(u)
	}
	return v
}

// incidentMessageView is one message of an incident to a tenant and its
// delivery on each channel.
type incidentMessageView struct {
	Kind     string                `json:"kind"`
	Seq      int                   `json:"seq"`
	At       time.Time             `json:"at"`
	Channels []channelDeliveryView `json:"channels"`
}

// channelDeliveryView is a message's delivery on one channel.
type channelDeliveryView struct {
	Channel     string                `json:"channel"`
	Status      string                `json:"status"`
	DeliveryID  string                `json:"delivery_id,omitempty"`
	NextAt      time.Time             `json:"next_at,omitzero"`
	DeliveredAt time.Time             `json:"delivered_at,omitzero"`
	Note        string                `json:"note,omitempty"`
	Attempts    []deliveryAttemptView `json:"attempts"`
}

// deliveryAttemptView is one attempt to deliver.
type deliveryAttemptView struct {
	At     time.Time `json:"at"`
	OK     bool      `json:"ok"`
	Status int       `json:"status,omitempty"`
	Error  string    `json:"error,omitempty"`
}

func viewIncidentMessages(ms []custos.IncidentMessage) []incidentMessageView {
	out := make([]incidentMessageView, len(ms))
	for i, m := range ms {
		mv := incidentMessageView{Kind: m.Kind, Seq: m.Seq, At: m.At, Channels: make([]channelDeliveryView, len(m.Channels))}
		for j, c := range m.Channels {
			cv := channelDeliveryView{Channel: c.Channel, Status: c.Status, DeliveryID: c.DeliveryID, NextAt: c.NextAt,
				DeliveredAt: c.DeliveredAt, Note: c.Note, Attempts: make([]deliveryAttemptView, len(c.Attempts))}
			for k, a := range c.Attempts {
				cv.Attempts[k] = deliveryAttemptView(a)
			}
			mv.Channels[j] = cv
		}
		out[i] = mv
	}
	return out
}

// deadlineView is a notification's 72-hour clock.
type deadlineView struct {
	DeadlineAt     time.Time `json:"deadline_at"`
	HoursRemaining float64   `json:"hours_remaining"`
	Overdue        bool      `json:"overdue"`
}

func viewDeadline(n *custos.IncidentNotification, now time.Time) deadlineView {
	return deadlineView(incident.DeadlineOf(n, now))
}

// tenantIncidentView is an incident as its tenant sees it: the Art. 33(3)
// description, when the tenant was told and its 72-hour clock.
type tenantIncidentView struct {
	incidentView
	ApproxSubjects int64                 `json:"approx_subjects"`
	ApproxRecords  int64                 `json:"approx_records"`
	NotifiedAt     time.Time             `json:"notified_at"`
	AcknowledgedAt time.Time             `json:"acknowledged_at,omitzero"`
	Deadline       deadlineView          `json:"authority_deadline"`
	Messages       []incidentMessageView `json:"messages"`
}

func viewTenantIncident(inc *custos.Incident, n *custos.IncidentNotification, now time.Time) tenantIncidentView {
	return tenantIncidentView{incidentView: viewIncident(inc), ApproxSubjects: n.Subjects, ApproxRecords: n.Records,
		NotifiedAt: n.NotifiedAt, AcknowledgedAt: n.AcknowledgedAt, Deadline: viewDeadline(n, now), Messages: viewIncidentMessages(n.Messages)}
}

// operatorTenantView is one tenant's notification as the operator sees it.
type operatorTenantView struct {
	Incident       string                `json:"incident_id"`
	Tenant         custos.TenantID       `json:"tenant_id"`
	TenantName     string                `json:"tenant_name,omitempty"`
	NotifiedAt     time.Time             `json:"notified_at"`
	AcknowledgedAt time.Time             `json:"acknowledged_at,omitzero"`
	ApproxSubjects int64                 `json:"approx_subjects"`
	ApproxRecords  int64                 `json:"approx_records"`
	Messages       []incidentMessageView `json:"messages"`
	Deadline       deadlineView          `json:"authority_deadline"`
	Warnings       []string              `json:"warnings"`
}

// scopeView is which tenants and subjects an incident concerns.
type scopeView struct {
	AllTenants bool              `json:"all_tenants"`
	Tenants    []custos.TenantID `json:"tenants,omitempty"`
	EventsFrom time.Time         `json:"events_from,omitzero"`
	EventsTo   time.Time         `json:"events_to,omitzero"`
}

// operatorIncidentView is an incident with its scope and each tenant's
// notification.
type operatorIncidentView struct {
	incidentView
	Scope         scopeView            `json:"scope"`
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
	v := operatorIncidentView{incidentView: viewIncident(inc), Scope: scopeView(inc.Scope), Tenants: inc.Tenants, Notifications: []operatorTenantView{}}
	for _, n := range ns {
		tv := operatorTenantView{Incident: n.Incident, Tenant: n.Tenant, NotifiedAt: n.NotifiedAt, AcknowledgedAt: n.AcknowledgedAt,
			ApproxSubjects: n.Subjects, ApproxRecords: n.Records, Messages: viewIncidentMessages(n.Messages),
			Deadline: viewDeadline(n, now), Warnings: incident.Warnings(n)}
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
		if _, err := reg.Acknowledge(r.Context(), t.ID, r.PathValue("id"), audit.ActorTenant); err != nil {
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
		subjects, more, err := reg.AffectedSubjects(r.Context(), t.ID, r.PathValue("id"), after, p.Limit, audit.ActorTenant)
		if err != nil {
			writeError(w, log, err)
			return
		}
		next := ""
		if more && len(subjects) > 0 {
			next = p.cursor(subjects[len(subjects)-1].Subject.String())
		}
		out := make([]affectedView, len(subjects))
		for i, a := range subjects {
			out[i] = affectedView(a)
		}
		writeJSON(w, http.StatusOK, listPage("subjects", out, next))
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
		writeJSON(w, http.StatusOK, noticeView(n))
	}
}

// noticeView is the draft notice to the people an incident affects.
type noticeView struct {
	Incident        string `json:"incident_id"`
	ExceptionLikely bool   `json:"art34_3a_exception_likely"`
	Assessment      string `json:"assessment"`
	Subject         string `json:"subject"`
	Text            string `json:"text"`
}

// affectedView is a subject an incident affects, with its identifiers,
// for the tenant to notify (Art. 34).
type affectedView struct {
	Subject     custos.SubjectID    `json:"subject_id"`
	Identifiers map[string][]string `json:"identifiers"`
}
