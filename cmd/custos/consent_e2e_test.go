package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	rudder "github.com/rudderlabs/analytics-go/v4"
	segment "github.com/segmentio/analytics-go/v3"
)

// consentRecord is a ledger record as the API shows it.
type consentRecord struct {
	SubjectID     string          `json:"subject_id"`
	Purpose       string          `json:"purpose"`
	Channel       string          `json:"channel"`
	Granted       bool            `json:"granted"`
	Time          time.Time       `json:"time"`
	Source        string          `json:"source"`
	NoticeVersion string          `json:"notice_version"`
	IP            string          `json:"ip"`
	UserAgent     string          `json:"user_agent"`
	Proof         json.RawMessage `json:"proof"`
}

// consents is GET /api/v1/profiles/{id}/consents.
type consents struct {
	SubjectID string `json:"subject_id"`
	State     []struct {
		Purpose   string         `json:"purpose"`
		Channel   string         `json:"channel"`
		Status    string         `json:"status"`
		DecidedBy *consentRecord `json:"decided_by"`
	} `json:"state"`
	History []consentRecord `json:"history"`
}

// status returns the state's status for purpose and channel.
func (c consents) status(purpose, channel string) string {
	for _, s := range c.State {
		if s.Purpose == purpose && s.Channel == channel {
			return s.Status
		}
	}
	return "missing"
}

