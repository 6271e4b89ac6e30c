// Package rights carries out data-subject requests: it records each
// request with its legal deadline (GDPR Art. 12(3)), moves it through its
// statuses, audits every change, and acts on the subject — today the
// standing flags: suppression, restriction (Art. 18) and objection to
// direct marketing (Art. 21), which take effect at the ingestion gate
// before the request is answered.
package rights

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
	"github.com/custos-dev/custos/internal/certificate"
	"github.com/custos-dev/custos/internal/deadline"
	"github.com/custos-dev/custos/internal/forward"
	"github.com/custos-dev/custos/internal/opendsr"
	"github.com/custos-dev/custos/internal/urlpolicy"
)

// Gate is what the engine needs of the ingest pipeline: changes to
// ingestion state, made in order with ingestion.
type Gate interface {
	SetFlags(ctx context.Context, t custos.TenantID, id custos.Identifier, change func(*custos.SubjectFlags)) (custos.SubjectID, error)
	Tombstone(ctx context.Context, t custos.TenantID, hashes []custos.IdentifierHash, ts custos.Tombstone) error
	DeleteSubject(ctx context.Context, t custos.TenantID, s custos.SubjectID, hashes []custos.IdentifierHash) (map[string]int, error)
	Flags(ctx context.Context, t custos.TenantID, s custos.SubjectID) (custos.SubjectFlags, error)
	Rectify(ctx context.Context, t custos.TenantID, id custos.Identifier, traits map[string]json.RawMessage) (custos.SubjectID, []string, error)
}

// Subjects reads subjects: lookups, profiles, audit pseudonyms.
type Subjects interface {
	Find(ctx context.Context, t custos.TenantID, id custos.Identifier) (custos.SubjectID, error)
	Profile(ctx context.Context, t custos.TenantID, s custos.SubjectID) (*custos.Profile, error)
	Pseudonym(t custos.TenantID, s custos.SubjectID) (string, error)
	EachEvent(ctx context.Context, t custos.TenantID, s custos.SubjectID, fn func(custos.Event) error) error
}

// Keys hashes identifiers, destroys subject keys, and seals what waits
// for approval.
type Keys interface {
	HashIdentifier(t custos.TenantID, id custos.Identifier) (custos.IdentifierHash, error)
	Shred(ctx context.Context, t custos.TenantID, s custos.SubjectID) error
	SealTenant(t custos.TenantID, recordKey, plaintext []byte) ([]byte, error)
	OpenTenant(t custos.TenantID, recordKey, sealed []byte) ([]byte, error)
}

// Sends reads the record of campaign messages sent to a subject
// (campaign.Engine).
type Sends interface {
	Sends(ctx context.Context, t custos.TenantID, s custos.SubjectID) ([]custos.SendRecord, error)
}

// Store is the storage the engine uses: requests, data (to purge and
// verify) and the audit chain (its head goes into certificates).
type Store interface {
	custos.RequestStore
	custos.DataStore
	custos.AuditStore
}

