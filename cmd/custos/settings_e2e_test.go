package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// patchSettings sends a settings patch for a tenant and wants a 200.
func (s *testServer) patchSettings(t *testing.T, secretKey string, patch any) map[string]any {
	t.Helper()
	r := s.do(t, "PATCH", "/api/v1/settings", mustJSON(t, patch), "Authorization", "Bearer "+secretKey)
	if r.status != http.StatusOK {
		t.Fatalf("PATCH /api/v1/settings %s: status %d, want 200; body %s", mustJSON(t, patch), r.status, r.body)
	}
	return decodeObject(t, "settings", r.body)
}

// TestSettings checks that a tenant sees its defaults, that a patch changes
// only the fields it names, that bad settings are refused with the field
// named, that the SMTP password is never shown nor stored in the clear,
// and that settings survive a restart and stay per tenant.
func TestSettings(t *testing.T) {
	t.Parallel()
	cfg := newServerConfig(t)
	srv := startServer(t, cfg)
	a := srv.createTenant(t, "settings-a")
	b := srv.createTenant(t, "settings-b")

	r := srv.do(t, "GET", "/api/v1/settings", nil, "Authorization", "Bearer "+a.SecretKey)
	got := decodeObject(t, "settings", r.body)
	if got["effective_event_retention_days"] != 395.0 || got["collection_requires_consent"] != false ||
		got["effective_allow_transfers_outside_region"] != false || got["region"] != "eu" {
		t.Errorf("default settings = %s; want retention 395, consent not required for collection, no transfers, region eu", r.body)
	}
	if ps, _ := got["purposes"].([]any); len(ps) != 3 {
		t.Errorf("default purposes = %v, want analytics, marketing, personalization", got["purposes"])
	}

	password := "smtp-pass-" + randomHex(8)
	srv.patchSettings(t, a.SecretKey, map[string]any{"event_retention_days": 30})
	got = srv.patchSettings(t, a.SecretKey, map[string]any{"controller_name": "Acme GmbH",
		"smtp": map[string]any{"host": "mail.example.com", "port": 587, "from": "news@example.com", "username": "u", "password": password, "region": "eu"}})
	if got["event_retention_days"] != 30.0 || got["controller_name"] != "Acme GmbH" || got["smtp_password_set"] != true {
		t.Errorf("after two patches = %v; want retention 30 kept, controller name set, password set", got)
	}
	if strings.Contains(string(mustJSON(t, got)), password) {
		t.Errorf("settings answer shows the SMTP password")
	}
	// A map setting is replaced whole, not merged key by key.
	srv.patchSettings(t, a.SecretKey, map[string]any{"consent_categories": map[string]string{"Ads": "marketing", "Stats": "analytics"}})
	got = srv.patchSettings(t, a.SecretKey, map[string]any{"consent_categories": map[string]string{"Ads": "marketing"}})
	if cc, _ := got["consent_categories"].(map[string]any); len(cc) != 1 || cc["Ads"] != "marketing" {
		t.Errorf("consent_categories after replacing it = %v, want only Ads", got["consent_categories"])
	}
	// A destination without a region is in the tenant's.
	got = srv.patchSettings(t, a.SecretKey, map[string]any{"security_contact_url": map[string]any{"url": "https://sec.example/hook"}})
	if sc, _ := got["security_contact_url"].(map[string]any); sc["region"] != "eu" {
		t.Errorf("security_contact_url without a region = %v, want the tenant's region eu", got["security_contact_url"])
	}
	// A later smtp patch without a password keeps the sealed one.
	got = srv.patchSettings(t, a.SecretKey, map[string]any{"smtp": map[string]any{"host": "mail2.example.com", "port": 587, "from": "news@example.com", "region": "eu"}})
	if got["smtp_password_set"] != true {
		t.Errorf("smtp patch without password: smtp_password_set = %v, want the old password kept", got["smtp_password_set"])
	}

	for _, c := range []struct {
		patch string
		want  string
	}{
		{`{"event_retention_days": -1}`, "event_retention_days"},
		{`{"purposes": [{"name": "ads", "legal_basis": "because"}]}`, "legal_basis"},
		{`{"consent_categories": {"Marketing": "nope"}}`, "nope"},
		{`{"retention": 3}`, "retention"},
		{`{"smtp": {"host": "h", "port": 0, "from": "a@b"}}`, "smtp.port"},
		{`[1]`, "JSON object"},
		{`{"security_contact_url": {"url": "https://sec.example/hook", "region": "us"}}`, "security_contact_url"},
		{`{"delivery_webhook": {"url": "https://hooks.example/custos", "region": "us"}}`, "transfers outside the region are forbidden"},
	} {
		r := srv.do(t, "PATCH", "/api/v1/settings", []byte(c.patch), "Authorization", "Bearer "+a.SecretKey)
		want := http.StatusBadRequest
		if strings.Contains(c.patch, `"us"`) {
			want = http.StatusForbidden // a transfer the tenant forbids
		}
		if r.status != want || !strings.Contains(r.errorMessage(), c.want) {
			t.Errorf("PATCH %s: status %d, message %q; want %d naming %q", c.patch, r.status, r.errorMessage(), want, c.want)
		}
	}

	r = srv.do(t, "GET", "/api/v1/settings", nil, "Authorization", "Bearer "+b.SecretKey)
	if got := decodeObject(t, "settings of B", r.body); got["controller_name"] != nil || got["effective_event_retention_days"] != 395.0 {
		t.Errorf("tenant B's settings changed with A's: %s", r.body)
	}
	if r := srv.do(t, "PATCH", "/api/v1/settings", []byte(`{}`), "Authorization", "Bearer "+a.WriteKey); r.status != http.StatusForbidden {
		t.Errorf("PATCH with a write key: status %d, want 403", r.status)
	}

	srv.stop(t)
	assertNotInDir(t, cfg.dir, password)
	srv = startServer(t, cfg)
	r = srv.do(t, "GET", "/api/v1/settings", nil, "Authorization", "Bearer "+a.SecretKey)
	var after struct {
		Retention int    `json:"event_retention_days"`
		Name      string `json:"controller_name"`
		SMTP      struct {
			Host string `json:"host"`
		} `json:"smtp"`
	}
	mustDecode(t, r.body, &after)
	if after.Retention != 30 || after.Name != "Acme GmbH" || after.SMTP.Host != "mail2.example.com" {
		t.Errorf("settings after restart = %s", r.body)
	}
}

// assertNotInDir fails if any file under dir contains s.
func assertNotInDir(t *testing.T, dir, s string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), s) {
			t.Errorf("%s holds %q in the clear", p, s)
		}
		return nil
	})
}
