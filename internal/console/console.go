// Package console serves the controller console at /console and the data
// subjects' privacy center at /privacy/{tenant}: server-rendered HTML
// pages (html/template, assets embedded) over the domain services — the
// rights engine, the reader, the consent ledger, the audit log — never
// over the JSON API.
//
// Both keep sessions in a cookie that is HttpOnly, SameSite=Strict and
// Secure under TLS, naming a session held in the store (by the SHA-256
// of the cookie), so that any node of a cluster serves it and signing
// out on one ends it on all. Every form carries a CSRF token;
// pages are sent with a Content-Security-Policy that allows no inline
// script or style, and html/template escapes every value.
package console

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"embed"
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
	"github.com/custos-dev/custos/internal/certificate"
	"github.com/custos-dev/custos/internal/consent"
	"github.com/custos-dev/custos/internal/rights"
	"github.com/custos-dev/custos/internal/tenants"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Tenants is what the console needs of the tenant registry.
type Tenants interface {
	BySecretKey(key string) (*custos.Tenant, bool)
	Get(id custos.TenantID) (*custos.Tenant, bool)
	Misdirected(t *custos.Tenant) error
	IdentitySecret(t *custos.Tenant) (string, error)
	SMTPPassword(t *custos.Tenant) (string, error)
	List() []*custos.Tenant
	CheckConsoleUser(t *custos.Tenant, name, password, code string, now time.Time) (custos.ConsoleUser, uint64, error)
}

// Requests is what the console needs of the rights engine.
type Requests interface {
	Create(ctx context.Context, t custos.TenantID, in rights.Input) (*custos.Request, error)
	Get(ctx context.Context, t custos.TenantID, id string) (*custos.Request, error)
	List(ctx context.Context, t custos.TenantID, f rights.Filter) ([]*custos.Request, error)
	Cancel(ctx context.Context, t custos.TenantID, id, actor string) (*custos.Request, error)
	Extend(ctx context.Context, t custos.TenantID, id string, months int, reason, actor string) (*custos.Request, error)
	Approve(ctx context.Context, t custos.TenantID, id, actor string) (*custos.Request, error)
	Reject(ctx context.Context, t custos.TenantID, id, reason, actor string) (*custos.Request, error)
	Certificate(ctx context.Context, t custos.TenantID, id string) ([]byte, error)
	Result(ctx context.Context, t custos.TenantID, id, format string, w io.Writer, contentType func(ct, filename string)) error
	Outcomes(ctx context.Context, r *custos.Request) ([]certificate.Outcome, error)
	Callbacks(ctx context.Context, r *custos.Request) ([]certificate.Outcome, error)
}

// Subjects reads subjects (the ingest Reader).
type Subjects interface {
	Find(ctx context.Context, t custos.TenantID, id custos.Identifier) (custos.SubjectID, error)
	Profile(ctx context.Context, t custos.TenantID, s custos.SubjectID) (*custos.Profile, error)
	Pseudonym(t custos.TenantID, s custos.SubjectID) (string, error)
	EachEvent(ctx context.Context, t custos.TenantID, s custos.SubjectID, fn func(custos.Event) error) error
	Events(ctx context.Context, t custos.TenantID, s custos.SubjectID, cursor string, limit int) ([]custos.Event, string, error)
}

// Flags reads a subject's standing flags (the ingest Pipeline).
type Flags interface {
	Flags(ctx context.Context, t custos.TenantID, s custos.SubjectID) (custos.SubjectFlags, error)
}

// Consents reads the consent ledger.
type Consents interface {
	History(ctx context.Context, t custos.TenantID, s custos.SubjectID) ([]custos.ConsentRecord, error)
}

// ConsentRecorder records a grant or withdrawal with its audit entry
// (consent.Recorder).
type ConsentRecorder interface {
	Record(ctx context.Context, t *custos.Tenant, in consent.Input) (custos.ConsentRecord, error)
}

// Hasher makes keyed hashes under a tenant's key (the keyring).
type Hasher interface {
	HashValue(t custos.TenantID, domain string, v []byte) ([32]byte, error)
}

// Deps are the console's dependencies.
type Deps struct {
	Log *slog.Logger
	// Sessions keeps the sessions, the one-time sign-in links and the
	// TOTP steps used, for every node.
	Sessions custos.SessionStore
	// Hasher names a data subject's sessions by a keyed hash of the
	// identifier they proved, so an erasure ends them all.
	Hasher     Hasher
	Tenants    Tenants
	Requests   Requests
	Subjects   Subjects
	Consents   Consents
	Recorder   ConsentRecorder
	Recipients custos.RecipientStore
	// Flags shows a subject's flags on its page (nil: not shown).
	Flags Flags
	Audit *audit.Log
	// AuditStore is read by the audit log page and its chain check.
	AuditStore custos.AuditStore
	// SigningKey is the node's public key: the page verifies erasure
	// certificates with it.
	SigningKey ed25519.PublicKey
	// PublicURL is the base of the links in sign-in e-mails.
	PublicURL string
	// MailRootCAs verifies tenants' SMTP servers (nil: the system pool).
	MailRootCAs *x509.CertPool
	// SecureCookies marks cookies Secure even on plain connections (TLS
	// ends at a proxy in front); under TLS they always are.
	SecureCookies bool
	Now           func() time.Time

	// Changes makes the audited changes to tenants (console users, keys,
	// settings) under the signed-in user's name.
	Changes *tenants.Audited
	// RecipientAdder adds recipients (nil: none can be added).
	RecipientAdder RecipientAdder
	// ProcessingRecord builds the record of processing (nil: no page).
	ProcessingRecord ProcessingRecordFunc
	// Profiles walks the tenant's subjects for the consent report (nil:
	// no consent page).
	Profiles Profiles
	// Campaigns is the campaign engine (nil: no campaign pages).
	Campaigns Campaigns
	// Incidents is the incident register (nil: no incident pages).
	Incidents Incidents
	// OperatorToken signs the operator in ("" : no operator console).
	OperatorToken string
	// Ready and Region are shown on the operator's node page.
	Ready  func() bool
	Region string
}

