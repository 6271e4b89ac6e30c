package custos

import (
	"encoding/json"
	"time"
)

// Profile is everything known about one subject apart from its events.
type Profile struct {
	Subject     SubjectID                  `json:"subject_id"`
	Identifiers map[string][]string        `json:"identifiers"`
	Traits      map[string]json.RawMessage `json:"traits"`
	Groups      []GroupMembership          `json:"groups"`
	FirstSeen   time.Time                  `json:"first_seen"`
	LastSeen    time.Time                  `json:"last_seen"`
}

// GroupMembership records that a subject belongs to a group (an account,
// a company) and the group's traits as last reported.
type GroupMembership struct {
	GroupID   string          `json:"group_id"`
	Traits    json.RawMessage `json:"traits,omitempty"`
	UpdatedAt time.Time       `json:"updated_at"`
}