// Deps are the engine's dependencies.
type Deps struct {
	Store      Store
	Gate       Gate
	Subjects   Subjects
	Keys       Keys
	Audit      *audit.Log
	SigningKey ed25519.PrivateKey // signs erasure certificates
	// Recipients and Outbox tell downstream systems of erasures,
	// rectifications and restrictions (Art. 19); Deliveries reads what
	// became of each notice. All three may be nil: nobody is told.
	Recipients custos.RecipientStore
	Outbox     Outbox
	Deliveries custos.OutboxStore
	// Sends lists the campaign messages sent to a subject, for its access
	// export; nil: none are shown.
	Sends Sends
	// CallbackSecret returns the key that signs a tenant's callbacks.
	CallbackSecret func(custos.TenantID) ([]byte, error)
	// Consents reads consent ledgers for access exports (the consent
	// Ledger); nil exports none.
	Consents ConsentHistory
	Region   string // the node's region, named in certificates
	// Tenant returns a tenant's record: its region (named in exports and
	// certificates), retention and transfer settings. May be nil: the
	// node's region and the default settings are assumed.
	Tenant func(custos.TenantID) (*custos.Tenant, bool)
	Now    func() time.Time

	// Forward configures forwarding to OpenDSR recipients (internal/forward).
	Forward forward.Options
	// ForwardTenants lists the tenants whose interrupted forwards the
	// Forwarder resumes when it starts: this node's region's.
	ForwardTenants func() []custos.TenantID
	// URLHost, if set, is asked about the host of every URL a request or
	// recipient names (callback_url, a recipient's url), so an internal
	// address is refused when it is given (the outbound guard's
	// CheckHost); calls are guarded again when made.
	URLHost func(host string) error
	// Leases keeps the steps of one erasure to one node at a time, so a
	// node resuming interrupted erasures never works on one another node
	// is carrying out (lease.Leases). Nil: this process is the only one.
	Leases Leases
}

// Leases runs work while holding a named lease of a tenant, and reports
// held false, without running it, when another holder has the lease
// (lease.Leases).
type Leases interface {
	Hold(ctx context.Context, t custos.TenantID, name string, fn func(context.Context) error) (held bool, err error)
}

// ConsentHistory reads a subject's consent ledger, oldest first.
type ConsentHistory interface {
	History(ctx context.Context, t custos.TenantID, s custos.SubjectID) ([]custos.ConsentRecord, error)
}

// Engine carries out requests. Create it with New.
type Engine struct {
	store Store
	gate  Gate
	subj  Subjects
	keys  Keys
	audit *audit.Log
	sign  ed25519.PrivateKey
	reg   string

	recipients custos.RecipientStore
	outbox     Outbox
	deliveries custos.OutboxStore
	cbSecret   func(custos.TenantID) ([]byte, error)
	sends      Sends
	consents   ConsentHistory
	tenant     func(custos.TenantID) (*custos.Tenant, bool)
	now        func() time.Time
	urlHost    func(host string) error
	// crashAfter stops an erasure after the named step, as a crash would
	// (tests only).
	crashAfter string

	idMu     sync.Mutex
	reserved map[string]bool // caller-chosen ids being created

	fwd    *forward.Forwarder
	leases Leases
}

// New returns an Engine.
func New(d Deps) *Engine {
	e := &Engine{store: d.Store, gate: d.Gate, subj: d.Subjects, keys: d.Keys, audit: d.Audit,
		sign: d.SigningKey, reg: d.Region, now: d.Now,
		recipients: d.Recipients, outbox: d.Outbox, deliveries: d.Deliveries, cbSecret: d.CallbackSecret, consents: d.Consents, tenant: d.Tenant, sends: d.Sends,
		urlHost: d.URLHost, leases: d.Leases}
	e.fwd = forward.New(forward.Deps{Options: d.Forward, Requests: d.Store, Recipients: d.Recipients, Keys: d.Keys, Now: d.Now,
		Tenant: e.tenantOf, Tenants: d.ForwardTenants, RecipientSecret: e.recipientSecret, Record: e.recordForward})
	return e
}

// Forwarder is the part that forwards requests to OpenDSR recipients;
// run it (Run) for forwards to be sent.
func (e *Engine) Forwarder() *forward.Forwarder { return e.fwd }

// OpenDSRCallback takes a status callback POSTed by an OpenDSR recipient
// to the callback URL named by token (see forward.Forwarder.Callback).
func (e *Engine) OpenDSRCallback(ctx context.Context, token string, hdr http.Header, body []byte) error {
	return e.fwd.Callback(ctx, token, hdr, body)
}

