// Package server is the HTTP surface of Custos: Segment-spec ingestion,
// the management API for tenants' servers, the operator API and
// observability. routes.go lists every route; errors map to statuses in
// errors.go only.
package server

import (
	"crypto"
	"crypto/ed25519"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
	"github.com/custos-dev/custos/internal/campaign"
	"github.com/custos-dev/custos/internal/consent"
	"github.com/custos-dev/custos/internal/incident"
	"github.com/custos-dev/custos/internal/metrics"
	"github.com/custos-dev/custos/internal/opendsr"
	"github.com/custos-dev/custos/internal/processing"
	"github.com/custos-dev/custos/internal/rights"
	"github.com/custos-dev/custos/internal/segment"
	"github.com/custos-dev/custos/internal/subjects"
	"github.com/custos-dev/custos/internal/tenants"
)

// Deps are what the server needs; cmd/custos builds them.
type Deps struct {
	Log     *slog.Logger
	Tenants *tenants.Registry
	Ingest  *subjects.Pipeline
	Reader  *subjects.Reader
	Rights  *rights.Engine
	// Consent is the consent ledger.
	Consent    *consent.Ledger
	Recipients custos.RecipientStore
	// Campaigns creates, previews and sends campaigns, and serves the
	// unsubscribe links (nil: no campaign routes).
	Campaigns  *campaign.Engine
	Metrics    *metrics.Metrics
	Audit      *audit.Log
	AuditStore custos.AuditStore
	Tally      *audit.Tally
	// Incidents is the breach register (Art. 33, 34).
	Incidents *incident.Register
	// SigningKey is the node's Ed25519 key: it signs audit checkpoints.
	SigningKey    ed25519.PrivateKey
	OperatorToken string
	// MetricsToken, when set, lets a scraper read /metrics on the API
	// listener with it (the operator token always can).
	MetricsToken string
	Limits       segment.Limits
	Now          func() time.Time
	// Ready reports whether the node can take traffic (false while
	// shutting down).
	Ready func() bool
	// OpenDSRSigner signs every answer of the OpenDSR API; OpenDSRCertPEM
	// is its certificate, served for controllers to verify with, issued
	// for OpenDSRDomain.
	OpenDSRSigner  crypto.Signer
	OpenDSRCertPEM []byte
	OpenDSRDomain  string
	// OpenDSRParse adjusts how submitted requests are checked (tests
	// allow http:// callback URLs).
	OpenDSRParse opendsr.Options
	// HSTS, when true, sends Strict-Transport-Security (TLS is on).
	HSTS bool
	// Processor names the operator in records of processing; Security is
	// the node's transport security, stated there too.
	Processor processing.Processor
	Security  processing.Security
	// Backup, if set, takes online backups of the data store for the
	// operator (POST /admin/v1/backup).
	Backup BackupFunc
	// Admission rate-limits ingestion, device requests and the API, per
	// tenant and per key (nil: no limits). The writer's fair sharing
	// between tenants is the writer's own (subjects.Options.FairWindow).
	Admission *Admission
	// Console serves the controller console (/console) and the privacy
	// center (/privacy/{tenant}); nil: neither is served.
	Console http.Handler
}

// New returns the Custos HTTP handler.
func New(d Deps) http.Handler {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Limits == (segment.Limits{}) {
		d.Limits = segment.DefaultLimits
	}
	mux := http.NewServeMux()
	addRoutes(mux, d)
	h := jsonUnmatched(d, mux)
	h = observe(d.Metrics, h)
	if d.HSTS {
		h = hsts(h)
	}
	return h
}

// statusRecorder remembers the status a handler wrote, for metrics.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// observe records request latency by route pattern (never by raw path,
// which may hold identifiers) and status.
func observe(m *metrics.Metrics, next http.Handler) http.Handler {
	if m == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		m.Requests.WithLabelValues(route, strconv.Itoa(rec.status)).Observe(time.Since(start).Seconds())
	})
}

func hsts(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		next.ServeHTTP(w, r)
	})
}
