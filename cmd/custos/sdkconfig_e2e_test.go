package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// TestSDKSettingsEndpoints checks what Custos answers the browser SDKs'
// settings fetches: Segment's /v1/projects/{writeKey}/settings names this
// node (as the request reached it) as the only destination, with the SDK's
// own metrics off and the tenant's consent categories; RudderStack's
// /sourceConfig/ is a valid enabled source without destinations or
// reporting. Both allow any origin, and an unknown or missing write key is
// a 401 naming what is wrong, never another tenant's settings.
func TestSDKSettingsEndpoints(t *testing.T) {
	t.Parallel()
	srv := startServer(t, newServerConfig(t))
	tn := srv.createTenant(t, "sdk-settings")
	srv.patchSettings(t, tn.SecretKey, map[string]any{"consent_categories": map[string]string{"C0004": "marketing"}})
	host := strings.TrimPrefix(srv.URL, "http://")
	const origin = "https://shop.example"

	t.Run("segment", func(t *testing.T) {
		r := srv.do(t, "GET", "/v1/projects/"+tn.WriteKey+"/settings", nil, "Origin", origin)
		if r.status != http.StatusOK || r.header.Get("Access-Control-Allow-Origin") != origin {
			t.Fatalf("status %d, Access-Control-Allow-Origin %q; want 200 and %q; body %s", r.status, r.header.Get("Access-Control-Allow-Origin"), origin, r.body)
		}
		var s struct {
			Integrations map[string]struct {
				APIKey   string `json:"apiKey"`
				APIHost  string `json:"apiHost"`
				Protocol string `json:"protocol"`
			} `json:"integrations"`
			Metrics struct {
				SampleRate *float64 `json:"sampleRate"`
			} `json:"metrics"`
			RemotePlugins     []any           `json:"remotePlugins"`
			EnabledMiddleware map[string]bool `json:"enabledMiddleware"`
			ConsentSettings   struct {
				AllCategories []string `json:"allCategories"`
			} `json:"consentSettings"`
		}
		if err := json.Unmarshal(r.body, &s); err != nil {
			t.Fatalf("decode %s: %v", r.body, err)
		}
		if len(s.Integrations) != 1 {
			t.Errorf("integrations %v, want only Segment.io: no device-mode destination loads code from elsewhere", s.Integrations)
		}
		seg := s.Integrations["Segment.io"]
		if seg.APIKey != tn.WriteKey || seg.APIHost != host+"/v1" || seg.Protocol != "http" {
			t.Errorf("Segment.io = %+v, want apiKey %s, apiHost %s/v1, protocol http", seg, tn.WriteKey, host)
		}
		if s.Metrics.SampleRate == nil || *s.Metrics.SampleRate != 0 {
			t.Errorf("metrics.sampleRate = %v, want 0 (analytics.js sends no metrics to Segment)", s.Metrics.SampleRate)
		}
		if s.RemotePlugins == nil || len(s.RemotePlugins) != 0 || len(s.EnabledMiddleware) != 0 {
			t.Errorf("remotePlugins %v, enabledMiddleware %v; want both empty", s.RemotePlugins, s.EnabledMiddleware)
		}
		if want := []string{"analytics", "C0004", "marketing", "personalization"}; !slices.Equal(s.ConsentSettings.AllCategories, want) {
			t.Errorf("consentSettings.allCategories = %q, want %q", s.ConsentSettings.AllCategories, want)
		}
		pre := srv.do(t, "OPTIONS", "/v1/projects/"+tn.WriteKey+"/settings", nil, "Origin", origin, "Access-Control-Request-Method", "GET")
		if pre.status != http.StatusNoContent || pre.header.Get("Access-Control-Allow-Origin") != origin {
			t.Errorf("preflight: %d, Access-Control-Allow-Origin %q; want 204, %q", pre.status, pre.header.Get("Access-Control-Allow-Origin"), origin)
		}
	})

	t.Run("rudderstack", func(t *testing.T) {
		for _, r := range []response{
			srv.do(t, "GET", "/sourceConfig/?"+url.Values{"writeKey": {tn.WriteKey}, "p": {"npm"}}.Encode(), nil, "Origin", origin),
			srv.do(t, "GET", "/sourceConfig", nil, "Origin", origin, "Authorization", basicAuth(tn.WriteKey)),
		} {
			if r.status != http.StatusOK || r.header.Get("Access-Control-Allow-Origin") != origin {
				t.Fatalf("status %d, Access-Control-Allow-Origin %q; want 200, %q; body %s", r.status, r.header.Get("Access-Control-Allow-Origin"), origin, r.body)
			}
			var c struct {
				Source struct {
					ID           string `json:"id"`
					WriteKey     string `json:"writeKey"`
					Enabled      bool   `json:"enabled"`
					Destinations []any  `json:"destinations"`
					Config       struct {
						StatsCollection struct {
							Errors, Metrics struct {
								Enabled *bool `json:"enabled"`
							}
						} `json:"statsCollection"`
					} `json:"config"`
				} `json:"source"`
			}
			if err := json.Unmarshal(r.body, &c); err != nil {
				t.Fatalf("decode %s: %v", r.body, err)
			}
			s := c.Source
			if s.ID != tn.ID || s.WriteKey != tn.WriteKey || !s.Enabled || s.Destinations == nil || len(s.Destinations) != 0 {
				t.Errorf("source = %s, want id %s, the write key, enabled, no destinations", r.body, tn.ID)
			}
			st := s.Config.StatsCollection
			if st.Errors.Enabled == nil || *st.Errors.Enabled || st.Metrics.Enabled == nil || *st.Metrics.Enabled {
				t.Errorf("statsCollection in %s: want errors and metrics reporting off", r.body)
			}
		}
	})

	t.Run("bad keys", func(t *testing.T) {
		other := srv.createTenant(t, "sdk-settings-other")
		for _, c := range []struct {
			path, auth, want string
		}{
			{"/v1/projects/wk_unknown/settings", "", "unknown write key"},
			{"/v1/projects/" + tn.SecretKey + "/settings", "", "unknown write key"},
			{"/sourceConfig/?writeKey=wk_unknown", "", "unknown write key"},
			{"/sourceConfig/", "", "missing write key"},
			{"/sourceConfig/?writeKey=wk_unknown", basicAuth(other.WriteKey), "unknown write key"},
		} {
			h := []string{"Origin", origin}
			if c.auth != "" {
				h = append(h, "Authorization", c.auth)
			}
			r := srv.do(t, "GET", c.path, nil, h...)
			if r.status != http.StatusUnauthorized || !strings.Contains(r.errorMessage(), c.want) {
				t.Errorf("GET %s: %d %s, want 401 naming %q", c.path, r.status, r.body, c.want)
			}
			if strings.Contains(string(r.body), other.ID) || strings.Contains(string(r.body), tn.ID) {
				t.Errorf("GET %s: the answer names a tenant: %s", c.path, r.body)
			}
		}
	})
}