// recordForward stores r after a change to one of its forwards: a change
// of status re-issues an erasure's certificate with the new outcome, and
// an action is audited under the request's id.
func (e *Engine) recordForward(ctx context.Context, r *custos.Request, statusChanged bool, action string, details map[string]string) error {
	if statusChanged && r.Erasure != nil && len(r.Erasure.Certificate) > 0 {
		var err error
		if r.Erasure.Certificate, err = e.certify(ctx, r); err != nil {
			return fmt.Errorf("re-issue the certificate of %s: %w", r.ID, err)
		}
	}
	if action == "" {
		return e.store.PutRequest(ctx, r)
	}
	if r.Subject != (custos.SubjectID{}) {
		if p, err := e.subj.Pseudonym(r.Tenant, r.Subject); err == nil {
			details["subject"] = p
		}
	}
	return e.put(ctx, r, forward.Actor, action, details)
}

// tenantOf returns what the engine needs to know of a tenant: its region
// and settings (the node's region and defaults when unknown).
func (e *Engine) tenantOf(t custos.TenantID) (region string, s custos.Settings) {
	if e.tenant != nil {
		if tn, ok := e.tenant(t); ok {
			return tn.Region, tn.Settings
		}
	}
	return e.reg, custos.Settings{}
}

// Input is a new request as a tenant's server or a device asks for it.
type Input struct {
	Type        custos.RequestType
	Identity    custos.Identifier
	Suppress    bool                       // erasure: also suppress the identifiers from now on
	Traits      map[string]json.RawMessage // rectify: the traits to set; null removes one
	Source      string                     // api, sdk, opendsr
	CallbackURL string                     // receives a signed POST on every status change
	// ID, if set, names the request instead of a generated id (a standard
	// protocol's own id); Create answers Conflict if it is taken.
	ID          string
	Fingerprint string // kept with the request; see custos.Request
	// OpenDSR links a request submitted over OpenDSR to its protocol
	// request; its status changes are called back, signed.
	OpenDSR *custos.OpenDSRLink
	Actor   string // who asked, for the audit log
}

// flagChanges are the requests that change a subject's standing flags.
var flagChanges = map[custos.RequestType]func(*custos.SubjectFlags, time.Time){
	custos.Suppress:   func(f *custos.SubjectFlags, _ time.Time) { f.Suppressed = true },
	custos.Unsuppress: func(f *custos.SubjectFlags, _ time.Time) { f.Suppressed = false },
	custos.Restrict:   func(f *custos.SubjectFlags, _ time.Time) { f.Restricted = true },
	custos.Unrestrict: func(f *custos.SubjectFlags, _ time.Time) { f.Restricted = false },
	custos.Object: func(f *custos.SubjectFlags, now time.Time) {
		if f.ObjectedAt.IsZero() {
			f.ObjectedAt = now
		}
	},
}

