package incident

import (
	"context"
	"math"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
)

// AuthorityWindow is how long a controller has, from becoming aware of a
// breach, to tell its supervisory authority (Art. 33(1)). Custos counts it
// from the moment it notified the tenant.
const AuthorityWindow = 72 * time.Hour

// Deadline is the controller's 72-hour clock.
type Deadline struct {
	DeadlineAt     time.Time `json:"deadline_at"`
	HoursRemaining float64   `json:"hours_remaining"` // 0 once overdue
	Overdue        bool      `json:"overdue"`
}

// DeadlineOf returns the clock of a notification at now: overdue only
// strictly after 72 hours.
func DeadlineOf(n *custos.IncidentNotification, now time.Time) Deadline {
	at := n.NotifiedAt.Add(AuthorityWindow)
	left := at.Sub(now)
	return Deadline{DeadlineAt: at, HoursRemaining: math.Max(0, math.Floor(left.Hours()*100)/100), Overdue: now.After(at)}
}

// View is an incident as a tenant sees it: the Art. 33(3) description,
// never the other tenants it concerns.
type View struct {
	ID             string                  `json:"id"`
	Status         string                  `json:"status"`
	OpenedAt       time.Time               `json:"opened_at"`
	DetectedAt     time.Time               `json:"detected_at"`
	Nature         string                  `json:"nature"`
	DataCategories []string                `json:"data_categories"`
	Encrypted      bool                    `json:"encrypted"`
	KeysSafe       bool                    `json:"keys_safe"`
	Consequences   string                  `json:"likely_consequences"`
	Measures       string                  `json:"measures_taken"`
	ContactPoint   string                  `json:"contact_point"`
	EventsFrom     time.Time               `json:"events_from,omitzero"`
	EventsTo       time.Time               `json:"events_to,omitzero"`
	Updates        []custos.IncidentUpdate `json:"updates"`
	ClosedAt       time.Time               `json:"closed_at,omitzero"`
	ClosingNote    string                  `json:"closing_note,omitempty"`
}

// ViewOf returns the tenant's view of an incident.
func ViewOf(inc *custos.Incident) View {
	return View{ID: inc.ID, Status: inc.Status, OpenedAt: inc.OpenedAt, DetectedAt: inc.DetectedAt, Nature: inc.Nature,
		DataCategories: inc.DataCategories, Encrypted: inc.Encrypted, KeysSafe: inc.KeysSafe, Consequences: inc.Consequences,
		Measures: inc.Measures, ContactPoint: inc.ContactPoint, EventsFrom: inc.Scope.EventsFrom, EventsTo: inc.Scope.EventsTo,
		Updates: inc.Updates, ClosedAt: inc.ClosedAt, ClosingNote: inc.ClosingNote}
}

