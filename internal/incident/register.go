package incident

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
	"github.com/custos-dev/custos/internal/mail"
)

// Store is what the register keeps and reads: incidents and
// notifications, the tenants' data (to count and list what is in scope,
// without decrypting) and the outbox's deliveries (to resume).
type Store interface {
	custos.IncidentStore
	EachProfile(ctx context.Context, t custos.TenantID, after custos.SubjectID, fn func(custos.StoredProfile) (bool, error)) error
	Events(ctx context.Context, t custos.TenantID, s custos.SubjectID, after *custos.EventCursor, fn func(custos.StoredEvent) (bool, error)) error
	EventSpan(ctx context.Context, t custos.TenantID, s custos.SubjectID) (first, last time.Time, ok bool, err error)
	Deliveries(ctx context.Context, t custos.TenantID, requestID string) ([]custos.Delivery, error)
}

// Tenants finds tenants and their webhook signing secrets
// (tenants.Registry satisfies it).
type Tenants interface {
	Get(id custos.TenantID) (*custos.Tenant, bool)
	List() []*custos.Tenant
	CallbackSecret(t *custos.Tenant) (string, error)
}

// Outbox delivers signed webhooks durably (webhook.Outbox satisfies it).
type Outbox interface {
	Enqueue(ctx context.Context, d custos.Delivery) (custos.Delivery, error)
}

// Profiles opens subjects' profiles and names their audit pseudonyms
// (ingest.Reader satisfies it).
type Profiles interface {
	Profile(ctx context.Context, t custos.TenantID, s custos.SubjectID) (*custos.Profile, error)
	Pseudonym(t custos.TenantID, s custos.SubjectID) (string, error)
}

// Deps are what a Register needs.
type Deps struct {
	Store    Store
	Tenants  Tenants
	Outbox   Outbox
	Profiles Profiles
	Audit    *audit.Log
	// Mail is the operator's SMTP server for security e-mails; nil means
	// none is configured, and e-mails wait, pending, until one is.
	Mail *mail.Config
	// Now is the clock (default time.Now).
	Now func() time.Time
	// MinBackoff and MaxBackoff bound the wait before an e-mail is
	// retried (defaults 1s and 1h).
	MinBackoff, MaxBackoff time.Duration
	// Log receives a line per e-mail attempt, never an address or body.
	Log *slog.Logger
	// Leases keeps the changes and notifications of one incident to one
	// node at a time (lease.Leases). Nil: this process is the only one.
	Leases Leases
}

// Leases runs work while holding a named lease of a tenant, and reports
// held false, without running it, when another holder has the lease
// (lease.Leases).
type Leases interface {
	Hold(ctx context.Context, t custos.TenantID, name string, fn func(context.Context) error) (held bool, err error)
}

// hold runs fn while holding incident id's lease (answering Unavailable
// if another node holds it: it is changing or notifying that incident).
func (r *Register) hold(ctx context.Context, id string, fn func(context.Context) error) error {
	if r.leases == nil {
		return fn(ctx)
	}
	held, err := r.leases.Hold(ctx, custos.TenantID{}, "incident/"+id, fn)
	switch {
	case err == nil && !held:
		return &custos.Error{Code: custos.Unavailable, Message: "incident " + id + " is being changed or notified by another node; retry", Err: errBusy}
	case errors.Is(err, custos.ErrFenced):
		// The lease passed to another node while fn ran (this one
		// stalled): the store refused its writes, and a retry runs anew.
		return &custos.Error{Code: custos.Unavailable, Message: "incident " + id + " was taken over by another node while it changed; retry", Err: err}
	}
	return err
}

// errBusy: another node holds the incident's lease.
var errBusy = errors.New("incident lease held by another node")

// Register is the breach register. It is safe for concurrent use.
type Register struct {
	store    Store
	tenants  Tenants
	outbox   Outbox
	profiles Profiles
	audit    *audit.Log
	mail     *mail.Config
	now      func() time.Time
	min, max time.Duration
	log      *slog.Logger
	leases   Leases

	// ops serialises the operator's changes (open, update, close,
	// resume); mu serialises every read-modify-write of a notification.
	ops  sync.Mutex
	mu   sync.Mutex
	kick chan struct{}
}