// Create records a request and carries it out. Flag changes complete
// before Create returns: from the answer on, the gate holds them.
func (e *Engine) Create(ctx context.Context, t custos.TenantID, in Input) (*custos.Request, error) {
	if !slices.Contains(custos.RequestTypes, in.Type) {
		names := make([]string, len(custos.RequestTypes))
		for i, rt := range custos.RequestTypes {
			names[i] = string(rt)
		}
		return nil, custos.Errorf(custos.Invalid, "type %q is not one of %s", in.Type, strings.Join(names, ", "))
	}
	if in.Identity.Type == 0 {
		return nil, custos.Errorf(custos.Invalid, "identity.type is required (user_id, anonymous_id, email or device_id)")
	}
	if strings.TrimSpace(in.Identity.Value) == "" {
		return nil, custos.Errorf(custos.Invalid, "identity.value is required")
	}
	if len(in.Identity.Value) > MaxIdentityValue {
		return nil, custos.Errorf(custos.Invalid, "identity.value is %d bytes; the limit is %d", len(in.Identity.Value), MaxIdentityValue)
	}
	if len(in.CallbackURL) > maxURL {
		return nil, custos.Errorf(custos.Invalid, "callback_url is %d bytes; the limit is %d", len(in.CallbackURL), maxURL)
	}
	if in.Suppress && in.Type != custos.Erasure {
		return nil, custos.Errorf(custos.Invalid, "suppress applies to erasure requests only; use a suppress request")
	}
	if len(in.Traits) > 0 && in.Type != custos.Rectify {
		return nil, custos.Errorf(custos.Invalid, "traits apply to rectify requests only")
	}
	if in.CallbackURL != "" {
		if _, err := (urlpolicy.Policy{Host: e.urlHost}).Check("callback_url", in.CallbackURL); err != nil {
			return nil, custos.Errorf(custos.Invalid, "%v", err)
		}
	}
	if in.Actor == "" {
		in.Actor = audit.ActorTenant
	}
	if in.ID != "" {
		release, err := e.reserve(ctx, t, in.ID)
		if err != nil {
			return nil, err
		}
		defer release()
	}
	switch in.Type {
	case custos.Erasure:
		return e.createErasure(ctx, t, in, nil)
	case custos.Access, custos.Portability:
		return e.createAccess(ctx, t, in, nil)
	case custos.Rectify:
		return e.createRectify(ctx, t, in)
	}
	change, ok := flagChanges[in.Type]
	if !ok {
		return nil, custos.Errorf(custos.NotImplemented, "%s requests are not available on this node yet", in.Type)
	}
	r, err := e.begin(ctx, t, in)
	if err != nil {
		return nil, err
	}
	s, err := e.gate.SetFlags(ctx, t, in.Identity, func(f *custos.SubjectFlags) { change(f, r.ReceivedAt) })
	if err != nil {
		// The request stays pending: the caller is told to retry, and the
		// record shows it was asked for.
		return nil, err
	}
	r.Subject = s
	if in.Type == custos.Restrict || in.Type == custos.Unrestrict {
		restricted := in.Type == custos.Restrict
		if err := e.notifyRecipients(ctx, r, e.identifiersOf(ctx, t, s, in.Identity), func(n *notice) { n.Restricted = &restricted }); err != nil {
			return nil, fmt.Errorf("queue notices to recipients: %w", err)
		}
	}
	return e.complete(ctx, r, in.Actor, nil)
}

// put stores a request and audits the change under the request's id.
func (e *Engine) put(ctx context.Context, r *custos.Request, actor, action string, details map[string]string) error {
	if err := e.store.PutRequest(ctx, r); err != nil {
		return err
	}
	if details == nil {
		details = map[string]string{}
	}
	details["type"], details["status"] = string(r.Type), string(r.Status)
	subject := details["subject"]
	delete(details, "subject")
	_, err := e.audit.Record(ctx, r.Tenant, audit.Entry{Actor: actor, Action: action, Subject: subject, RequestID: r.ID, Details: details})
	if err != nil {
		return err
	}
	if err := e.openDSRCallbacks(ctx, r); err != nil {
		return err
	}
	return e.callback(ctx, r)
}

// openDSRCallbacks queues the OpenDSR status callbacks r's status owes,
// then records that they are queued. The request is stored before and
// after: a crash in between queues them again at the next start
// (Resume) — a controller may get a status twice, never not at all.
func (e *Engine) openDSRCallbacks(ctx context.Context, r *custos.Request) error {
	dsr, err := opendsr.Callbacks(r)
	if err != nil || len(dsr) == 0 || e.outbox == nil {
		return err
	}
	for _, d := range dsr {
		if _, err := e.outbox.Enqueue(ctx, d); err != nil {
			return err
		}
	}
	opendsr.Notified(r)
	return e.store.PutRequest(ctx, r)
}

// owesCallbacks reports whether a crash left r's OpenDSR status
// callbacks unqueued (Resume queues them).
func owesCallbacks(r *custos.Request) bool {
	return r.OpenDSR != nil && len(r.OpenDSR.CallbackURLs) > 0 && r.OpenDSR.Notified != opendsr.StatusOf(r.Status)
}

