package custos

import (
	"context"
	"time"
)

// Incident is a personal data breach registered by the operator (GDPR
// Art. 33): what happened, what it touched, and whom it concerns. It holds
// no personal data; the affected tenants are told through
// IncidentNotification records.
type Incident struct {
	ID         string    `json:"id"`
	OpenedAt   time.Time `json:"opened_at"`
	DetectedAt time.Time `json:"detected_at"`
	// The Art. 33(3) description, as currently known (updates may
	// replace each of these).
	Nature         string   `json:"nature"`
	DataCategories []string `json:"data_categories"`
	// Encrypted and KeysSafe together make the Art. 34(3)(a) exception
	// likely: the data was unintelligible to whoever got it.
	Encrypted    bool   `json:"encrypted"`
	KeysSafe     bool   `json:"keys_safe"`
	Consequences string `json:"likely_consequences"`
	Measures     string `json:"measures_taken"`
	ContactPoint string `json:"contact_point"`

	Scope IncidentScope `json:"scope"`
	// Tenants are the tenants the scope resolved to when the incident
	// was opened: each of them is notified.
	Tenants []TenantID `json:"tenants"`

	Status      string           `json:"status"` // IncidentOpen or IncidentClosed
	Updates     []IncidentUpdate `json:"updates"`
	ClosedAt    time.Time        `json:"closed_at,omitzero"`
	ClosingNote string           `json:"closing_note,omitempty"`
}

// Incident statuses.
const (
	IncidentOpen   = "open"
	IncidentClosed = "closed"
)

// IncidentScope is what an incident touched: every tenant or a list, and
// optionally only subjects with events in a time window.
type IncidentScope struct {
	AllTenants bool       `json:"all_tenants"`
	Tenants    []TenantID `json:"tenants,omitempty"`
	// EventsFrom and EventsTo, when set, narrow the incident to subjects
	// with at least one event at or after From and at or before To.
	EventsFrom time.Time `json:"events_from,omitzero"`
	EventsTo   time.Time `json:"events_to,omitzero"`
}

// Windowed reports whether the scope is narrowed to an event time window.
func (s IncidentScope) Windowed() bool { return !s.EventsFrom.IsZero() || !s.EventsTo.IsZero() }

// IncidentUpdate is one phased update (Art. 33(4)): a message, and the
// description fields it replaces, if any.
type IncidentUpdate struct {
	Seq            int       `json:"seq"`
	At             time.Time `json:"at"`
	Message        string    `json:"message"`
	Nature         string    `json:"nature,omitempty"`
	DataCategories []string  `json:"data_categories,omitempty"`
	Consequences   string    `json:"likely_consequences,omitempty"`
	Measures       string    `json:"measures_taken,omitempty"`
}

// IncidentNotification is what one tenant was told about one incident,
// when, and how each message reached it.
type IncidentNotification struct {
	Incident       string    `json:"incident_id"`
	Tenant         TenantID  `json:"tenant_id"`
	NotifiedAt     time.Time `json:"notified_at"`
	AcknowledgedAt time.Time `json:"acknowledged_at,omitzero"`
	// Subjects and Records are the approximate numbers of data subjects
	// and event records in scope, counted when the incident was opened.
	Subjects int64 `json:"approx_subjects"`
	Records  int64 `json:"approx_records"`
	// Messages are the opening notice, each update and the closing note,
	// in order.
	Messages []IncidentMessage `json:"messages"`
}

// Message returns the message with the kind and seq, or nil.
func (n *IncidentNotification) Message(kind string, seq int) *IncidentMessage {
	for i := range n.Messages {
		if n.Messages[i].Kind == kind && n.Messages[i].Seq == seq {
			return &n.Messages[i]
		}
	}
	return nil
}

// Kinds of incident message.
const (
	IncidentMessageOpened  = "incident.opened"
	IncidentMessageUpdated = "incident.updated"
	IncidentMessageClosed  = "incident.closed"
)

// IncidentMessage is one message to a tenant about an incident and its
// delivery through each channel.
type IncidentMessage struct {
	Kind     string            `json:"kind"`
	Seq      int               `json:"seq"` // the update's seq; 0 for opening and closing
	At       time.Time         `json:"at"`
	Channels []ChannelDelivery `json:"channels"`
}

// Channel returns the delivery through the named channel, or nil.
func (m *IncidentMessage) Channel(name string) *ChannelDelivery {
	for i := range m.Channels {
		if m.Channels[i].Channel == name {
			return &m.Channels[i]
		}
	}
	return nil
}

// ChannelDelivery is the delivery of one message through one channel
// (ChannelWebhook, ChannelEmail, ChannelInApp) and every attempt made.
type ChannelDelivery struct {
	Channel string `json:"channel"`
	// Status is one of the Delivery* constants.
	Status string `json:"status"`
	// DeliveryID is the webhook outbox delivery carrying it.
	DeliveryID  string            `json:"delivery_id,omitempty"`
	NextAt      time.Time         `json:"next_at,omitzero"`
	DeliveredAt time.Time         `json:"delivered_at,omitzero"`
	Note        string            `json:"note,omitempty"`
	Attempts    []DeliveryAttempt `json:"attempts"`
}

// Final reports whether no further attempt will be made.
func (c *ChannelDelivery) Final() bool {
	return c.Status == DeliveryDelivered || c.Status == DeliveryRefused || c.Status == DeliveryNotConfigured
}

// Delivery statuses of a channel.
const (
	DeliveryPending       = "pending"
	DeliveryRetrying      = "retrying"
	DeliveryDelivered     = "delivered"
	DeliveryRefused       = "refused"
	DeliveryNotConfigured = "not_configured"
)

// DeliveryAttempt is one attempt to deliver a message and its outcome.
type DeliveryAttempt struct {
	At time.Time `json:"at"`
	OK bool      `json:"ok"`
	// Status is the HTTP status (webhook) or 0; Error says what failed.
	Status int    `json:"status,omitempty"`
	Error  string `json:"error,omitempty"`
}

// IncidentStore keeps incidents (operator records) and tenants'
// notifications (in each tenant's range, deleted with the tenant).
type IncidentStore interface {
	// PutIncident stores an incident durably, replacing one with the same id.
	PutIncident(ctx context.Context, in *Incident) error
	// Incident returns one incident, or NotFound.
	Incident(ctx context.Context, id string) (*Incident, error)
	// Incidents returns every incident ordered by id (ids sort by opening).
	Incidents(ctx context.Context) ([]*Incident, error)
	// PutIncidentNotification stores a tenant's notification durably,
	// replacing one for the same tenant and incident.
	PutIncidentNotification(ctx context.Context, n *IncidentNotification) error
	// IncidentNotification returns a tenant's notification of an
	// incident, or NotFound.
	IncidentNotification(ctx context.Context, t TenantID, incident string) (*IncidentNotification, error)
	// IncidentNotifications returns a tenant's notifications ordered by
	// incident id.
	IncidentNotifications(ctx context.Context, t TenantID) ([]*IncidentNotification, error)
}
