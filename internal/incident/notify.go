package incident

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
)

// notifyAll brings every tenant of the incident up to date: a
// notification, a message for the opening, each update and the closing,
// and each webhook handed to the outbox. It is idempotent.
func (r *Register) notifyAll(ctx context.Context, inc *custos.Incident) error {
	var first error
	for _, t := range inc.Tenants {
		if err := r.notify(ctx, inc, t); err != nil {
			// One tenant's trouble must not keep the others uninformed.
			r.log.Error("incident notification", "incident", inc.ID, "tenant", t.String(), "err", err)
			if first == nil {
				first = err
			}
		}
	}
	r.Kick()
	return first
}

// wantedMessages lists the messages a tenant is owed about inc, in order.
func wantedMessages(inc *custos.Incident) []custos.IncidentMessage {
	ms := []custos.IncidentMessage{{Kind: custos.IncidentMessageOpened, At: inc.OpenedAt}}
	for _, u := range inc.Updates {
		ms = append(ms, custos.IncidentMessage{Kind: custos.IncidentMessageUpdated, Seq: u.Seq, At: u.At})
	}
	if inc.Status == custos.IncidentClosed {
		ms = append(ms, custos.IncidentMessage{Kind: custos.IncidentMessageClosed, At: inc.ClosedAt})
	}
	return ms
}

// deliveryID is the outbox id of a message's webhook: fixed, so that a
// resumed notification finds it.
func deliveryID(inc string, m custos.IncidentMessage) string {
	return inc + "." + strings.TrimPrefix(m.Kind, "incident.") + "." + strconv.Itoa(m.Seq)
}

func (r *Register) notify(ctx context.Context, inc *custos.Incident, id custos.TenantID) error {
	ten, ok := r.tenants.Get(id)
	if !ok {
		return nil // deleted since: nobody is left to tell
	}
	_, err := r.store.IncidentNotification(ctx, id, inc.ID)
	created := custos.ErrorCode(err) == custos.NotFound
	if err != nil && !created {
		return err
	}
	var subjects, records int64
	if created {
		// Counted outside the lock: it reads the tenant's whole range.
		if subjects, records, err = r.count(ctx, id, inc); err != nil {
			return fmt.Errorf("count subjects in scope: %w", err)
		}
	}

	r.mu.Lock()
	now := r.now().UTC()
	n, err := r.store.IncidentNotification(ctx, id, inc.ID)
	if custos.ErrorCode(err) == custos.NotFound {
		n = &custos.IncidentNotification{Incident: inc.ID, Tenant: id, NotifiedAt: now, Subjects: subjects, Records: records,
			Messages: []custos.IncidentMessage{}}
		err = nil
	}
	if err != nil {
		r.mu.Unlock()
		return err
	}
	var added []custos.IncidentMessage
	for _, m := range wantedMessages(inc) {
		if n.Message(m.Kind, m.Seq) != nil {
			continue
		}
		m.At = now
		m.Channels = r.channels(ten, inc.ID, m, now)
		n.Messages = append(n.Messages, m)
		added = append(added, m)
	}
	if len(added) > 0 {
		err = r.store.PutIncidentNotification(ctx, n)
	}
	r.mu.Unlock()
	if err != nil {
		return fmt.Errorf("store notification: %w", err)
	}

	if created {
		if err := r.record(ctx, id, audit.Entry{Actor: audit.ActorOperator, Action: "incident.notify", RequestID: inc.ID,
			Details: map[string]any{"incident": inc.ID, "approx_subjects": n.Subjects, "approx_records": n.Records}}); err != nil {
			return err
		}
	}
	for _, m := range added {
		chans := map[string]string{}
		for _, c := range m.Channels {
			chans[c.Channel] = c.Status
		}
		if err := r.record(ctx, id, audit.Entry{Actor: audit.ActorOperator, Action: "incident.message", RequestID: inc.ID,
			Details: map[string]any{"incident": inc.ID, "kind": m.Kind, "seq": m.Seq, "channels": chans}}); err != nil {
			return err
		}
	}
	return r.enqueueWebhooks(ctx, ten, inc, n)
}

// channels returns the deliveries of a new message: a webhook and an
// e-mail where the tenant configured a contact, and always in-app.
func (r *Register) channels(ten *custos.Tenant, inc string, m custos.IncidentMessage, now time.Time) []custos.ChannelDelivery {
	s := &ten.Settings
	wh := custos.ChannelDelivery{Channel: custos.ChannelWebhook, Status: custos.DeliveryNotConfigured,
		Note: "no security_contact_url configured", Attempts: []custos.DeliveryAttempt{}}
	if ep := s.SecurityContactURL; ep != nil {
		if err := s.CheckDestination(ten.Region, "security_contact_url", ep.Region); err != nil {
			wh.Status, wh.Note = custos.DeliveryRefused, custos.ErrorMessage(err)
		} else {
			wh.Status, wh.Note, wh.DeliveryID, wh.NextAt = custos.DeliveryPending, "", deliveryID(inc, m), now
		}
	}
	em := custos.ChannelDelivery{Channel: custos.ChannelEmail, Status: custos.DeliveryNotConfigured,
		Note: "no security_contact_email configured", Attempts: []custos.DeliveryAttempt{}}
	if s.SecurityContactEmail != "" {
		em.Status, em.Note, em.NextAt = custos.DeliveryPending, "", now
		if r.mail == nil {
			em.Note = "waiting: the operator has configured no SMTP server (custos serve --smtp-host)"
		}
	}
	app := custos.ChannelDelivery{Channel: custos.ChannelInApp, Status: custos.DeliveryDelivered, DeliveredAt: now,
		Attempts: []custos.DeliveryAttempt{{At: now, OK: true}}}
	return []custos.ChannelDelivery{wh, em, app}
}

