package server

import (
	"fmt"
	"net/http"

	"github.com/custos-dev/custos/internal/consent"
	"github.com/custos-dev/custos/internal/metrics"
	"github.com/custos-dev/custos/internal/opendsr"
	"github.com/custos-dev/custos/internal/tenants"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Auth is how a route authenticates its caller.
type Auth int

// The authentication classes. The zero Auth is none of them: a route
// without a class is refused by addRoutes and by the route test.
const (
	// AuthNone: public, or authenticated by something other than a key —
	// probes, the node's public keys, unsubscribe links (the token is the
	// capability), OpenDSR callbacks (the recipient's signature).
	AuthNone Auth = iota + 1
	// AuthWriteKey: a tenant's write key (HTTP Basic user name,
	// ?writeKey= or "writeKey" in the body). The handler checks it.
	AuthWriteKey
	// AuthSecretKey: a tenant's secret key (Bearer or HTTP Basic).
	AuthSecretKey
	// AuthOperator: the operator token (Bearer).
	AuthOperator
	// AuthMetrics: the metrics token or the operator token (Bearer).
	AuthMetrics
)

// String names the class as docs/api.md does.
func (a Auth) String() string {
	switch a {
	case AuthNone:
		return "none"
	case AuthWriteKey:
		return "write key"
	case AuthSecretKey:
		return "secret key"
	case AuthOperator:
		return "operator"
	case AuthMetrics:
		return "metrics"
	}
	return fmt.Sprintf("Auth(%d)", int(a))
}

// Route is one entry of the HTTP surface: what addRoutes registers, and
// what tests and documentation walk.
type Route struct {
	Method  string
	Pattern string
	Auth    Auth
	// OpenDSR is the protocol version ("v2", "v1") of an OpenDSR route,
	// whose answers are signed and whose errors, authentication failures
	// included, take the OpenDSR shape; "" for the others.
	OpenDSR string
	// Needs names the Deps field without which the route is not served
	// ("Campaigns", "Metrics"); "" when it always is.
	Needs string

	tenant func(Deps) tenantHandler // AuthSecretKey
	plain  func(Deps) http.Handler  // every other class
}

// Route makers: one line of the table each.
func secret(method, pattern string, h func(Deps) tenantHandler) Route {
	return Route{Method: method, Pattern: pattern, Auth: AuthSecretKey, tenant: h}
}

func operator(method, pattern string, h func(Deps) http.Handler) Route {
	return Route{Method: method, Pattern: pattern, Auth: AuthOperator, plain: h}
}

func public(method, pattern string, h func(Deps) http.Handler) Route {
	return Route{Method: method, Pattern: pattern, Auth: AuthNone, plain: h}
}

func writeKey(method, pattern string, h func(Deps) http.Handler) Route {
	return Route{Method: method, Pattern: pattern, Auth: AuthWriteKey, plain: h}
}

func (r Route) needs(field string) Route { r.Needs = field; return r }

// Routes is the whole HTTP surface of Custos, in the order registered.
// Adding a route is adding one line here.
func Routes() []Route {
	var rs []Route
	// Segment-spec ingestion, with the browser short forms and the beacon
	// path.
	for _, p := range []string{
		"/v1/batch", "/v1/track", "/v1/identify", "/v1/alias", "/v1/page", "/v1/screen", "/v1/group",
		"/v1/b", "/v1/t", "/v1/i", "/v1/a", "/v1/p", "/v1/s", "/v1/g", "/beacon/v1/batch",
	} {
		// Some clients add a trailing slash; {$} matches only that path.
		for _, p := range []string{p, p + "/{$}"} {
			rs = append(rs,
				writeKey("POST", p, func(d Deps) http.Handler {
					return cors(handleIngest(d.Log, d.Tenants, d.Ingest, d.Metrics, d.Tally, d.Limits, d.Now))
				}),
				public("OPTIONS", p, preflight))
		}
	}
	rs = append(rs,
		// Rights from the device (write key).
		writeKey("POST", "/v1/privacy", func(d Deps) http.Handler { return cors(handlePrivacy(d.Log, d.Tenants, d.Rights)) }),
		public("OPTIONS", "/v1/privacy", preflight),

		// The browser SDKs' settings fetch, so pages need no CDN: Segment's
		// analytics.js and RudderStack's JavaScript SDK (write key in the
		// path or query; see sdkconfig.go).
		// Segment's settings fetch names the write key in the path and
		// sends no credentials: the path is the key, as public as any
		// write key shipped in a page.
		public("GET", "/v1/projects/{writeKey}/settings", func(d Deps) http.Handler { return cors(handleSegmentSettings(d.Log, d.Tenants)) }),
		public("OPTIONS", "/v1/projects/{writeKey}/settings", sdkConfigPreflight),
		writeKey("GET", "/sourceConfig", func(d Deps) http.Handler { return cors(handleRudderSourceConfig(d.Log, d.Tenants)) }),
		public("OPTIONS", "/sourceConfig", sdkConfigPreflight),
		writeKey("GET", "/sourceConfig/{$}", func(d Deps) http.Handler { return cors(handleRudderSourceConfig(d.Log, d.Tenants)) }),
		public("OPTIONS", "/sourceConfig/{$}", sdkConfigPreflight),

		// Management API for the tenant's servers (secret key).
		secret("GET", "/api/v1/profiles", func(d Deps) tenantHandler { return handleFindProfile(d.Log, d.Reader, d.Audit) }),
		secret("GET", "/api/v1/profiles/{subject_id}", func(d Deps) tenantHandler { return handleGetProfile(d.Log, d.Reader, d.Audit) }),
		secret("GET", "/api/v1/profiles/{subject_id}/events", func(d Deps) tenantHandler { return handleListEvents(d.Log, d.Reader, d.Audit) }),
		secret("GET", "/api/v1/profiles/{subject_id}/consents", func(d Deps) tenantHandler { return handleGetConsents(d.Log, d.Consent, d.Reader, d.Audit) }),
		secret("POST", "/api/v1/consents", func(d Deps) tenantHandler {
			return handleRecordConsent(d.Log, consent.NewRecorder(d.Consent, d.Reader, d.Audit, d.Now))
		}),
		secret("POST", "/api/v1/requests", func(d Deps) tenantHandler { return handleCreateRequest(d.Log, d.Rights, d.Now) }),
		secret("GET", "/api/v1/requests", func(d Deps) tenantHandler { return handleListRequests(d.Log, d.Rights, d.Now) }),
		secret("GET", "/api/v1/requests/{id}", func(d Deps) tenantHandler { return handleGetRequest(d.Log, d.Rights, d.Now) }),
		secret("POST", "/api/v1/requests/{id}/cancel", func(d Deps) tenantHandler { return handleCancelRequest(d.Log, d.Rights, d.Now) }),
		secret("POST", "/api/v1/requests/{id}/extend", func(d Deps) tenantHandler { return handleExtendRequest(d.Log, d.Rights, d.Now) }),
		secret("GET", "/api/v1/requests/{id}/certificate", func(d Deps) tenantHandler { return handleCertificate(d.Log, d.Rights) }),
		secret("GET", "/api/v1/requests/{id}/result", func(d Deps) tenantHandler { return handleResult(d.Log, d.Rights) }),
		secret("POST", "/api/v1/requests/{id}/approve", func(d Deps) tenantHandler { return handleApproveRequest(d.Log, d.Rights, d.Now) }),
		secret("POST", "/api/v1/requests/{id}/reject", func(d Deps) tenantHandler { return handleRejectRequest(d.Log, d.Rights, d.Now) }),
		secret("POST", "/api/v1/recipients", func(d Deps) tenantHandler { return handleCreateRecipient(d.Log, d.Rights) }),
		secret("GET", "/api/v1/recipients", func(d Deps) tenantHandler { return handleListRecipients(d.Log, d.Recipients) }),
		secret("DELETE", "/api/v1/recipients/{id}", func(d Deps) tenantHandler { return handleDeleteRecipient(d.Log, d.Recipients) }),
		secret("GET", "/api/v1/settings", func(d Deps) tenantHandler { return handleGetSettings() }),
		secret("PATCH", "/api/v1/settings", func(d Deps) tenantHandler {
			return handlePatchSettings(d.Log, tenants.NewAudited(d.Tenants, d.Audit, d.Log))
		}),
		secret("GET", "/api/v1/processing-record", func(d Deps) tenantHandler {
			return handleProcessingRecord(d.Log, d.Reader, d.Recipients, d.Processor, d.Security, d.Now)
		}),
		secret("POST", "/api/v1/campaigns", func(d Deps) tenantHandler { return handleCreateCampaign(d.Log, d.Campaigns) }).needs("Campaigns"),
		secret("GET", "/api/v1/campaigns", func(d Deps) tenantHandler { return handleListCampaigns(d.Log, d.Campaigns) }).needs("Campaigns"),
		secret("GET", "/api/v1/campaigns/{id}", func(d Deps) tenantHandler { return handleGetCampaign(d.Log, d.Campaigns) }).needs("Campaigns"),
		secret("POST", "/api/v1/campaigns/{id}/preview", func(d Deps) tenantHandler { return handlePreviewCampaign(d.Log, d.Campaigns) }).needs("Campaigns"),
		secret("POST", "/api/v1/campaigns/{id}/send", func(d Deps) tenantHandler { return handleSendCampaign(d.Log, d.Campaigns) }).needs("Campaigns"),
		// The personal unsubscribe link of campaign messages: the token is
		// the capability.
		public("GET", "/u/{token}", func(d Deps) http.Handler { return handleUnsubscribePage(d.Campaigns, d.Tenants) }).needs("Campaigns"),
		public("POST", "/u/{token}", func(d Deps) http.Handler { return handleUnsubscribe(d.Log, d.Campaigns, d.Tenants) }).needs("Campaigns"),
		secret("GET", "/api/v1/audit", func(d Deps) tenantHandler { return handleTenantAudit(d.Log, d.AuditStore) }),
		secret("GET", "/api/v1/audit/checkpoint", func(d Deps) tenantHandler { return handleTenantCheckpoint(d.Log, d.Audit, d.SigningKey) }),
		secret("GET", "/api/v1/incidents", func(d Deps) tenantHandler { return handleTenantIncidents(d.Log, d.Incidents, d.Now) }),
		secret("GET", "/api/v1/incidents/{id}", func(d Deps) tenantHandler { return handleTenantIncident(d.Log, d.Incidents, d.Now) }),
		secret("POST", "/api/v1/incidents/{id}/acknowledge", func(d Deps) tenantHandler { return handleAcknowledgeIncident(d.Log, d.Incidents, d.Now) }),
		secret("GET", "/api/v1/incidents/{id}/affected-subjects", func(d Deps) tenantHandler { return handleAffectedSubjects(d.Log, d.Incidents) }),
		secret("GET", "/api/v1/incidents/{id}/notice", func(d Deps) tenantHandler { return handleIncidentNotice(d.Log, d.Incidents) }),
	)

	// OpenDSR, Custos as processor (secret key); every answer signed. The
	// version 1 (OpenGDPR) names stay, with their own signature headers.
	for _, v := range []openDSRVersion{openDSRv2, openDSRv1} {
		dsr := func(r Route) Route { r.OpenDSR = v.name; return r }
		rs = append(rs,
			dsr(secret("GET", v.base+"/discovery", func(d Deps) tenantHandler { return handleOpenDSRDiscovery(v) })),
			dsr(public("GET", v.base+"/certificate", func(d Deps) http.Handler { return handleOpenDSRCertificate(d.OpenDSRCertPEM) })),
			dsr(secret("POST", v.base+v.requests, func(d Deps) tenantHandler {
				return handleOpenDSRSubmit(d.Log, d.Rights, d.OpenDSRSigner, d.OpenDSRParse, v, d.Now)
			})),
			dsr(secret("GET", v.base+v.requests+"/{id}", func(d Deps) tenantHandler { return handleOpenDSRStatus(d.Log, d.Rights, v) })),
			dsr(secret("DELETE", v.base+v.requests+"/{id}", func(d Deps) tenantHandler { return handleOpenDSRCancel(d.Log, d.Rights, v) })),
		)
	}

	rs = append(rs,
		// OpenDSR, Custos as controller: status callbacks from the
		// recipients requests were forwarded to. The unguessable token in
		// the path names the request; the recipient's signature
		// authenticates the callback.
		public("POST", "/opendsr/v2/callbacks/{token}", func(d Deps) http.Handler { return handleOpenDSRCallback(d.Log, d.Rights) }),

		// Operator API (operator token).
		operator("POST", "/admin/v1/tenants", func(d Deps) http.Handler {
			return handleCreateTenant(d.Log, tenants.NewAudited(d.Tenants, d.Audit, d.Log))
		}),
		operator("GET", "/admin/v1/tenants", func(d Deps) http.Handler { return handleListTenants(d.Log, d.Tenants) }),
		operator("GET", "/admin/v1/tenants/{id}", func(d Deps) http.Handler { return handleGetTenant(d.Log, d.Tenants) }),
		operator("POST", "/admin/v1/tenants/{id}/keys/rotate", func(d Deps) http.Handler {
			return handleRotateKeys(d.Log, d.Tenants, tenants.NewAudited(d.Tenants, d.Audit, d.Log))
		}),
		operator("DELETE", "/admin/v1/tenants/{id}", func(d Deps) http.Handler {
			return handleDeleteTenant(d.Log, d.Tenants, tenants.NewAudited(d.Tenants, d.Audit, d.Log))
		}),
		operator("GET", "/admin/v1/audit", func(d Deps) http.Handler { return handleOperatorAudit(d.Log, d.AuditStore) }),
		operator("GET", "/admin/v1/audit/checkpoint", func(d Deps) http.Handler { return handleOperatorCheckpoint(d.Log, d.Audit, d.SigningKey) }),
		operator("POST", "/admin/v1/incidents", func(d Deps) http.Handler { return handleOpenIncident(d.Log, d.Incidents, d.Tenants, d.Now) }),
		operator("GET", "/admin/v1/incidents", func(d Deps) http.Handler { return handleListIncidents(d.Log, d.Incidents) }),
		operator("GET", "/admin/v1/incidents/{id}", func(d Deps) http.Handler { return handleGetIncident(d.Log, d.Incidents, d.Tenants, d.Now) }),
		operator("POST", "/admin/v1/incidents/{id}/updates", func(d Deps) http.Handler { return handleUpdateIncident(d.Log, d.Incidents, d.Tenants, d.Now) }),
		operator("POST", "/admin/v1/incidents/{id}/close", func(d Deps) http.Handler { return handleCloseIncident(d.Log, d.Incidents, d.Tenants, d.Now) }),

		// The controller console and the data subjects' privacy center:
		// HTML pages of internal/console, which authenticates them itself
		// (a session cookie and a CSRF token on every form). Its own route
		// table, console.Routes, is walked by TestConsoleRoutes the way
		// TestRoutes walks this one.
		public("GET", "/console", consolePages).needs("Console"),
		public("GET", "/console/{page...}", consolePages).needs("Console"),
		public("POST", "/console/{page...}", consolePages).needs("Console"),
		public("GET", "/privacy/{tenant}", consolePages).needs("Console"),
		public("GET", "/privacy/{tenant}/{page...}", consolePages).needs("Console"),
		public("POST", "/privacy/{tenant}/{page...}", consolePages).needs("Console"),

		// The node's public signing key, for offline verification.
		public("GET", "/.well-known/custos/signing-key", func(d Deps) http.Handler { return handleSigningKey(d.SigningKey) }),

		// Observability. /metrics on the API listener needs the metrics or
		// the operator token; the metrics address serves it without
		// (MetricsHandler).
		public("GET", "/healthz", func(d Deps) http.Handler { return handleHealthz() }),
		public("GET", "/readyz", func(d Deps) http.Handler { return handleReadyz(d.Ready) }),
		Route{Method: "GET", Pattern: "/metrics", Auth: AuthMetrics, Needs: "Metrics", plain: func(d Deps) http.Handler { return MetricsHandler(d.Metrics) }},
	)
	return rs
}

func consolePages(d Deps) http.Handler { return d.Console }

func preflight(Deps) http.Handler { return cors(http.HandlerFunc(handlePreflight)) }

// MetricsHandler serves the Prometheus metrics of m without
// authentication, for a separate metrics listener.
func MetricsHandler(m *metrics.Metrics) http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// has reports whether d holds the dependency a route needs.
func (d Deps) has(field string) bool {
	switch field {
	case "":
		return true
	case "Campaigns":
		return d.Campaigns != nil
	case "Metrics":
		return d.Metrics != nil
	case "Console":
		return d.Console != nil
	}
	panic("server: unknown route dependency " + field)
}

// addRoutes registers every route of Routes whose dependencies d holds,
// behind the authentication its class names.
func addRoutes(mux *http.ServeMux, d Deps) {
	for _, r := range Routes() {
		if !d.has(r.Needs) {
			continue
		}
		var h http.Handler
		switch r.Auth {
		case AuthSecretKey:
			h = requireSecret(d.Log, d.Tenants, r.OpenDSR != "", r.tenant(d))
		case AuthOperator:
			h = requireOperator(d.Log, d.OperatorToken, r.plain(d))
		case AuthMetrics:
			h = requireMetrics(d.Log, d.MetricsToken, d.OperatorToken, r.plain(d))
		case AuthNone, AuthWriteKey:
			h = r.plain(d)
		default:
			panic(fmt.Sprintf("server: route %s %s has no authentication class", r.Method, r.Pattern))
		}
		if r.OpenDSR != "" {
			h = signOpenDSR(d, r.OpenDSR, h)
		}
		mux.Handle(r.Method+" "+r.Pattern, h)
	}
}

// signOpenDSR signs every answer of h with the OpenDSR signature headers
// of the protocol version ("v2" or "v1").
func signOpenDSR(d Deps, version string, h http.Handler) http.Handler {
	return signBodies(d.Log, opendsr.HeaderSigner{Key: d.OpenDSRSigner, Domain: d.OpenDSRDomain, V1: version == openDSRv1.name}, h)
}
