package custos

import (
	"context"
	"encoding/json"
	"strconv"
	"time"
)

// CampaignStatus is where a campaign stands.
type CampaignStatus string

// The campaign statuses: a campaign is created as a draft, sent once, and
// completes when every member of its audience has been sent to or
// excluded. A run pauses when its destination can no longer be used (not
// configured any more, or outside the tenant's region while transfers
// are forbidden); sending it again resumes it.
const (
	CampaignDraft     CampaignStatus = "draft"
	CampaignSending   CampaignStatus = "sending"
	CampaignPaused    CampaignStatus = "paused"
	CampaignCompleted CampaignStatus = "completed"
)

// Campaign is one message to an audience over one channel, for one
// purpose. Its definition (name, audience, message) may hold personal
// data — an audience can name an e-mail address, a message a person's
// name — so a store receives it only sealed with a tenant key
// (DefinitionSealed); the rest is counts, ids and times.
type Campaign struct {
	ID        string         `json:"id"`
	Tenant    TenantID       `json:"tenant_id"`
	Purpose   string         `json:"purpose"`
	Channel   string         `json:"channel"`
	Status    CampaignStatus `json:"status"`
	CreatedAt time.Time      `json:"created_at"`
	// Definition is the campaign as the tenant wrote it; stores keep
	// DefinitionSealed instead.
	Definition       *CampaignDefinition `json:"definition,omitempty"`
	DefinitionSealed []byte              `json:"definition_sealed,omitempty"`
	Progress         CampaignProgress    `json:"progress"`
	// Error says why a paused campaign stopped.
	Error string `json:"error,omitempty"`
}

// CampaignDefinition is what a tenant writes: a name, who receives the
// message and what it says.
type CampaignDefinition struct {
	Name     string          `json:"name"`
	Audience Audience        `json:"audience"`
	Message  CampaignMessage `json:"message"`
}

// Audience selects subjects by their profile traits and their events; a
// subject is in the audience when every condition holds (no condition:
// every subject).
type Audience struct {
	Traits []TraitCondition `json:"traits,omitempty"`
	Events []EventCondition `json:"events,omitempty"`
}

// TraitCondition tests one profile trait. Op is eq, neq, exists, gt, lt
// or contains; Key may name a nested trait with dots (address.city).
type TraitCondition struct {
	Key   string          `json:"key"`
	Op    string          `json:"op"`
	Value json.RawMessage `json:"value,omitempty"`
}

// EventCondition requires at least MinCount (default 1) events named Name
// in the last WithinDays days (0: ever).
type EventCondition struct {
	Name       string `json:"name"`
	WithinDays int    `json:"within_days,omitempty"`
	MinCount   int    `json:"min_count,omitempty"`
}

// CampaignMessage is the message, as templates over the recipient's
// traits ({{.traits.first_name}}).
type CampaignMessage struct {
	Subject string `json:"subject"`
	Body    string `json:"body"`
	// Text is the plain-text part of an e-mail; empty means the body with
	// its tags removed.
	Text string `json:"text,omitempty"`
}

// CampaignProgress counts what became of a campaign's audience. Cursor is
// the last subject fully handled, so a restarted node resumes after it.
type CampaignProgress struct {
	Audience    int            `json:"audience"`
	Sent        int            `json:"sent"`
	Failed      int            `json:"failed"`
	Excluded    map[string]int `json:"excluded"`
	StartedAt   time.Time      `json:"started_at,omitzero"`
	CompletedAt time.Time      `json:"completed_at,omitzero"`
	UpdatedAt   time.Time      `json:"updated_at,omitzero"`
	Cursor      SubjectID      `json:"cursor"`
}

// StoredSend is the record that a campaign message was sent to a subject:
// the processing record an access export shows and the frequency cap
// counts. It lives with the subject's data, sealed with its key, so an
// erasure removes it. Within a subject, sends are ordered by Time, then
// Campaign.
type StoredSend struct {
	Subject  SubjectID
	Time     time.Time
	Campaign string
	Value    []byte // sealed
}

// SendRecordKey names a send record for sealing: the subject's key seals
// it bound to this name, so a record cannot pass for another.
func SendRecordKey(campaign string, at time.Time) []byte {
	return []byte("send/" + campaign + "/" + strconv.FormatInt(at.UnixNano(), 10))
}

// SendRecord is one campaign message sent to a subject, as its access
// export shows it: which campaign, for which purpose, over which channel,
// when, and what became of it (sending, sent, failed).
type SendRecord struct {
	Campaign string    `json:"campaign_id"`
	Purpose  string    `json:"purpose"`
	Channel  string    `json:"channel"`
	Time     time.Time `json:"sent_at"`
	Status   string    `json:"status"`
	Error    string    `json:"error,omitempty"`
}

// CampaignStore keeps campaigns and the per-subject records of their
// sends.
type CampaignStore interface {
	// PutCampaign stores a campaign durably, replacing one with the same
	// id. The definition reaches the store only sealed.
	PutCampaign(ctx context.Context, c *Campaign) error
	// Campaign returns one campaign, or ErrNotFound.
	Campaign(ctx context.Context, t TenantID, id string) (*Campaign, error)
	// Campaigns calls fn for every campaign of a tenant, ordered by id,
	// until fn returns false.
	Campaigns(ctx context.Context, t TenantID, fn func(*Campaign) bool) error
	// PutSend stores a send record durably, replacing the one of the same
	// subject, time and campaign.
	PutSend(ctx context.Context, t TenantID, s StoredSend) error
	// PutSendCapped stores a send record like PutSend unless the subject
	// already has limit or more send records of other campaigns dated at
	// or after since; then it stores nothing and returns ErrCapReached.
	// The count and the write are one atomic step: writers racing for one
	// subject, through several handles on one store (several nodes), never
	// store more than limit records of other campaigns between them. A
	// negative limit means no cap. This is how a campaign writes a
	// recipient's first send record, so the daily cap holds across nodes.
	PutSendCapped(ctx context.Context, t TenantID, s StoredSend, since time.Time, limit int) error
	// Sends calls fn for the subject's send records at or after since, in
	// order, until fn returns false or an error.
	Sends(ctx context.Context, t TenantID, s SubjectID, since time.Time, fn func(StoredSend) (bool, error)) error
	// EachAudience calls fn for every subject of a tenant that has a
	// profile, ordered by subject id, starting after the subject after
	// (zero: from the start), with its profile, its consent records in
	// order, and its send records at or after sendsSince, until fn returns
	// false or an error: everything an audience walk gates on, read in
	// one pass. fn must not keep r, which the next call reuses.
	EachAudience(ctx context.Context, t TenantID, after SubjectID, sendsSince time.Time, fn func(r *SubjectRecords) (bool, error)) error
}

// SubjectRecords is what an audience walk reads of one subject.
type SubjectRecords struct {
	Profile  StoredProfile
	Consents []StoredConsent
	Sends    []StoredSend
}
