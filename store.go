package custos

import (
	"context"
	"time"
)

// Store is everything Custos keeps, apart from encryption keys (KeyStore),
// so that data and keys can be backed up apart. Values of personal data
// reach a store already sealed; a store never sees plaintext personal data
// and never needs to.
//
// internal/storetest is the conformance suite every implementation passes.
type Store interface {
	TenantStore
	DataStore
	AuditStore
	RequestStore
	OutboxStore
	RecipientStore
	IncidentStore
	CampaignStore
	SessionStore
	Close() error
}

// TenantStore keeps tenant records.
type TenantStore interface {
	// CreateTenant stores a new tenant; Conflict if the id exists.
	CreateTenant(ctx context.Context, t *Tenant) error
	// UpdateTenant replaces an existing tenant; NotFound if absent.
	UpdateTenant(ctx context.Context, t *Tenant) error
	// Tenant returns one tenant, or ErrNotFound.
	Tenant(ctx context.Context, id TenantID) (*Tenant, error)
	// Tenants returns every tenant ordered by id.
	Tenants(ctx context.Context) ([]*Tenant, error)
	// DeleteTenant removes a tenant and every record of its data, and
	// purges the bytes from live storage files; NotFound if absent.
	DeleteTenant(ctx context.Context, id TenantID) error
}

// StoredEvent is one sealed event in the store. Within a subject, events
// are ordered by Time, then ID.
type StoredEvent struct {
	Subject SubjectID
	Time    time.Time
	ID      MessageHash
	Value   []byte // sealed
}

// EventCursor is the position after which an event listing continues.
type EventCursor struct {
	Time time.Time
	ID   MessageHash
}

// Write is a set of changes to one tenant's data that a store applies
// atomically.
type Write struct {
	Tenant TenantID
	// Events to store; an event with the same subject, time and ID is replaced.
	Events []StoredEvent
	// Profiles to store (sealed), replacing what was there.
	Profiles []StoredProfile
	// Links point identifier hashes at subjects; Unlinks remove them.
	Links   []Link
	Unlinks []IdentifierHash
	// Seen records message hashes for deduplication.
	Seen []Seen
	// DeleteSubjects removes every event and the profile of each subject
	// (used when a subject is merged into another, and by erasure). Deletes
	// are applied before the puts of the same Write.
	DeleteSubjects []SubjectID
	// DeleteEvents removes single events.
	DeleteEvents []StoredEvent
	// ExpireBefore, if not zero, removes every event of the tenant dated
	// before it (a retention sweep). It is applied before DeleteEvents,
	// which should still name the events (EventsBefore lists them): a
	// store that keeps events by day drops whole days at once and uses
	// DeleteEvents only to tidy what indexes them.
	ExpireBefore time.Time
	// Unsee removes deduplication records.
	Unsee []MessageHash
	// Flags set subjects' standing restrictions (zero flags delete them).
	Flags []FlagsRecord
	// Tombstones record erased identifiers.
	Tombstones []TombstoneRecord
	// Consents append to subjects' consent ledgers.
	Consents []StoredConsent
	// Sends store campaign send records (a merge carries the absorbed
	// subject's to the survivor).
	Sends []StoredSend
	// Merges record that a subject was absorbed into another, so that
	// what still names the absorbed subject (an unsubscribe link in a
	// message sent before) reaches the survivor.
	Merges []MergeRecord
	// Observed, if not nil, replaces the tenant's record of the categories
	// of personal data seen at ingestion (sealed with the tenant key), so
	// that a new category is recorded atomically with the event showing it.
	Observed []byte
	// Retention, if not nil, replaces the tenant's retention sweep
	// progress, so that deletions and the progress past them are one
	// atomic change and an interrupted sweep resumes exactly.
	Retention []byte
	// Guard, if not nil, is what the Write's author believed about the
	// shared state; a store shared by several processes refuses the
	// whole Apply with a *StaleError when it no longer holds (see Guard).
	Guard *Guard
}

