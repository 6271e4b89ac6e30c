package campaign

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
	"github.com/custos-dev/custos/internal/consent"
	"github.com/custos-dev/custos/internal/keyring"
)

// Store is the storage the engine uses: campaigns and send records, the
// outbox's records (to tell whether a webhook message went out before a
// crash), subject flags (a snapshot for previews) and profiles (to tell
// an erased subject).
type Store interface {
	custos.CampaignStore
	Deliveries(ctx context.Context, t custos.TenantID, requestID string) ([]custos.Delivery, error)
	EachFlags(ctx context.Context, fn func(custos.TenantID, custos.FlagsRecord) error) error
	Profile(ctx context.Context, t custos.TenantID, s custos.SubjectID) ([]byte, error)
}

// Profiles reads subjects' events and audit pseudonyms (ingest.Reader).
type Profiles interface {
	EventsSince(ctx context.Context, t custos.TenantID, s custos.SubjectID, since time.Time, fn func(custos.Event) (bool, error)) error
	Pseudonym(t custos.TenantID, s custos.SubjectID) (string, error)
}

// Gate reads a subject's standing flags in order with the ingestion gate
// (ingest.Pipeline).
type Gate interface {
	Flags(ctx context.Context, t custos.TenantID, s custos.SubjectID) (custos.SubjectFlags, error)
}

// Consents is the consent ledger (consent.Ledger).
type Consents interface {
	State(ctx context.Context, t custos.TenantID, s custos.SubjectID) (consent.State, error)
	RecordSubject(ctx context.Context, t custos.TenantID, s custos.SubjectID, rec custos.ConsentRecord) error
}

// Keys opens what an audience walk reads with subject keys, seals send
// records with them, and campaign definitions and tokens with tenant keys
// (keyring.Ring).
type Keys interface {
	Sealer
	SubjectKey(ctx context.Context, t custos.TenantID, s custos.SubjectID, create bool) (*keyring.SubjectKey, func() error, error)
	SubjectKeys(ctx context.Context, t custos.TenantID, from, to custos.SubjectID, fn func(*keyring.SubjectKey) (bool, error)) error
	Seal(ctx context.Context, t custos.TenantID, s custos.SubjectID, recordKey, plaintext []byte) ([]byte, error)
	Open(ctx context.Context, t custos.TenantID, s custos.SubjectID, recordKey, sealed []byte) ([]byte, error)
}

// Tenants gives the current settings and secrets of a tenant
// (tenants.Registry).
type Tenants interface {
	Get(id custos.TenantID) (*custos.Tenant, bool)
	SMTPPassword(t *custos.Tenant) (string, error)
	DeliverySecret(t *custos.Tenant) (string, error)
}

// Outbox delivers webhook messages durably, signed and retried
// (webhook.Outbox).
type Outbox interface {
	Enqueue(ctx context.Context, d custos.Delivery) (custos.Delivery, error)
}

// Deps are the engine's dependencies.
type Deps struct {
	Store    Store
	Profiles Profiles
	Gate     Gate
	Consents Consents
	Keys     Keys
	Tenants  Tenants
	Outbox   Outbox
	Audit    *audit.Log
	// PublicURL is the base of unsubscribe links, e.g. https://custos.example.com.
	PublicURL string
	Now       func() time.Time
	Log       *slog.Logger
	// Resume lists the tenants whose campaigns a stop interrupted Run
	// resumes: this node's region's (nil: none).
	Resume func() []custos.TenantID
	// ResumeEvery, if set, makes Run look again this often for campaigns
	// being sent that no run holds (their node died: another node takes
	// them over once their lease expired). Zero: only when Run starts.
	ResumeEvery time.Duration
	// Leases keeps each campaign run to one node at a time
	// (lease.Leases). Nil: this process is the only one.
	Leases Leases
	// MailRootCAs verifies tenants' SMTP servers (nil: the system pool).
	MailRootCAs *x509.CertPool
	// MailDial, if set, connects to tenants' SMTP servers (netguard's
	// DialContext, so a tenant cannot point mail at an internal host);
	// nil dials directly.
	MailDial func(ctx context.Context, network, addr string) (net.Conn, error)
	// MailAttempts is how many times a message is tried on temporary SMTP
	// failures (default 3), waiting MailBackoff (default 1 s), doubling,
	// between attempts.
	MailAttempts int
	MailBackoff  time.Duration
}