func (s *testServer) postConsent(t *testing.T, secretKey string, body any) consentRecord {
	t.Helper()
	r := s.do(t, "POST", "/api/v1/consents", mustJSON(t, body), "Authorization", "Bearer "+secretKey)
	if r.status != http.StatusCreated {
		t.Fatalf("POST /api/v1/consents %s: status %d, want 201; body %s", mustJSON(t, body), r.status, r.body)
	}
	var rec consentRecord
	if err := json.Unmarshal(r.body, &rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

func (s *testServer) consents(t *testing.T, secretKey, subject string) consents {
	t.Helper()
	r := s.do(t, "GET", "/api/v1/profiles/"+subject+"/consents", nil, "Authorization", "Bearer "+secretKey)
	if r.status != http.StatusOK {
		t.Fatalf("GET consents of %s: status %d, want 200; body %s", subject, r.status, r.body)
	}
	var c consents
	if err := json.Unmarshal(r.body, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestConsentAPI records grants and withdrawals through the API, reads
// the state back with its precedence, refuses bad input naming the field,
// audits pseudonymously and keeps tenants apart.
func TestConsentAPI(t *testing.T) {
	t.Parallel()
	cfg := newServerConfig(t)
	srv := startServer(t, cfg)
	a := srv.createTenant(t, "consent-a")
	email := "Consent-" + randomHex(4) + "@Example.com"
	ua := "ua-canary-" + randomHex(6)
	identity := map[string]string{"type": "email", "value": email}

	rec := srv.postConsent(t, a.SecretKey, map[string]any{
		"identity": identity, "purpose": "marketing", "channel": "email", "granted": true,
		"notice_version": "privacy-v7", "ip": "198.51.100.23", "user_agent": ua, "proof": map[string]string{"form": "signup"},
	})
	if rec.SubjectID == "" || rec.IP != "198.51.100.0" || rec.Source != "api" || rec.NoticeVersion != "privacy-v7" || rec.UserAgent != ua {
		t.Errorf("recorded %+v; want a subject, IP truncated to /24, source api, the notice and user agent", rec)
	}
	// The subject was created for an e-mail never seen in an event.
	if p := srv.findProfile(t, a.SecretKey, "email", email); p.SubjectID != rec.SubjectID {
		t.Errorf("profile by e-mail = %s, want %s", p.SubjectID, rec.SubjectID)
	}
	c := srv.consents(t, a.SecretKey, rec.SubjectID)
	for _, w := range []struct{ purpose, channel, want string }{
		{"marketing", "email", "granted"}, {"marketing", "push", "none"}, {"analytics", "email", "none"}, {"personalization", "sms", "none"},
	} {
		if got := c.status(w.purpose, w.channel); got != w.want {
			t.Errorf("state %s/%s = %q, want %q", w.purpose, w.channel, got, w.want)
		}
	}
	if len(c.History) != 1 {
		t.Errorf("history = %d records, want 1", len(c.History))
	}

	// A withdrawal from every channel, then a grant on push alone.
	srv.postConsent(t, a.SecretKey, map[string]any{"identity": identity, "purpose": "marketing", "granted": false})
	srv.postConsent(t, a.SecretKey, map[string]any{"identity": identity, "purpose": "marketing", "channel": "push", "granted": true})
	c = srv.consents(t, a.SecretKey, rec.SubjectID)
	for _, w := range []struct{ channel, want string }{{"email", "withdrawn"}, {"sms", "withdrawn"}, {"push", "granted"}} {
		if got := c.status("marketing", w.channel); got != w.want {
			t.Errorf("after withdrawing all and granting push: marketing/%s = %q, want %q", w.channel, got, w.want)
		}
	}
	if len(c.History) != 3 || c.History[1].Channel != "" || c.History[1].Granted {
		t.Errorf("history = %+v, want 3 records, the second a withdrawal from every channel", c.History)
	}

	for _, bad := range []struct {
		body any
		name string
	}{
		{map[string]any{"identity": identity, "purpose": "ads", "granted": true}, `"ads"`},
		{map[string]any{"identity": identity, "purpose": "marketing", "channel": "fax", "granted": true}, `"fax"`},
		{map[string]any{"identity": identity, "purpose": "marketing"}, "granted"},
		{map[string]any{"identity": map[string]string{"type": "phone", "value": "1"}, "purpose": "marketing", "granted": true}, "identity.type"},
		{map[string]any{"purpose": "marketing", "granted": true}, "identity"},
		{map[string]any{"identity": identity, "purpose": "marketing", "granted": true, "source": "sdk"}, "sdk"},
		{map[string]any{"identity": identity, "purpose": "marketing", "granted": true, "ip": "nope"}, "ip"},
		{map[string]any{"identity": identity, "purpose": "marketing", "granted": true, "time": "2020-01-01T00:00:00Z"}, "import"},
		{map[string]any{"identity": identity, "purpose": "marketing", "granted": true, "colour": "red"}, "colour"},
	} {
		r := srv.do(t, "POST", "/api/v1/consents", mustJSON(t, bad.body), "Authorization", "Bearer "+a.SecretKey)
		if r.status != 400 || !strings.Contains(r.errorMessage(), bad.name) {
			t.Errorf("POST %s: %d %s; want 400 naming %s", mustJSON(t, bad.body), r.status, r.body, bad.name)
		}
	}
	// An import keeps its own date.
	old := srv.postConsent(t, a.SecretKey, map[string]any{"identity": identity, "purpose": "analytics", "granted": true, "source": "import", "time": "2024-02-03T04:05:06Z"})
	if !old.Time.Equal(time.Date(2024, 2, 3, 4, 5, 6, 0, time.UTC)) {
		t.Errorf("imported record dated %v, want 2024-02-03T04:05:06Z", old.Time)
	}

	// Tenant isolation: B's key neither reads A's subject nor touches it.
	b := srv.createTenant(t, "consent-b")
	if r := srv.do(t, "GET", "/api/v1/profiles/"+rec.SubjectID+"/consents", nil, "Authorization", "Bearer "+b.SecretKey); r.status != 404 || strings.Contains(string(r.body), ua) {
		t.Errorf("tenant B reads A's consents: %d %s, want 404", r.status, r.body)
	}
	recB := srv.postConsent(t, b.SecretKey, map[string]any{"identity": identity, "purpose": "marketing", "channel": "sms", "granted": true})
	if recB.SubjectID == rec.SubjectID {
		t.Error("tenant B's record landed on tenant A's subject")
	}
	if got := srv.consents(t, a.SecretKey, rec.SubjectID); len(got.History) != 4 || got.status("marketing", "sms") != "withdrawn" {
		t.Errorf("A's ledger after B recorded for the same e-mail: %d records, marketing/sms %q; want 4, withdrawn", len(got.History), got.status("marketing", "sms"))
	}
	if r := srv.do(t, "GET", "/api/v1/profiles/"+rec.SubjectID+"/consents", nil, "Authorization", "Bearer "+a.WriteKey); r.status != 403 {
		t.Errorf("a write key reads consents: %d, want 403", r.status)
	}

	// The audit has one pseudonymous entry per API grant or withdrawal.
	r := srv.do(t, "GET", "/api/v1/audit?limit=100", nil, "Authorization", "Bearer "+a.SecretKey)
	if n := strings.Count(string(r.body), `"consent.grant"`) + strings.Count(string(r.body), `"consent.withdraw"`); n != 4 {
		t.Errorf("audit holds %d consent entries, want 4: %s", n, r.body)
	}
	for _, leak := range []string{ua, strings.ToLower(email), "198.51.100"} {
		if strings.Contains(string(r.body), leak) {
			t.Errorf("the audit holds %q", leak)
		}
	}
	assertNotInDir(t, cfg.dir, ua)
}

// TestConsentFromSDKs sends consent the way the real Segment and
// RudderStack Go clients carry it, and MSG-* traits, and checks the ledger
// records each produces: mapped through consent_categories, changes only.
func TestConsentFromSDKs(t *testing.T) {
	t.Parallel()
	srv := startServer(t, newServerConfig(t))
	tn := srv.createTenant(t, "consent-sdk")
	srv.patchSettings(t, tn.SecretKey, map[string]any{"consent_categories": map[string]string{
		"Advertising": "marketing", "C0004": "marketing", "C0002": "analytics",
	}})

	t.Run("segment categoryPreferences", func(t *testing.T) {
		user := "seg-" + randomHex(5)
		ua := "SegmentUA-" + randomHex(4)
		prefs := func(marketing bool) map[string]any {
			return map[string]any{"consent": map[string]any{"categoryPreferences": map[string]any{
				"Analytics": true, "Marketing": marketing, "Advertising": marketing, "Functional": true,
			}}}
		}
		var msgs []segment.Message
		for i, marketing := range []bool{false, false, false, true} {
			msgs = append(msgs, segment.Track{MessageId: fmt.Sprintf("%s-%d", user, i), UserId: user, Event: "Viewed",
				Context: &segment.Context{UserAgent: ua, Extra: prefs(marketing)}})
		}
		sendSegment(t, srv, tn.WriteKey, msgs)
		p := srv.findProfile(t, tn.SecretKey, "user_id", user)
		c := srv.consents(t, tn.SecretKey, p.SubjectID)
		// analytics granted once, marketing withdrawn once then granted: the
		// repeats in between are not records.
		var got []string
		for _, r := range c.History {
			got = append(got, fmt.Sprintf("%s/%q=%v", r.Purpose, r.Channel, r.Granted))
			if r.Source != "sdk" || r.UserAgent != ua {
				t.Errorf("record %+v: want source sdk and the context's user agent", r)
			}
		}
		slices.Sort(got)
		want := []string{`analytics/""=true`, `marketing/""=false`, `marketing/""=true`}
		if !slices.Equal(got, want) {
			t.Errorf("ledger = %v, want %v", got, want)
		}
		if s := c.status("marketing", "email"); s != "granted" {
			t.Errorf("marketing/email = %q, want granted (the last event said Marketing: true)", s)
		}
	})

	t.Run("rudderstack consentManagement", func(t *testing.T) {
		user := "rs-" + randomHex(5)
		cm := func(allowed, denied []string) *rudder.Context {
			return &rudder.Context{Extra: map[string]any{"consentManagement": map[string]any{
				"provider": "oneTrust", "resolutionStrategy": "and", "allowedConsentIds": allowed, "deniedConsentIds": denied,
			}}}
		}
		sendRudder(t, srv, tn.WriteKey, []rudder.Message{
			rudder.Track{MessageId: user + "-1", UserId: user, Event: "Viewed", Context: cm([]string{"C0001", "C0002"}, []string{"C0004"})},
			rudder.Track{MessageId: user + "-2", UserId: user, Event: "Viewed", Context: cm([]string{"C0002", "C0004"}, nil)},
		})
		p := srv.findProfile(t, tn.SecretKey, "user_id", user)
		c := srv.consents(t, tn.SecretKey, p.SubjectID)
		if len(c.History) != 3 {
			t.Fatalf("ledger = %+v, want 3 records (analytics granted; marketing denied, then allowed)", c.History)
		}
		if c.status("analytics", "push") != "granted" || c.status("marketing", "email") != "granted" {
			t.Errorf("state: analytics %q, marketing %q; want both granted", c.status("analytics", "push"), c.status("marketing", "email"))
		}
		if !strings.Contains(string(c.History[0].Proof), "consentManagement") {
			t.Errorf("proof %s does not say where the consent came from", c.History[0].Proof)
		}
	})

	t.Run("MSG traits", func(t *testing.T) {
		user := "msg-" + randomHex(5)
		sendSegment(t, srv, tn.WriteKey, []segment.Message{
			segment.Identify{MessageId: user + "-1", UserId: user, Traits: segment.Traits{"MSG-email": true, "MSG-sms": false, "MSG-whatsapp": true, "MSG-push": "true", "name": "Ann"}},
			segment.Identify{MessageId: user + "-2", UserId: user, Traits: segment.Traits{"MSG-email": false}},
		})
		p := srv.findProfile(t, tn.SecretKey, "user_id", user)
		c := srv.consents(t, tn.SecretKey, p.SubjectID)
		for _, w := range []struct{ channel, want string }{
			{"email", "withdrawn"}, {"sms", "withdrawn"}, {"whatsapp", "granted"}, {"push", "granted"}, {"in_app", "none"},
		} {
			if got := c.status("marketing", w.channel); got != w.want {
				t.Errorf("marketing/%s = %q, want %q", w.channel, got, w.want)
			}
		}
		if len(c.History) != 5 {
			t.Errorf("ledger = %d records, want 5 (4 flags, then the e-mail withdrawal)", len(c.History))
		}
	})

	// Categories that map to no purpose are counted, not recorded.
	m := srv.do(t, "GET", "/metrics", nil, "Authorization", "Bearer "+srv.cfg.token)
	if !strings.Contains(string(m.body), "custos_consent_categories_unmapped_total") || strings.Contains(string(m.body), "custos_consent_categories_unmapped_total 0\n") {
		t.Errorf("metrics do not count unmapped categories (Functional, C0001)")
	}
}

// TestCollectionRequiresConsent turns the setting on: events of subjects
// without an analytics grant are dropped and nothing is created for them;
// a grant in the same message counts.
func TestCollectionRequiresConsent(t *testing.T) {
	t.Parallel()
	srv := startServer(t, newServerConfig(t))
	tn := srv.createTenant(t, "consent-first")
	srv.patchSettings(t, tn.SecretKey, map[string]any{"collection_requires_consent": true})
	user := "cr-" + randomHex(5)
	track := func(id string, ctx map[string]any) map[string]any {
		m := map[string]any{"type": "track", "messageId": id, "userId": user, "event": "Viewed", "timestamp": time.Now().UTC().Format(time.RFC3339Nano)}
		if ctx != nil {
			m["context"] = ctx
		}
		return m
	}
	grant := func(analytics bool) map[string]any {
		return map[string]any{"consent": map[string]any{"categoryPreferences": map[string]any{"Analytics": analytics}}}
	}
	if res := srv.ingest(t, tn.WriteKey, "/v1/batch", batchBody(t, "", []map[string]any{track(user+"-1", nil)})); res.Accepted != 0 {
		t.Errorf("event without consent: accepted %d, want 0", res.Accepted)
	}
	if r := srv.lookup(t, tn.SecretKey, "user_id", user); r.status != 404 {
		t.Errorf("a subject was created for a person who consented to nothing: %d %s", r.status, r.body)
	}
	// A withdrawal alone creates nothing either.
	if res := srv.ingest(t, tn.WriteKey, "/v1/batch", batchBody(t, "", []map[string]any{track(user+"-2", grant(false))})); res.Accepted != 0 {
		t.Errorf("event withdrawing analytics: accepted %d, want 0", res.Accepted)
	}
	// The grant and the event in one message: stored.
	if res := srv.ingest(t, tn.WriteKey, "/v1/batch", batchBody(t, "", []map[string]any{track(user+"-3", grant(true)), track(user+"-4", nil)})); res.Accepted != 2 {
		t.Errorf("event granting analytics and the next: accepted %d, want 2", res.Accepted)
	}
	p := srv.findProfile(t, tn.SecretKey, "user_id", user)
	// A withdrawal through the API stops collection at once.
	srv.postConsent(t, tn.SecretKey, map[string]any{"identity": map[string]string{"type": "user_id", "value": user}, "purpose": "analytics", "granted": false})
	if res := srv.ingest(t, tn.WriteKey, "/v1/batch", batchBody(t, "", []map[string]any{track(user+"-5", nil)})); res.Accepted != 0 {
		t.Errorf("event after the withdrawal: accepted %d, want 0", res.Accepted)
	}
	if evs := srv.events(t, tn.SecretKey, p.SubjectID, 100); len(evs) != 2 {
		t.Errorf("subject has %d events, want 2", len(evs))
	}
	m := srv.do(t, "GET", "/metrics", nil, "Authorization", "Bearer "+srv.cfg.token)
	if !strings.Contains(string(m.body), `custos_messages_dropped_total{reason="no_consent"} 3`) {
		t.Errorf("metrics do not count 3 events dropped for no consent")
	}
	// The setting needs an analytics purpose to grant.
	r := srv.do(t, "PATCH", "/api/v1/settings", mustJSON(t, map[string]any{"purposes": []map[string]string{{"name": "marketing", "description": "m", "legal_basis": "consent"}}}), "Authorization", "Bearer "+tn.SecretKey)
	if r.status != 400 || !strings.Contains(r.errorMessage(), "analytics") {
		t.Errorf("dropping the analytics purpose while collection requires consent: %d %s, want 400 naming analytics", r.status, r.body)
	}
}

// TestConsentInAccessAndErasure checks that an access export holds the
// ledger and its current state, and that erasure removes the ledger while
// the audit keeps only pseudonymous entries.
func TestConsentInAccessAndErasure(t *testing.T) {
	t.Parallel()
	cfg := newServerConfig(t)
	srv := startServer(t, cfg)
	tn := srv.createTenant(t, "consent-rights")
	user := "cx-" + randomHex(5)
	canary := "proof-canary-" + randomHex(6)
	identity := map[string]string{"type": "user_id", "value": user}
	srv.ingest(t, tn.WriteKey, "/v1/batch", batchBody(t, "", trackMessages(user, "cx-"+randomHex(4), 2)))
	rec := srv.postConsent(t, tn.SecretKey, map[string]any{"identity": identity, "purpose": "marketing", "channel": "email", "granted": true, "user_agent": canary, "proof": map[string]string{"ref": canary}})

	post := func(body any) map[string]any {
		t.Helper()
		r := srv.do(t, "POST", "/api/v1/requests", mustJSON(t, body), "Authorization", "Bearer "+tn.SecretKey)
		if r.status != 201 {
			t.Fatalf("POST /api/v1/requests: %d %s", r.status, r.body)
		}
		return decodeObject(t, "request", r.body)
	}
	acc := post(map[string]any{"type": "access", "identity": identity})
	res := srv.do(t, "GET", "/api/v1/requests/"+acc["id"].(string)+"/result", nil, "Authorization", "Bearer "+tn.SecretKey)
	var export struct {
		Consents     []consentRecord `json:"consents"`
		ConsentState []struct {
			Purpose, Channel string
			Granted          bool
		} `json:"consent_state"`
	}
	if err := json.Unmarshal(res.body, &export); err != nil || res.status != 200 {
		t.Fatalf("access result: %d %v", res.status, err)
	}
	if len(export.Consents) != 1 || export.Consents[0].UserAgent != canary || len(export.ConsentState) != 1 || !export.ConsentState[0].Granted || export.ConsentState[0].Channel != "email" {
		t.Errorf("export consents %+v, state %+v; want the one grant on e-mail", export.Consents, export.ConsentState)
	}

	er := post(map[string]any{"type": "erasure", "identity": identity})
	if er["status"] != "completed" {
		t.Fatalf("erasure: %v", er)
	}
	if erasure, _ := er["erasure"].(map[string]any); erasure == nil {
		t.Errorf("erasure answered %v, want its progress with records_deleted", er)
	} else {
		if n, _ := erasure["records_deleted"].(map[string]any)["consent_records"].(float64); n != 1 {
			t.Errorf("erasure records_deleted = %v, want consent_records 1", erasure["records_deleted"])
		}
	}
	if r := srv.do(t, "GET", "/api/v1/profiles/"+rec.SubjectID+"/consents", nil, "Authorization", "Bearer "+tn.SecretKey); r.status != 404 {
		t.Errorf("consents after erasure: %d %s, want 404", r.status, r.body)
	}
	a := srv.do(t, "GET", "/api/v1/audit?limit=100", nil, "Authorization", "Bearer "+tn.SecretKey)
	if !strings.Contains(string(a.body), `"consent.grant"`) || strings.Contains(string(a.body), canary) {
		t.Errorf("after erasure the audit must keep the pseudonymous grant and no canary: %s", a.body)
	}
	srv.stop(t)
	assertNotInDir(t, cfg.dir, canary)
}

// sendSegment sends msgs with the Segment Go client in one batch, so that
// they arrive in order (separate batches go out concurrently).
func sendSegment(t *testing.T, srv *testServer, writeKey string, msgs []segment.Message) {
	t.Helper()
	d, logs := &delivery{}, &clientLog{}
	c, err := segment.NewWithConfig(writeKey, segment.Config{Endpoint: srv.URL, BatchSize: 100, Interval: time.Minute, Logger: logs, Callback: segmentCallback{d}})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if err := c.Enqueue(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	checkDelivered(t, "segment", d, len(msgs), logs)
}

// sendRudder sends msgs with the RudderStack Go client in one batch.
func sendRudder(t *testing.T, srv *testServer, writeKey string, msgs []rudder.Message) {
	t.Helper()
	d, logs := &delivery{}, &clientLog{}
	c, err := rudder.NewWithConfig(writeKey, rudder.Config{DataPlaneUrl: srv.URL, NoProxySupport: true, BatchSize: 100, Interval: time.Minute, Logger: logs, Callback: rudderCallback{d}})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if err := c.Enqueue(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	checkDelivered(t, "rudderstack", d, len(msgs), logs)
}
