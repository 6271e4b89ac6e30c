package server

// The settings the browser SDKs fetch before they send anything. Segment's
// analytics.js asks its CDN for GET {cdnURL}/v1/projects/{writeKey}/settings,
// RudderStack's JavaScript SDK asks its control plane for GET
// {configUrl}/sourceConfig/?writeKey=…. With Custos as both, a page needs
// no third-party host: the answers name Custos as the one place events go,
// with no device-mode destinations, no remote plugins or middleware, and
// the SDKs' own telemetry (Segment's metrics, RudderStack's error and
// metrics reporting) switched off, so the visitor's browser talks to
// nobody else.

import (
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/tenants"
)

// sdkConfigPreflight answers the CORS preflight of the settings fetches.
func sdkConfigPreflight(Deps) http.Handler {
	return cors(http.HandlerFunc(handleSDKConfigPreflight))
}

// sdkTenant returns the tenant of a write key, or writes the error and
// returns nil. A key of a tenant of another region is answered as
// ingestion answers it, so a misconfigured page fails at its first call.
func sdkTenant(w http.ResponseWriter, log *slog.Logger, reg *tenants.Registry, key string) *custos.Tenant {
	if key == "" {
		writeError(w, log, custos.Errorf(custos.Unauthorized, "missing write key: name it in the path (Segment), the writeKey query parameter or HTTP Basic auth (RudderStack)"))
		return nil
	}
	t, ok := reg.ByWriteKey(key)
	if !ok {
		writeError(w, log, custos.Errorf(custos.Unauthorized, "unknown write key"))
		return nil
	}
	if misdirected(w, log, reg, t) {
		return nil
	}
	return t
}

// sdkScheme is the scheme the request reached this node with.
func sdkScheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// segmentSettings is the part of a Segment CDN settings document that
// analytics.js (analytics-next) reads.
type segmentSettings struct {
	Integrations              map[string]segmentIntegration `json:"integrations"`
	Plan                      map[string]any                `json:"plan"`
	EdgeFunction              map[string]any                `json:"edgeFunction"`
	AnalyticsNextEnabled      bool                          `json:"analyticsNextEnabled"`
	MiddlewareSettings        map[string]any                `json:"middlewareSettings"`
	EnabledMiddleware         map[string]bool               `json:"enabledMiddleware"`
	Metrics                   segmentMetrics                `json:"metrics"`
	LegacyVideoPluginsEnabled bool                          `json:"legacyVideoPluginsEnabled"`
	RemotePlugins             []any                         `json:"remotePlugins"`
	ConsentSettings           segmentConsentSettings        `json:"consentSettings"`
}

// segmentIntegration is the "Segment.io" integration: where events go.
type segmentIntegration struct {
	APIKey   string `json:"apiKey"`
	APIHost  string `json:"apiHost"` // host[:port]/v1, without scheme
	Protocol string `json:"protocol"`
}

// segmentMetrics turns analytics.js's own usage metrics off: a sample
// rate of 0 sends none.
type segmentMetrics struct {
	SampleRate float64 `json:"sampleRate"`
}

// segmentConsentSettings lists the consent categories the tenant knows,
// as Segment's consent wrappers read them.
type segmentConsentSettings struct {
	AllCategories           []string `json:"allCategories"`
	HasUnmappedDestinations bool     `json:"hasUnmappedDestinations"`
}

// handleSegmentSettings answers analytics.js's settings fetch: every
// event to this node, under the path and scheme the request came with.
func handleSegmentSettings(log *slog.Logger, reg *tenants.Registry) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := sdkTenant(w, log, reg, r.PathValue("writeKey"))
		if t == nil {
			return
		}
		s := segmentSettings{
			Integrations: map[string]segmentIntegration{
				"Segment.io": {APIKey: r.PathValue("writeKey"), APIHost: r.Host + "/v1", Protocol: sdkScheme(r)},
			},
			Plan:                 map[string]any{},
			EdgeFunction:         map[string]any{},
			AnalyticsNextEnabled: true,
			MiddlewareSettings:   map[string]any{},
			EnabledMiddleware:    map[string]bool{},
			RemotePlugins:        []any{},
			ConsentSettings:      segmentConsentSettings{AllCategories: consentCategories(&t.Settings)},
		}
		w.Header().Set("Cache-Control", "max-age=60")
		writeJSON(w, http.StatusOK, s)
	})
}

// consentCategories returns the categories an SDK may name: the mapped
// ones of the consent_categories setting and the purposes, sorted, each
// once.
func consentCategories(s *custos.Settings) []string {
	var out []string
	for k := range s.ConsentCategories {
		out = append(out, k)
	}
	for _, p := range s.EffectivePurposes() {
		out = append(out, p.Name)
	}
	slices.SortFunc(out, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
	return slices.CompactFunc(out, strings.EqualFold)
}

// rudderSourceConfig is the control plane's answer that RudderStack's
// JavaScript SDK checks before it loads: a source with an id, a config
// object and a list of destinations.
type rudderSourceConfig struct {
	IsHosted bool         `json:"isHosted"`
	Source   rudderSource `json:"source"`
}

type rudderSource struct {
	ID           string            `json:"id"`
	Name         string            `json:"name"`
	WriteKey     string            `json:"writeKey"`
	WorkspaceID  string            `json:"workspaceId"`
	Enabled      bool              `json:"enabled"`
	Config       rudderSourceStats `json:"config"`
	Destinations []any             `json:"destinations"`
}

// rudderSourceStats switches the SDK's error and metrics reporting to
// RudderStack off.
type rudderSourceStats struct {
	StatsCollection struct {
		Errors  rudderEnabled `json:"errors"`
		Metrics rudderEnabled `json:"metrics"`
	} `json:"statsCollection"`
}

type rudderEnabled struct {
	Enabled bool `json:"enabled"`
}

// handleRudderSourceConfig answers the SDK's source-config fetch. The
// write key comes as the writeKey query parameter (and as HTTP Basic auth,
// which the SDK sends too).
func handleRudderSourceConfig(log *slog.Logger, reg *tenants.Registry) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.URL.Query().Get("writeKey")
		if key == "" {
			key, _, _ = r.BasicAuth()
		}
		t := sdkTenant(w, log, reg, key)
		if t == nil {
			return
		}
		cfg := rudderSourceConfig{Source: rudderSource{
			ID: t.ID.String(), Name: t.Name, WriteKey: key, WorkspaceID: t.ID.String(),
			Enabled: true, Destinations: []any{},
		}}
		w.Header().Set("Cache-Control", "max-age=60")
		writeJSON(w, http.StatusOK, cfg)
	})
}

// handleSDKConfigPreflight allows the settings fetches from any page; the
// RudderStack SDK sends HTTP Basic auth with its write key.
func handleSDKConfigPreflight(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "GET, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "authorization, content-type, anonymousid, sentat")
	h.Set("Access-Control-Max-Age", "86400")
	w.WriteHeader(http.StatusNoContent)
}