// Engine creates, previews and sends campaigns. Create it with New, then
// call Run to send in the background.
type Engine struct {
	d   Deps
	now func() time.Time
	log *slog.Logger

	// locks serialise the gate and the send record of one subject, so two
	// campaigns running at once cannot both slip under the frequency cap.
	locks [64]sync.Mutex

	runMu    sync.Mutex
	running  map[campaignRef]bool
	launches chan campaignRef // runs Send asks Run to start
	stopped  chan struct{}    // closed when Run returns

	// beforeGate, in tests, runs just before a recipient is gated.
	beforeGate func(custos.SubjectID)
	// beforeRecord, in tests, runs once a recipient passed the gate, just
	// before its first send record is written.
	beforeRecord func(custos.SubjectID)
}

type campaignRef struct {
	t  custos.TenantID
	id string
}

// New returns an Engine.
func New(d Deps) *Engine {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.MailAttempts <= 0 {
		d.MailAttempts = 3
	}
	if d.MailBackoff <= 0 {
		d.MailBackoff = time.Second
	}
	d.PublicURL = strings.TrimRight(d.PublicURL, "/")
	return &Engine{d: d, now: d.Now, log: d.Log, running: map[campaignRef]bool{},
		launches: make(chan campaignRef), stopped: make(chan struct{})}
}

// Leases runs work while holding a named lease of a tenant, and reports
// held false, without running it, when another holder has the lease
// (lease.Leases).
type Leases interface {
	Hold(ctx context.Context, t custos.TenantID, name string, fn func(context.Context) error) (held bool, err error)
}

// Input is a new campaign as the API receives it.
type Input struct {
	Name     string                 `json:"name"`
	Purpose  string                 `json:"purpose"`
	Channel  string                 `json:"channel"`
	Audience custos.Audience        `json:"audience"`
	Message  custos.CampaignMessage `json:"message"`
	// Actor is who the audit entry names; "" is the secret key's.
	Actor string `json:"-"`
}

// Channels campaigns can use.
var sendChannels = []string{custos.ChannelEmail, custos.ChannelWebhook}

// Create validates and stores a new campaign as a draft.
func (e *Engine) Create(ctx context.Context, t *custos.Tenant, in Input) (*custos.Campaign, error) {
	in.Name = strings.TrimSpace(in.Name)
	switch {
	case in.Name == "" || len(in.Name) > 200:
		return nil, custos.Errorf(custos.Invalid, "name is required (at most 200 characters)")
	case in.Purpose == "":
		return nil, custos.Errorf(custos.Invalid, "purpose is required (a purpose declared in the tenant's settings, e.g. marketing)")
	case !slices.Contains(sendChannels, in.Channel):
		return nil, custos.Errorf(custos.Invalid, "channel %q must be email or webhook", in.Channel)
	}
	if _, ok := t.Settings.Purpose(in.Purpose); !ok {
		return nil, custos.Errorf(custos.Invalid, "purpose %q is not declared in the tenant's settings", in.Purpose)
	}
	if err := validateAudience(&in.Audience); err != nil {
		return nil, err
	}
	if _, err := parseTemplates(in.Channel, in.Message); err != nil {
		return nil, err
	}
	n := 0
	if err := e.d.Store.Campaigns(ctx, t.ID, func(*custos.Campaign) bool { n++; return n < MaxCampaigns }); err != nil {
		return nil, fmt.Errorf("count campaigns: %w", err)
	}
	if n >= MaxCampaigns {
		return nil, custos.Errorf(custos.Invalid, "the tenant has %d campaigns, the most allowed (limit %d)", n, MaxCampaigns)
	}
	now := e.now().UTC()
	c := &custos.Campaign{
		ID: newID(now), Tenant: t.ID, Purpose: in.Purpose, Channel: in.Channel, Status: custos.CampaignDraft, CreatedAt: now,
		Definition: &custos.CampaignDefinition{Name: in.Name, Audience: in.Audience, Message: in.Message},
		Progress:   custos.CampaignProgress{Excluded: zeroReasons()},
	}
	if err := e.put(ctx, c); err != nil {
		return nil, err
	}
	actor := in.Actor
	if actor == "" {
		actor = audit.ActorTenant
	}
	if err := e.record(ctx, t.ID, audit.Entry{Actor: actor, Action: "campaign.create",
		Details: map[string]string{"campaign_id": c.ID, "purpose": c.Purpose, "channel": c.Channel}}); err != nil {
		return nil, err
	}
	return c, nil
}