// TenantIncident returns an incident and the tenant's notification of
// it; NotFound when the tenant is not in its scope.
func (r *Register) TenantIncident(ctx context.Context, t custos.TenantID, id string) (*custos.Incident, *custos.IncidentNotification, error) {
	n, err := r.store.IncidentNotification(ctx, t, id)
	if err != nil {
		return nil, nil, err
	}
	inc, err := r.store.Incident(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	return inc, n, nil
}

// TenantIncidents returns the incidents a tenant was notified of, newest
// first, with its notifications.
func (r *Register) TenantIncidents(ctx context.Context, t custos.TenantID) ([]*custos.Incident, []*custos.IncidentNotification, error) {
	ns, err := r.store.IncidentNotifications(ctx, t)
	if err != nil {
		return nil, nil, err
	}
	var incs []*custos.Incident
	var keep []*custos.IncidentNotification
	for i := len(ns) - 1; i >= 0; i-- {
		inc, err := r.store.Incident(ctx, ns[i].Incident)
		if custos.ErrorCode(err) == custos.NotFound {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		incs, keep = append(incs, inc), append(keep, ns[i])
	}
	return incs, keep, nil
}

// Acknowledge records that the tenant received the notification, by
// actor (audit.ActorTenant through the API). The first acknowledgement
// counts; later ones change nothing.
func (r *Register) Acknowledge(ctx context.Context, t custos.TenantID, id, actor string) (*custos.IncidentNotification, error) {
	r.mu.Lock()
	n, err := r.store.IncidentNotification(ctx, t, id)
	first := err == nil && n.AcknowledgedAt.IsZero()
	if first {
		n.AcknowledgedAt = r.now().UTC()
		err = r.store.PutIncidentNotification(ctx, n)
	}
	r.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if first {
		if err := r.record(ctx, t, audit.Entry{Actor: actor, Action: "incident.acknowledge", RequestID: id,
			Details: map[string]any{"incident": id}}); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// Affected is one affected subject, with the identifiers the controller
// needs to tell the person.
type Affected struct {
	Subject     custos.SubjectID    `json:"subject_id"`
	Identifiers map[string][]string `json:"identifiers"`
}

// AffectedSubjects returns up to limit subjects of tenant t in the
// incident's scope after the subject after (zero: from the start), read
// by opening their profiles, and whether more may follow. Each page is
// audited under the subjects' pseudonyms.
//
// actor is who reads them (audit.ActorTenant through the API).
func (r *Register) AffectedSubjects(ctx context.Context, t custos.TenantID, id string, after custos.SubjectID, limit int, actor string) ([]Affected, bool, error) {
	inc, _, err := r.TenantIncident(ctx, t, id)
	if err != nil {
		return nil, false, err
	}
	out := []Affected{}
	pseudonyms := []string{}
	more := false
	err = r.store.EachProfile(ctx, t, after, func(p custos.StoredProfile) (bool, error) {
		_, ok, err := r.inScope(ctx, t, p.Subject, inc, false)
		if err != nil || !ok {
			return err == nil, err
		}
		if len(out) == limit {
			more = true
			return false, nil
		}
		prof, err := r.profiles.Profile(ctx, t, p.Subject)
		if custos.ErrorCode(err) == custos.NotFound {
			return true, nil // erased meanwhile
		}
		if err != nil {
			return false, err
		}
		ps, err := r.profiles.Pseudonym(t, p.Subject)
		if err != nil {
			return false, err
		}
		out = append(out, Affected{Subject: p.Subject, Identifiers: prof.Identifiers})
		pseudonyms = append(pseudonyms, ps)
		return true, nil
	})
	if err != nil {
		return nil, false, err
	}
	if err := r.record(ctx, t, audit.Entry{Actor: actor, Action: "incident.affected_subjects.read", RequestID: id,
		Details: map[string]any{"incident": id, "subjects": len(out), "pseudonyms": pseudonyms}}); err != nil {
		return nil, false, err
	}
	return out, more, nil
}

// Warnings lists what the operator should know about a notification:
// a tenant with no contact configured was told in the tenant API only.
func Warnings(n *custos.IncidentNotification) []string {
	w := []string{}
	if len(n.Messages) == 0 {
		return w
	}
	m := n.Messages[0]
	wh, em := m.Channel(custos.ChannelWebhook), m.Channel(custos.ChannelEmail)
	if wh != nil && em != nil && wh.Status == custos.DeliveryNotConfigured && em.Status == custos.DeliveryNotConfigured {
		w = append(w, "no contact configured: the tenant is notified in the tenant API only")
	}
	for _, m := range n.Messages {
		for _, c := range m.Channels {
			if c.Status == custos.DeliveryRefused {
				w = append(w, m.Kind+" by "+c.Channel+" refused: "+refusal(c))
			}
		}
	}
	return w
}

func refusal(c custos.ChannelDelivery) string {
	if c.Note != "" {
		return c.Note
	}
	if k := len(c.Attempts); k > 0 {
		return c.Attempts[k-1].Error
	}
	return "no reason recorded"
}