// Empty reports whether w changes nothing.
func (w *Write) Empty() bool {
	return len(w.Events) == 0 && len(w.Profiles) == 0 && len(w.Links) == 0 &&
		len(w.Unlinks) == 0 && len(w.Seen) == 0 && len(w.DeleteSubjects) == 0 &&
		len(w.DeleteEvents) == 0 && w.ExpireBefore.IsZero() && len(w.Unsee) == 0 && len(w.Flags) == 0 && len(w.Tombstones) == 0 &&
		len(w.Consents) == 0 && len(w.Sends) == 0 && len(w.Merges) == 0 && w.Observed == nil && w.Retention == nil
}

// MergeRecord says that subject From was merged into subject Into. It
// holds no personal data: two random ids.
type MergeRecord struct {
	From, Into SubjectID
}

// StoredProfile is one sealed profile.
type StoredProfile struct {
	Subject SubjectID
	Value   []byte // sealed
}

// Link points an identifier hash at a subject.
type Link struct {
	Hash    IdentifierHash
	Subject SubjectID
}

// Seen is a deduplication record: the message with this hash was stored as
// an event of Subject; Time is when it was received.
type Seen struct {
	ID      MessageHash
	Subject SubjectID
	Time    time.Time
}

// DataStore keeps tenants' data: events, profiles, consent records, the
// identifier index and deduplication records.
type DataStore interface {
	ConsentStore
	// Apply applies the writes atomically and in order with respect to
	// other Apply calls, and returns at once; wait blocks until the writes
	// are durable (synced). Concurrent callers share syncs. A Write made
	// after Apply returns sees its effects.
	Apply(ctx context.Context, ws []*Write) (wait func() error, err error)
	// Subject returns the subject an identifier hash points at, or ErrNotFound.
	Subject(ctx context.Context, t TenantID, h IdentifierHash) (SubjectID, error)
	// Subjects is Subject for many hashes in one read: the subject of
	// each hash linked to one (a hash linked to none is left out, as are
	// repeats).
	Subjects(ctx context.Context, t TenantID, hs []IdentifierHash) (map[IdentifierHash]SubjectID, error)
	// Seen returns the deduplication record of a message, or ErrNotFound.
	Seen(ctx context.Context, t TenantID, id MessageHash) (Seen, error)
	// EachSeen calls fn for every deduplication record of every tenant, in
	// no particular order, until fn returns an error (used to rebuild the
	// in-memory duplicate filter at start-up).
	EachSeen(ctx context.Context, fn func(TenantID, Seen) error) error
	// EachFlags calls fn for every subject with flags set, of every tenant
	// (used to load the ingestion gate at start-up).
	EachFlags(ctx context.Context, fn func(TenantID, FlagsRecord) error) error
	// EachTombstone calls fn for every erasure tombstone of every tenant.
	EachTombstone(ctx context.Context, fn func(TenantID, TombstoneRecord) error) error
	// EachProfile calls fn for every profile of a tenant, ordered by
	// subject id, starting after the subject after (zero: from the start),
	// until fn returns false or an error. Campaign audiences, incident
	// scopes and the retention sweep walk a tenant this way.
	EachProfile(ctx context.Context, t TenantID, after SubjectID, fn func(StoredProfile) (bool, error)) error
	// MergedInto returns the subject s was merged into, or ErrNotFound if
	// it was not (one step: the caller follows a chain).
	MergedInto(ctx context.Context, t TenantID, s SubjectID) (SubjectID, error)
	// Profile returns the sealed profile of a subject, or ErrNotFound.
	Profile(ctx context.Context, t TenantID, s SubjectID) ([]byte, error)
	// Profiles is Profile for many subjects in one read: the sealed
	// profile of each subject that has one (the others are left out).
	Profiles(ctx context.Context, t TenantID, ss []SubjectID) (map[SubjectID][]byte, error)
	// Events calls fn for the subject's events after the cursor (nil: from
	// the start), in order, until fn returns false or an error.
	Events(ctx context.Context, t TenantID, s SubjectID, after *EventCursor, fn func(StoredEvent) (bool, error)) error
	// EventsBefore calls fn for the tenant's events dated before before,
	// ordered by their UTC day, oldest first (within a day in no
	// particular order), without their values, until fn returns false or
	// an error: what a retention sweep removes, read at the cost of what
	// it removes rather than of what is stored.
	EventsBefore(ctx context.Context, t TenantID, before time.Time, fn func(StoredEvent) (bool, error)) error
	// EventSpan returns the time of the subject's first and last event;
	// ok is false when it has none.
	EventSpan(ctx context.Context, t TenantID, s SubjectID) (first, last time.Time, ok bool, err error)
	// Observed returns the tenant's sealed record of observed data
	// categories (Write.Observed), or ErrNotFound.
	Observed(ctx context.Context, t TenantID) ([]byte, error)
	// RetentionProgress returns the tenant's retention sweep progress
	// (Write.Retention), or ErrNotFound.
	RetentionProgress(ctx context.Context, t TenantID) ([]byte, error)
	// Purge makes sure the bytes of a subject deleted earlier are gone
	// from live storage files, not only hidden (compaction, vacuum).
	Purge(ctx context.Context, t TenantID, s SubjectID) error
}