// callback queues a signed status POST to the request's callback URL; the
// outbox retries it with backoff until the receiver answers 2xx.
func (e *Engine) callback(ctx context.Context, r *custos.Request) error {
	if r.CallbackURL == "" || e.outbox == nil || e.cbSecret == nil {
		return nil
	}
	secret, err := e.cbSecret(r.Tenant)
	if err != nil {
		return err
	}
	body, err := json.Marshal(map[string]any{
		"request_id": r.ID, "type": r.Type, "status": r.Status, "step": r.Step,
		"received_at": r.ReceivedAt, "due_at": r.DueAt, "updated_at": r.UpdatedAt, "completed_at": r.CompletedAt,
	})
	if err != nil {
		return err
	}
	_, err = e.outbox.Enqueue(ctx, custos.Delivery{Tenant: r.Tenant, Kind: "request.status", RequestID: r.ID,
		Target: "callback", URL: r.CallbackURL, Secret: secret, Body: body})
	return err
}

// Get returns one request of a tenant.
func (e *Engine) Get(ctx context.Context, t custos.TenantID, id string) (*custos.Request, error) {
	return e.store.Request(ctx, t, id)
}

// Filter narrows a listing; zero fields match everything.
type Filter struct {
	Status  custos.RequestStatus
	Type    custos.RequestType
	Overdue bool
	Limit   int
	// After is the id of the last request of the page before: the list
	// goes on with the requests after it ("" from the newest).
	After string
}

// List returns a tenant's requests, newest first.
func (e *Engine) List(ctx context.Context, t custos.TenantID, f Filter) ([]*custos.Request, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	now := e.now()
	out := []*custos.Request{}
	skipping := f.After != ""
	err := e.store.Requests(ctx, t, func(r *custos.Request) bool {
		if skipping {
			skipping = r.ID != f.After
			return true
		}
		if (f.Status == "" || r.Status == f.Status) && (f.Type == "" || r.Type == f.Type) &&
			(!f.Overdue || Overdue(r, now)) {
			out = append(out, r)
		}
		return len(out) < f.Limit
	})
	return out, err
}

// Overdue reports whether a request is still open after its due date.
func Overdue(r *custos.Request, now time.Time) bool {
	return !r.Status.Final() && now.After(r.DueAt)
}

// Cancel cancels a request that has not started.
func (e *Engine) Cancel(ctx context.Context, t custos.TenantID, id, actor string) (*custos.Request, error) {
	r, err := e.store.Request(ctx, t, id)
	if err != nil {
		return nil, err
	}
	if r.Status != custos.Pending && r.Status != custos.PendingVerification {
		return nil, custos.Errorf(custos.Conflict, "request %s is %s; only a pending request can be cancelled", id, r.Status)
	}
	now := e.now().UTC()
	r.Status, r.UpdatedAt, r.PendingIdentity = custos.Cancelled, now, nil
	return r, e.put(ctx, r, actor, "request.cancelled", nil)
}

// Extend moves a request's due date by one or two months (at most two in
// all, before the original due date, with a reason: Art. 12(3)).
func (e *Engine) Extend(ctx context.Context, t custos.TenantID, id string, months int, reason, actor string) (*custos.Request, error) {
	r, err := e.store.Request(ctx, t, id)
	if err != nil {
		return nil, err
	}
	if r.Status.Final() {
		return nil, custos.Errorf(custos.Conflict, "request %s is %s; there is nothing left to extend", id, r.Status)
	}
	d := deadline.State{Received: r.ReceivedAt, OriginalDue: r.OriginalDueAt, Due: r.DueAt, ExtendedMonths: r.ExtendedMonths}
	now := e.now().UTC()
	d, err = d.Extend(now, months, reason)
	if err != nil {
		return nil, err
	}
	r.DueAt, r.ExtendedMonths, r.UpdatedAt = d.Due, d.ExtendedMonths, now
	r.ExtensionReason = strings.TrimSpace(reason)
	// The reason is the controller's free text and may name the person:
	// it stays in the request, not in the audit log.
	return r, e.put(ctx, r, actor, "request.extended", map[string]string{"months": strconv.Itoa(months), "due_at": d.Due.Format(time.RFC3339)})
}