// Handler serves the console and the privacy center. Create it with New.
type Handler struct {
	d     Deps
	mux   *http.ServeMux
	pages map[string]*template.Template

	console *sessions
	privacy *sessions
	links   *links
	// Failed sign-ins and links asked for, by client address (under
	// custos.OperatorChain: the address is no tenant's); failed sign-ins
	// of a tenant's user name, and links sent to one e-mail address. All
	// are counted in the store, for every node.
	signinByAddr *attempts
	linkByAddr   *attempts
	userLimit    *attempts
	linkLimit    *attempts

	mail sync.WaitGroup // e-mails being sent

	started time.Time
}

// Session lifetimes and sign-in limits.
const (
	ConsoleSessionTTL = 8 * time.Hour
	PrivacySessionTTL = 30 * time.Minute
	LinkTTL           = 15 * time.Minute
)

// New returns the handler of /console and /privacy.
func New(d Deps) (*Handler, error) {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Sessions == nil || d.Hasher == nil {
		return nil, errors.New("console: no session store or hasher")
	}
	h := &Handler{d: d, mux: http.NewServeMux(), pages: map[string]*template.Template{},
		console:      newSessions(d.Sessions, custos.SessionConsole, ConsoleSessionTTL, d.Now, d.Log),
		privacy:      newSessions(d.Sessions, custos.SessionPrivacy, PrivacySessionTTL, d.Now, d.Log),
		links:        newLinks(d.Sessions, LinkTTL, d.Now, d.Log),
		signinByAddr: newAttempts(d.Sessions, d.Hasher, "signin-address", 10, 15*time.Minute, d.Now),
		linkByAddr:   newAttempts(d.Sessions, d.Hasher, "link-address", 20, 15*time.Minute, d.Now),
		linkLimit:    newAttempts(d.Sessions, d.Hasher, "link", 3, 15*time.Minute, d.Now),
		userLimit:    newAttempts(d.Sessions, d.Hasher, "signin", 10, 15*time.Minute, d.Now),
		started:      d.Now(),
	}
	if err := h.parse(); err != nil {
		return nil, err
	}
	h.routes()
	return h, nil
}

// Wait returns once the sign-in e-mails being sent are done.
func (h *Handler) Wait() { h.mail.Wait() }

// contentSecurityPolicy allows nothing inline: styles and images come
// from this server (logos from https), there is no script at all.
const contentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self' https: data:; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", contentSecurityPolicy)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Cache-Control", "no-store")
	h.mux.ServeHTTP(w, r)
}

var funcs = template.FuncMap{
	"date": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"day": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02")
	},
	"json": func(v any) string {
		b, _ := json.Marshal(v)
		return string(b)
	},
	"add": func(a, b int) int { return a + b },
	// chart names a chart for the "barchart" and "linechart" templates.
	"chart": func(id string, c any) map[string]any { return map[string]any{"ID": id, "C": c} },
}

// parse builds one template set per page, each with the shared layout.
func (h *Handler) parse() error {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return err
	}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if strings.HasPrefix(base, "layout") || base == "chart" {
			continue
		}
		layout := "templates/layout.html"
		if strings.HasPrefix(base, "privacy") {
			layout = "templates/layout_privacy.html"
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(templateFS, layout, "templates/chart.html", n)
		if err != nil {
			return err
		}
		h.pages[base] = t
	}
	return nil
}

// render writes a page; a template failure is logged and answered 500
// before anything is sent.
func (h *Handler) render(w http.ResponseWriter, status int, page string, data any) {
	t, ok := h.pages[page]
	if !ok {
		h.d.Log.Error("console: no such page", "page", page)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		h.d.Log.Error("console: render", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// statusOf maps a domain error to an HTTP status: bad input 4xx,
// transient trouble 5xx.
func statusOf(err error) int {
	switch custos.ErrorCode(err) {
	case custos.Invalid:
		return http.StatusBadRequest
	case custos.NotFound:
		return http.StatusNotFound
	case custos.Conflict:
		return http.StatusConflict
	case custos.Unauthorized:
		return http.StatusUnauthorized
	case custos.Forbidden:
		return http.StatusForbidden
	case custos.Misdirected:
		return http.StatusMisdirectedRequest
	case custos.NotImplemented:
		return http.StatusNotImplemented
	case custos.Gone, custos.Shredded:
		return http.StatusGone
	case custos.TooLarge:
		return http.StatusRequestEntityTooLarge
	case custos.RateLimited:
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}

// messageOf is what a page may show of an error: the domain message of
// a domain error, nothing of an internal one.
func messageOf(err error) string {
	if statusOf(err) >= 500 && custos.ErrorCode(err) != custos.NotImplemented {
		return "Something went wrong on our side; please try again."
	}
	return custos.ErrorMessage(err)
}

func (h *Handler) static(w http.ResponseWriter, r *http.Request) {
	sub, _ := fs.Sub(staticFS, "static")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	http.StripPrefix(r.URL.Path[:strings.Index(r.URL.Path, "/static/")+len("/static")], http.FileServerFS(sub)).ServeHTTP(w, r)
}
