package custos

import (
	"encoding/json"
	"time"
)

// MessageType is the Segment call a message came from.
type MessageType string

// The Segment message types.
const (
	Track    MessageType = "track"
	Identify MessageType = "identify"
	Page     MessageType = "page"
	Screen   MessageType = "screen"
	Group    MessageType = "group"
	Alias    MessageType = "alias"
)

// Message is one decoded, validated and normalised Segment-spec message.
// Free-form parts (properties, traits, context) stay raw JSON: decoding
// them into maps would cost more than everything else on the ingest path.
type Message struct {
	Type        MessageType
	MessageID   string
	UserID      string
	AnonymousID string
	PreviousID  string // alias only
	GroupID     string // group only
	Event       string // track only
	Name        string // page and screen
	Properties  json.RawMessage
	Traits      json.RawMessage
	Context     json.RawMessage // with the batch-level context merged in
	// Timestamp is when the event happened, corrected for the client's
	// clock skew from sentAt; ReceivedAt is set by the server.
	Timestamp  time.Time
	ReceivedAt time.Time
	// Identifiers found in traits and context, already normalised.
	Email     string   // traits.email (identify) or context.traits.email
	DeviceIDs []string // context.device.advertisingId and context.device.id
}

// Identifiers returns every identifier the message carries, in order of
// precedence, e-mail normalised. An alias's previousId counts as the kind it
// most likely is: an anonymous id unless it equals the user id.
func (m *Message) Identifiers() []Identifier {
	ids := make([]Identifier, 0, 4)
	if m.UserID != "" {
		ids = append(ids, Identifier{UserID, m.UserID})
	}
	if m.Email != "" {
		ids = append(ids, Identifier{Email, m.Email})
	}
	for _, d := range m.DeviceIDs {
		if d != "" {
			ids = append(ids, Identifier{DeviceID, d})
		}
	}
	if m.AnonymousID != "" {
		ids = append(ids, Identifier{AnonymousID, m.AnonymousID})
	}
	return ids
}

// Event is a stored message as the management API returns it.
type Event struct {
	MessageID   string          `json:"message_id"`
	Type        MessageType     `json:"type"`
	Event       string          `json:"event,omitempty"`
	Name        string          `json:"name,omitempty"`
	UserID      string          `json:"user_id,omitempty"`
	AnonymousID string          `json:"anonymous_id,omitempty"`
	PreviousID  string          `json:"previous_id,omitempty"`
	GroupID     string          `json:"group_id,omitempty"`
	Properties  json.RawMessage `json:"properties,omitempty"`
	Traits      json.RawMessage `json:"traits,omitempty"`
	Context     json.RawMessage `json:"context,omitempty"`
	Timestamp   time.Time       `json:"timestamp"`
	ReceivedAt  time.Time       `json:"received_at"`
}