// requestID is the id a caller chose, or a new one.
func requestID(in Input, now time.Time) string {
	if in.ID != "" {
		return in.ID
	}
	return newID(now)
}

// reserve claims a caller-chosen request id until release, so that two
// submissions under one id create one request. It answers Conflict if a
// request has that id. (Across several nodes this needs the store's
// conditional put: a later step.)
func (e *Engine) reserve(ctx context.Context, t custos.TenantID, id string) (release func(), err error) {
	if len(id) > 128 || strings.ContainsFunc(id, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-.:", r))
	}) {
		return nil, custos.Errorf(custos.Invalid, "request id %q must be at most 128 letters, digits, and _ - . :", id)
	}
	key := t.String() + "/" + id
	e.idMu.Lock()
	defer e.idMu.Unlock()
	if e.reserved[key] {
		return nil, custos.Errorf(custos.Conflict, "request %s is being created", id)
	}
	if _, err := e.store.Request(ctx, t, id); err == nil {
		return nil, custos.Errorf(custos.Conflict, "request %s exists", id)
	} else if custos.ErrorCode(err) != custos.NotFound {
		return nil, err
	}
	if e.reserved == nil {
		e.reserved = map[string]bool{}
	}
	e.reserved[key] = true
	return func() {
		e.idMu.Lock()
		delete(e.reserved, key)
		e.idMu.Unlock()
	}, nil
}

// newID returns a request id that sorts by creation time.
func newID(now time.Time) string {
	b := make([]byte, 8)
	rand.Read(b)
	return "req_" + now.UTC().Format("20060102T150405.000000000") + "_" + hex.EncodeToString(b)
}

// begin records a new request as pending.
func (e *Engine) begin(ctx context.Context, t custos.TenantID, in Input) (*custos.Request, error) {
	r := e.newRequest(t, in, custos.Pending)
	return r, e.put(ctx, r, in.Actor, "request.received", nil)
}

// newRequest makes the record of a request received now, with its legal
// deadline; nothing is stored yet.
func (e *Engine) newRequest(t custos.TenantID, in Input, status custos.RequestStatus) *custos.Request {
	now := e.now().UTC()
	d := deadline.New(now)
	return &custos.Request{
		ID: requestID(in, now), Tenant: t, Type: in.Type, Status: status, IdentityType: in.Identity.Type,
		Source: in.Source, CallbackURL: in.CallbackURL, Fingerprint: in.Fingerprint, OpenDSR: in.OpenDSR,
		ReceivedAt: now, DueAt: d.Due, OriginalDueAt: d.OriginalDue, UpdatedAt: now,
	}
}

// complete records a request as completed, audited under the subject's pseudonym.
func (e *Engine) complete(ctx context.Context, r *custos.Request, actor string, details map[string]string) (*custos.Request, error) {
	if details == nil {
		details = map[string]string{}
	}
	if r.Subject != (custos.SubjectID{}) {
		p, err := e.subj.Pseudonym(r.Tenant, r.Subject)
		if err != nil {
			return nil, err
		}
		details["subject"] = p
	}
	now := e.now().UTC()
	r.Status, r.CompletedAt, r.UpdatedAt = custos.Completed, now, now
	return r, e.put(ctx, r, actor, "request.completed", details)
}

// createAccess records an access or portability request. It completes at
// once: its result is streamed from the store at download, for ResultTTL.
func (e *Engine) createAccess(ctx context.Context, t custos.TenantID, in Input, r *custos.Request) (*custos.Request, error) {
	s, err := e.subj.Find(ctx, t, in.Identity)
	if err != nil && custos.ErrorCode(err) != custos.NotFound {
		return nil, err
	}
	if r == nil {
		if r, err = e.begin(ctx, t, in); err != nil {
			return nil, err
		}
	}
	r.Subject = s
	ids := []custos.Identifier{in.Identity.Normalize()}
	if s != (custos.SubjectID{}) {
		ids = e.identifiersOf(ctx, t, s, in.Identity)
	}
	if err := e.fwd.Plan(ctx, r, ids); err != nil {
		return nil, fmt.Errorf("forward to OpenDSR recipients: %w", err)
	}
	r, err = e.complete(ctx, r, in.Actor, nil)
	if err == nil {
		e.fwd.Kick(r)
	}
	return r, err
}