// New returns a Register. Call Resume at start-up and Run to send e-mail.
func New(d Deps) *Register {
	r := &Register{store: d.Store, tenants: d.Tenants, outbox: d.Outbox, profiles: d.Profiles, audit: d.Audit,
		mail: d.Mail, now: d.Now, min: d.MinBackoff, max: d.MaxBackoff, log: d.Log, kick: make(chan struct{}, 1), leases: d.Leases}
	if r.now == nil {
		r.now = time.Now
	}
	if r.min <= 0 {
		r.min = time.Second
	}
	if r.max <= 0 {
		r.max = time.Hour
	}
	r.max = max(r.max, r.min)
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	return r
}

// OpenInput is what the operator knows when opening an incident.
type OpenInput struct {
	DetectedAt     time.Time            `json:"detected_at"`
	Nature         string               `json:"nature"`
	DataCategories []string             `json:"data_categories"`
	Encrypted      bool                 `json:"encrypted"`
	KeysSafe       bool                 `json:"keys_safe"`
	Consequences   string               `json:"likely_consequences"`
	Measures       string               `json:"measures_taken"`
	ContactPoint   string               `json:"contact_point"`
	Scope          custos.IncidentScope `json:"scope"`
}

const maxText = 10000

func checkText(field, v string, required bool) error {
	switch {
	case required && strings.TrimSpace(v) == "":
		return custos.Errorf(custos.Invalid, "%s is required", field)
	case len(v) > maxText:
		return custos.Errorf(custos.Invalid, "%s is longer than %d bytes", field, maxText)
	}
	return nil
}

func checkCategories(field string, cs []string, required bool) error {
	if required && len(cs) == 0 {
		return custos.Errorf(custos.Invalid, "%s is required: name at least one category of personal data (e.g. contact.email)", field)
	}
	for i, c := range cs {
		if strings.TrimSpace(c) == "" || len(c) > 200 {
			return custos.Errorf(custos.Invalid, "%s[%d] must be 1 to 200 characters", field, i)
		}
	}
	return nil
}