// enqueueWebhooks hands to the outbox every webhook of n it does not hold
// yet (all of them, unless a crash came between storing n and this).
func (r *Register) enqueueWebhooks(ctx context.Context, ten *custos.Tenant, inc *custos.Incident, n *custos.IncidentNotification) error {
	var due []custos.IncidentMessage
	for _, m := range n.Messages {
		if c := m.Channel(custos.ChannelWebhook); c != nil && c.DeliveryID != "" && !c.Final() {
			due = append(due, m)
		}
	}
	if len(due) == 0 {
		return nil
	}
	held, err := r.store.Deliveries(ctx, ten.ID, inc.ID)
	if err != nil {
		return fmt.Errorf("read deliveries: %w", err)
	}
	ep := ten.Settings.SecurityContactURL
	for _, m := range due {
		c := m.Channel(custos.ChannelWebhook)
		if hasDelivery(held, c.DeliveryID) || ep == nil {
			continue
		}
		secret, err := r.tenants.CallbackSecret(ten)
		if err != nil {
			return fmt.Errorf("webhook signing secret: %w", err)
		}
		body, err := json.Marshal(r.payload(inc, n, m))
		if err != nil {
			return err
		}
		if _, err := r.outbox.Enqueue(ctx, custos.Delivery{ID: c.DeliveryID, Tenant: ten.ID, Kind: m.Kind, RequestID: inc.ID,
			Target: "security_contact_url", URL: ep.URL, Secret: []byte(secret), Body: body}); err != nil {
			return fmt.Errorf("enqueue webhook: %w", err)
		}
	}
	return nil
}

func hasDelivery(ds []custos.Delivery, id string) bool {
	for _, d := range ds {
		if d.ID == id {
			return true
		}
	}
	return false
}

// Payload is the JSON body of an incident webhook.
type Payload struct {
	Type           string                 `json:"type"`
	TenantID       custos.TenantID        `json:"tenant_id"`
	Incident       View                   `json:"incident"`
	Update         *custos.IncidentUpdate `json:"update,omitempty"`
	ApproxSubjects int64                  `json:"approx_subjects"`
	ApproxRecords  int64                  `json:"approx_records"`
	NotifiedAt     time.Time              `json:"notified_at"`
	Deadline       Deadline               `json:"authority_deadline"`
	// API is where the tenant reads the incident with its secret key.
	API string `json:"api"`
}

func (r *Register) payload(inc *custos.Incident, n *custos.IncidentNotification, m custos.IncidentMessage) Payload {
	p := Payload{Type: m.Kind, TenantID: n.Tenant, Incident: ViewOf(inc), ApproxSubjects: n.Subjects, ApproxRecords: n.Records,
		NotifiedAt: n.NotifiedAt, Deadline: DeadlineOf(n, r.now()), API: "/api/v1/incidents/" + inc.ID}
	if m.Kind == custos.IncidentMessageUpdated && m.Seq >= 1 && m.Seq <= len(inc.Updates) {
		u := inc.Updates[m.Seq-1]
		p.Update = &u
	}
	return p
}

// RecordAttempt keeps the outcome of a webhook attempt in the tenant's
// notification and the audit log. Wire it to the outbox's OnResult; it
// ignores deliveries that are not incident messages.
func (r *Register) RecordAttempt(d custos.Delivery) {
	if !strings.HasPrefix(d.Kind, "incident.") || d.RequestID == "" {
		return
	}
	ctx := context.Background()
	att := custos.DeliveryAttempt{At: r.now().UTC(), OK: !d.DeliveredAt.IsZero(), Status: d.LastStatus, Error: d.LastError}
	status := custos.DeliveryRetrying
	switch {
	case !d.DeliveredAt.IsZero():
		status = custos.DeliveryDelivered
	case d.Final:
		status = custos.DeliveryRefused
	}
	var kind string
	var seq int
	err := r.updateChannel(ctx, d.Tenant, d.RequestID, func(n *custos.IncidentNotification) *custos.ChannelDelivery {
		for i := range n.Messages {
			if c := n.Messages[i].Channel(custos.ChannelWebhook); c != nil && c.DeliveryID == d.ID {
				kind, seq = n.Messages[i].Kind, n.Messages[i].Seq
				return c
			}
		}
		return nil
	}, func(c *custos.ChannelDelivery) {
		c.Attempts = append(c.Attempts, att)
		c.Status, c.NextAt, c.DeliveredAt = status, d.NextAt, d.DeliveredAt
		if d.Final {
			c.NextAt = time.Time{}
		}
	})
	if err == nil {
		err = r.record(ctx, d.Tenant, audit.Entry{Actor: audit.ActorSystem, Action: "incident.delivery", RequestID: d.RequestID,
			Details: map[string]any{"incident": d.RequestID, "kind": kind, "seq": seq, "channel": custos.ChannelWebhook,
				"status": status, "http_status": d.LastStatus, "error": d.LastError}})
	}
	if err != nil {
		r.log.Error("incident: record webhook attempt", "incident", d.RequestID, "tenant", d.Tenant.String(), "err", err)
	}
}

// updateChannel changes one channel of a notification under the lock.
func (r *Register) updateChannel(ctx context.Context, t custos.TenantID, inc string,
	find func(*custos.IncidentNotification) *custos.ChannelDelivery, change func(*custos.ChannelDelivery)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, err := r.store.IncidentNotification(ctx, t, inc)
	if err != nil {
		return err
	}
	c := find(n)
	if c == nil {
		return custos.Errorf(custos.NotFound, "no such delivery in the notification of incident %s", inc)
	}
	change(c)
	return r.store.PutIncidentNotification(ctx, n)
}