// Bounds of a request, each named in its refusal.
const (
	// MaxIdentityValue is the longest identifier a request names, as at
	// ingestion (segment.MaxIDLen).
	MaxIdentityValue = 1024
	// MaxRectifyTraits, maxTraitName and MaxTraitValue bound the traits
	// one rectify request sets: a correction, not a bulk import.
	MaxRectifyTraits = 100
	maxTraitName     = 256
	MaxTraitValue    = 8 << 10
	maxURL           = 2048
)

// createRectify sets or removes traits; the audit names the traits, never
// their old or new values.
func (e *Engine) createRectify(ctx context.Context, t custos.TenantID, in Input) (*custos.Request, error) {
	if len(in.Traits) == 0 {
		return nil, custos.Errorf(custos.Invalid, "traits is required for a rectify request: the traits to set, null to remove one")
	}
	if len(in.Traits) > MaxRectifyTraits {
		return nil, custos.Errorf(custos.Invalid, "traits holds %d traits; the limit is %d", len(in.Traits), MaxRectifyTraits)
	}
	for k, v := range in.Traits {
		if len(k) > maxTraitName {
			return nil, custos.Errorf(custos.Invalid, "traits has a name of %d bytes; the limit is %d", len(k), maxTraitName)
		}
		if len(v) > MaxTraitValue {
			return nil, custos.Errorf(custos.Invalid, "traits[%q] is %d bytes of JSON; the limit is %d", k, len(v), MaxTraitValue)
		}
	}
	r, err := e.begin(ctx, t, in)
	if err != nil {
		return nil, err
	}
	s, changed, err := e.gate.Rectify(ctx, t, in.Identity, in.Traits)
	if err != nil {
		if custos.ErrorCode(err) == custos.NotFound {
			r.Status, r.Error, r.UpdatedAt = custos.Rejected, custos.ErrorMessage(err), e.now().UTC()
			return r, e.put(ctx, r, in.Actor, "request.rejected", nil)
		}
		return nil, err
	}
	r.Subject = s
	err = e.notifyRecipients(ctx, r, e.identifiersOf(ctx, t, s, in.Identity), func(n *notice) { n.Traits = in.Traits })
	if err != nil {
		return nil, fmt.Errorf("queue notices to recipients: %w", err)
	}
	return e.complete(ctx, r, in.Actor, map[string]string{"traits": strings.Join(changed, ",")})
}

// identifiersOf lists a subject's identifiers from its profile, or just
// the one the request named if the profile cannot be read.
func (e *Engine) identifiersOf(ctx context.Context, t custos.TenantID, s custos.SubjectID, named custos.Identifier) []custos.Identifier {
	p, err := e.subj.Profile(ctx, t, s)
	if err != nil {
		return []custos.Identifier{named.Normalize()}
	}
	return profileIdentifiers(p)
}

// profileIdentifiers lists every identifier of a profile, in order of
// precedence.
func profileIdentifiers(p *custos.Profile) []custos.Identifier {
	var ids []custos.Identifier
	for _, typ := range custos.IdentifierTypes {
		for _, v := range p.Identifiers[typ.String()] {
			ids = append(ids, custos.Identifier{Type: typ, Value: v})
		}
	}
	return ids
}

// Outcomes reports what became of a request's notices to recipients.
func (e *Engine) Outcomes(ctx context.Context, r *custos.Request) ([]certificate.Outcome, error) {
	return e.outcomes(ctx, r)
}