// validate checks in against the clock, naming the first field wrong, and
// returns the tenants its scope resolves to.
func (r *Register) validate(in *OpenInput, now time.Time) ([]custos.TenantID, error) {
	switch {
	case in.DetectedAt.IsZero():
		return nil, custos.Errorf(custos.Invalid, "detected_at is required (RFC 3339): when the breach became known")
	case in.DetectedAt.After(now.Add(5 * time.Minute)):
		return nil, custos.Errorf(custos.Invalid, "detected_at %s is in the future", in.DetectedAt.Format(time.RFC3339))
	}
	for _, c := range []struct {
		field, v string
	}{{"nature", in.Nature}, {"likely_consequences", in.Consequences}, {"measures_taken", in.Measures}, {"contact_point", in.ContactPoint}} {
		if err := checkText(c.field, c.v, true); err != nil {
			return nil, err
		}
	}
	if err := checkCategories("data_categories", in.DataCategories, true); err != nil {
		return nil, err
	}
	s := in.Scope
	if s.Windowed() && !s.EventsFrom.IsZero() && !s.EventsTo.IsZero() && s.EventsTo.Before(s.EventsFrom) {
		return nil, custos.Errorf(custos.Invalid, "scope.events_to is before scope.events_from")
	}
	switch {
	case s.AllTenants && len(s.Tenants) > 0:
		return nil, custos.Errorf(custos.Invalid, "scope: give all_tenants or tenants, not both")
	case s.AllTenants:
		var ids []custos.TenantID
		for _, t := range r.tenants.List() {
			ids = append(ids, t.ID)
		}
		return ids, nil
	case len(s.Tenants) == 0:
		return nil, custos.Errorf(custos.Invalid, "scope: give all_tenants: true or a list of tenants")
	}
	var ids []custos.TenantID
	for i, id := range s.Tenants {
		if _, ok := r.tenants.Get(id); !ok {
			return nil, custos.Errorf(custos.Invalid, "scope.tenants[%d]: no tenant %s", i, id)
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// Open registers an incident and notifies every tenant in its scope: the
// incident is stored first, so that a crash part-way is finished by Resume.
func (r *Register) Open(ctx context.Context, in OpenInput) (*custos.Incident, error) {
	return r.OpenBy(ctx, in, audit.ActorOperator)
}

// OpenBy is Open with the actor its audit entry names (the operator in
// the console).
func (r *Register) OpenBy(ctx context.Context, in OpenInput, actor string) (*custos.Incident, error) {
	r.ops.Lock()
	defer r.ops.Unlock()
	now := r.now().UTC()
	ids, err := r.validate(&in, now)
	if err != nil {
		return nil, err
	}
	inc := &custos.Incident{
		ID: newID(now), OpenedAt: now, DetectedAt: in.DetectedAt.UTC(),
		Nature: in.Nature, DataCategories: in.DataCategories, Encrypted: in.Encrypted, KeysSafe: in.KeysSafe,
		Consequences: in.Consequences, Measures: in.Measures, ContactPoint: in.ContactPoint,
		Scope: in.Scope, Tenants: ids, Status: custos.IncidentOpen, Updates: []custos.IncidentUpdate{},
	}
	if inc.Tenants == nil {
		inc.Tenants = []custos.TenantID{}
	}
	if err := r.store.PutIncident(ctx, inc); err != nil {
		return nil, fmt.Errorf("store incident: %w", err)
	}
	if err := r.record(ctx, custos.OperatorChain, audit.Entry{Actor: actor, Action: "incident.open", RequestID: inc.ID,
		Details: map[string]any{"incident": inc.ID, "tenants": len(ids), "all_tenants": in.Scope.AllTenants, "windowed": in.Scope.Windowed()}}); err != nil {
		return nil, err
	}
	err = r.hold(ctx, inc.ID, func(ctx context.Context) error { return r.notifyAll(ctx, inc) })
	if errors.Is(err, errBusy) {
		err = nil // a node resuming notifications found it first, and notifies it
	}
	return inc, err
}

// UpdateInput is a phased update: a message, and the description fields
// it replaces (empty: unchanged).
type UpdateInput struct {
	Message        string   `json:"message"`
	Nature         string   `json:"nature"`
	DataCategories []string `json:"data_categories"`
	Consequences   string   `json:"likely_consequences"`
	Measures       string   `json:"measures_taken"`
}

// Update records a phased update (Art. 33(4)) and delivers it to every
// tenant notified of the incident.
func (r *Register) Update(ctx context.Context, id string, u UpdateInput) (*custos.Incident, error) {
	return r.UpdateBy(ctx, id, u, audit.ActorOperator)
}

// UpdateBy is Update with the actor its audit entry names.
func (r *Register) UpdateBy(ctx context.Context, id string, u UpdateInput, actor string) (*custos.Incident, error) {
	r.ops.Lock()
	defer r.ops.Unlock()
	for _, c := range []struct {
		field, v string
		required bool
	}{{"message", u.Message, true}, {"nature", u.Nature, false}, {"likely_consequences", u.Consequences, false}, {"measures_taken", u.Measures, false}} {
		if err := checkText(c.field, c.v, c.required); err != nil {
			return nil, err
		}
	}
	if err := checkCategories("data_categories", u.DataCategories, false); err != nil {
		return nil, err
	}
	var inc *custos.Incident
	err := r.hold(ctx, id, func(ctx context.Context) error {
		var err error
		inc, err = r.update(ctx, id, u, actor)
		return err
	})
	return inc, err
}

// update is Update under the incident's lease.
func (r *Register) update(ctx context.Context, id string, u UpdateInput, actor string) (*custos.Incident, error) {
	inc, err := r.store.Incident(ctx, id)
	if err != nil {
		return nil, err
	}
	if inc.Status == custos.IncidentClosed {
		return nil, custos.Errorf(custos.Conflict, "incident %s is closed", id)
	}
	up := custos.IncidentUpdate{Seq: len(inc.Updates) + 1, At: r.now().UTC(), Message: u.Message, Nature: u.Nature,
		DataCategories: u.DataCategories, Consequences: u.Consequences, Measures: u.Measures}
	inc.Updates = append(inc.Updates, up)
	if u.Nature != "" {
		inc.Nature = u.Nature
	}
	if len(u.DataCategories) > 0 {
		inc.DataCategories = u.DataCategories
	}
	if u.Consequences != "" {
		inc.Consequences = u.Consequences
	}
	if u.Measures != "" {
		inc.Measures = u.Measures
	}
	if err := r.store.PutIncident(ctx, inc); err != nil {
		return nil, fmt.Errorf("store incident: %w", err)
	}
	if err := r.record(ctx, custos.OperatorChain, audit.Entry{Actor: actor, Action: "incident.update", RequestID: inc.ID,
		Details: map[string]any{"incident": inc.ID, "seq": up.Seq}}); err != nil {
		return nil, err
	}
	return inc, r.notifyAll(ctx, inc)
}

// Close closes an incident with a closing note, delivered to every tenant
// notified of it.
func (r *Register) Close(ctx context.Context, id, note string) (*custos.Incident, error) {
	return r.CloseBy(ctx, id, note, audit.ActorOperator)
}

// CloseBy is Close with the actor its audit entry names (the operator in
// the console).
func (r *Register) CloseBy(ctx context.Context, id, note, actor string) (*custos.Incident, error) {
	r.ops.Lock()
	defer r.ops.Unlock()
	if err := checkText("note", note, true); err != nil {
		return nil, err
	}
	var inc *custos.Incident
	err := r.hold(ctx, id, func(ctx context.Context) error {
		var err error
		inc, err = r.close(ctx, id, note, actor)
		return err
	})
	return inc, err
}

// close is Close under the incident's lease.
func (r *Register) close(ctx context.Context, id, note, actor string) (*custos.Incident, error) {
	inc, err := r.store.Incident(ctx, id)
	if err != nil {
		return nil, err
	}
	if inc.Status == custos.IncidentClosed {
		return nil, custos.Errorf(custos.Conflict, "incident %s is already closed", id)
	}
	inc.Status, inc.ClosedAt, inc.ClosingNote = custos.IncidentClosed, r.now().UTC(), note
	if err := r.store.PutIncident(ctx, inc); err != nil {
		return nil, fmt.Errorf("store incident: %w", err)
	}
	if err := r.record(ctx, custos.OperatorChain, audit.Entry{Actor: actor, Action: "incident.close", RequestID: inc.ID,
		Details: map[string]any{"incident": inc.ID}}); err != nil {
		return nil, err
	}
	return inc, r.notifyAll(ctx, inc)
}

// Incidents returns every incident, newest first.
func (r *Register) Incidents(ctx context.Context) ([]*custos.Incident, error) {
	list, err := r.store.Incidents(ctx)
	slices.Reverse(list)
	return list, err
}

// Incident returns an incident and the notification of each tenant it
// concerns (a deleted tenant's is missing).
func (r *Register) Incident(ctx context.Context, id string) (*custos.Incident, []*custos.IncidentNotification, error) {
	inc, err := r.store.Incident(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	ns := []*custos.IncidentNotification{}
	for _, t := range inc.Tenants {
		n, err := r.store.IncidentNotification(ctx, t, id)
		if custos.ErrorCode(err) == custos.NotFound {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		ns = append(ns, n)
	}
	return inc, ns, nil
}

// Resume finishes what a crash interrupted: every tenant of every
// incident gets its notification and each message, and every webhook
// not yet handed to the outbox is. E-mails need nothing: they wait in the
// notification records for Run.
func (r *Register) Resume(ctx context.Context) error {
	r.ops.Lock()
	defer r.ops.Unlock()
	list, err := r.store.Incidents(ctx)
	if err != nil {
		return err
	}
	for _, inc := range list {
		err := r.hold(ctx, inc.ID, func(ctx context.Context) error {
			// Read again under the lease: another node may have changed it.
			inc, err := r.store.Incident(ctx, inc.ID)
			if err != nil {
				return err
			}
			return r.notifyAll(ctx, inc)
		})
		if errors.Is(err, errBusy) {
			continue // another node is at it
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// record appends an audit entry, naming the action if it fails.
func (r *Register) record(ctx context.Context, t custos.TenantID, e audit.Entry) error {
	if _, err := r.audit.Record(ctx, t, e); err != nil {
		return fmt.Errorf("audit %s: %w", e.Action, err)
	}
	return nil
}

// newID returns an incident id that sorts by opening time.
func newID(now time.Time) string {
	b := make([]byte, 4)
	rand.Read(b)
	return "inc_" + now.UTC().Format("20060102T150405") + "_" + hex.EncodeToString(b)
}