func newID(now time.Time) string {
	b := make([]byte, 8)
	rand.Read(b)
	return "cmp_" + now.Format("20060102T150405") + "_" + hex.EncodeToString(b)
}

// definitionRecord is the associated data of a sealed definition: its
// campaign, so a definition moved to another campaign does not open.
func definitionRecord(id string) []byte { return []byte("campaign/" + id) }

// put stores c with its definition sealed.
func (e *Engine) put(ctx context.Context, c *custos.Campaign) error {
	stored := *c
	if c.Definition != nil {
		plain, err := json.Marshal(c.Definition)
		if err != nil {
			return fmt.Errorf("encode campaign definition: %w", err)
		}
		if stored.DefinitionSealed, err = e.d.Keys.SealTenant(c.Tenant, definitionRecord(c.ID), plain); err != nil {
			return fmt.Errorf("seal campaign definition: %w", err)
		}
		stored.Definition = nil
	}
	if err := e.d.Store.PutCampaign(ctx, &stored); err != nil {
		return fmt.Errorf("store campaign %s: %w", c.ID, err)
	}
	return nil
}

// Get returns a campaign with its definition opened.
func (e *Engine) Get(ctx context.Context, t custos.TenantID, id string) (*custos.Campaign, error) {
	c, err := e.d.Store.Campaign(ctx, t, id)
	if errors.Is(err, custos.ErrNotFound) {
		return nil, custos.Errorf(custos.NotFound, "no campaign %q", id)
	}
	if err != nil {
		return nil, err
	}
	return c, e.open(c)
}

func (e *Engine) open(c *custos.Campaign) error {
	plain, err := e.d.Keys.OpenTenant(c.Tenant, definitionRecord(c.ID), c.DefinitionSealed)
	if err != nil {
		return fmt.Errorf("open campaign %s definition: %w", c.ID, err)
	}
	var def custos.CampaignDefinition
	if err := json.Unmarshal(plain, &def); err != nil {
		return fmt.Errorf("decode campaign %s definition: %w", c.ID, err)
	}
	c.Definition, c.DefinitionSealed = &def, nil
	if c.Progress.Excluded == nil {
		c.Progress.Excluded = map[string]int{}
	}
	for _, r := range Reasons {
		c.Progress.Excluded[r] += 0 // every reason shown, even at zero
	}
	return nil
}

// List returns a tenant's campaigns, newest first.
func (e *Engine) List(ctx context.Context, t custos.TenantID) ([]*custos.Campaign, error) {
	var out []*custos.Campaign
	var openErr error
	err := e.d.Store.Campaigns(ctx, t, func(c *custos.Campaign) bool {
		if openErr = e.open(c); openErr != nil {
			return false
		}
		out = append(out, c)
		return true
	})
	if err == nil {
		err = openErr
	}
	slices.Reverse(out) // ids begin with their creation time
	return out, err
}

// record appends an audit entry.
func (e *Engine) record(ctx context.Context, t custos.TenantID, en audit.Entry) error {
	if e.d.Audit == nil {
		return nil
	}
	if _, err := e.d.Audit.Record(ctx, t, en); err != nil {
		return fmt.Errorf("audit %s: %w", en.Action, err)
	}
	return nil
}

func (e *Engine) lock(s custos.SubjectID) *sync.Mutex {
	return &e.locks[int(s[0])%len(e.locks)]
}