// PurgeScheduler is an optional upgrade of a DataStore that purges
// deleted subjects in batched passes on a schedule rather than one at a
// time: the bytes of a subject deleted now are gone from live storage
// files once the pass starting at PurgeDueAt has run, without a Purge
// call. Purge still purges at once. A zero PurgeDueAt means that no
// passes are scheduled: the caller purges with Purge.
type PurgeScheduler interface {
	PurgeDueAt() time.Time
}

// EventDayReader is an optional upgrade of a DataStore that indexes each
// subject's events by day, so that the days of a subject's events are
// known without reading them: the retention sweep's walk of every
// subject asks it first and reads the events' span (EventSpan) only of
// subjects whose days reach the cutoff's.
type EventDayReader interface {
	// EventDays returns the UTC days (each at midnight UTC) on which the
	// subject has at least one event, oldest first; none without events.
	EventDays(ctx context.Context, t TenantID, s SubjectID) ([]time.Time, error)
}

// KeyStore keeps wrapped encryption keys, apart from the data so that data
// backups and key backups are separate things. Keys are stored wrapped;
// a KeyStore never sees a key in the clear.
type KeyStore interface {
	// Meta returns a small named record (e.g. the master key check), or ErrNotFound.
	Meta(ctx context.Context, name string) ([]byte, error)
	// TenantKeys returns every wrapped tenant key.
	TenantKeys(ctx context.Context) (map[TenantID][]byte, error)
	// PutTenantKeys stores wrapped tenant keys and meta records atomically
	// and durably (a master-key rotation replaces all of them at once).
	PutTenantKeys(ctx context.Context, keys map[TenantID][]byte, meta map[string][]byte) error
	// DeleteTenantKey destroys a tenant key durably.
	DeleteTenantKey(ctx context.Context, t TenantID) error
	// SubjectKey returns a wrapped subject key, ErrNotFound if there never
	// was one, or ErrShredded if it was destroyed.
	SubjectKey(ctx context.Context, t TenantID, s SubjectID) ([]byte, error)
	// SubjectKeys calls fn, in subject order, for every subject key of a
	// tenant from subject from to subject to (both included) that is
	// neither missing nor shredded, until fn returns false or an error:
	// walks over many subjects read their keys in one ordered pass instead
	// of one random read each.
	SubjectKeys(ctx context.Context, t TenantID, from, to SubjectID, fn func(s SubjectID, wrapped []byte) (bool, error)) error
	// PutSubjectKey stores a wrapped subject key and returns at once; wait
	// blocks until it is durable.
	PutSubjectKey(ctx context.Context, t TenantID, s SubjectID, wrapped []byte) (wait func() error, err error)
	// ShredSubjectKey destroys a subject key durably, leaving a marker so
	// that later reads answer ErrShredded.
	ShredSubjectKey(ctx context.Context, t TenantID, s SubjectID) error
	Close() error
}
