package consent

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/custos-dev/custos"
)

// summary renders records as purpose/channel=granted, sorted.
func summary(recs []custos.ConsentRecord) []string {
	var out []string
	for _, r := range recs {
		out = append(out, fmt.Sprintf("%s/%s=%v", r.Purpose, r.Channel, r.Granted))
	}
	slices.Sort(out)
	return out
}

func TestFromMessage(t *testing.T) {
	pol := NewPolicy(&custos.Settings{ConsentCategories: map[string]string{
		"Advertising": "marketing", "C0004": "marketing", "c0002": "analytics",
	}})
	tests := []struct {
		name     string
		typ      custos.MessageType
		context  string
		traits   string
		want     []string
		unmapped int
	}{
		{"nothing", custos.Track, `{"ip":"192.0.2.1","library":{"name":"analytics.js"}}`, "", nil, 0},
		{
			// As Segment's consent wrapper (analytics-next) stamps it.
			"segment categoryPreferences", custos.Track,
			`{"consent":{"categoryPreferences":{"Analytics":true,"Advertising":false,"Functional":true}},"ip":"192.0.2.1","userAgent":"UA"}`, "",
			[]string{"analytics/=true", "marketing/=false"}, 1,
		},
		{
			"two categories on one purpose: a denial wins", custos.Track,
			`{"consent":{"categoryPreferences":{"Marketing":true,"Advertising":false}}}`, "",
			[]string{"marketing/=false"}, 0,
		},
		{
			"category names are case-insensitive", custos.Page,
			`{"consent":{"categoryPreferences":{"MARKETING":true,"analytics":true,"PersonaliZation":false}}}`, "",
			[]string{"analytics/=true", "marketing/=true", "personalization/=false"}, 0,
		},
		{
			// As rudder-sdk-js v3 stamps it (OneTrust provider).
			"rudderstack consentManagement", custos.Track,
			`{"consentManagement":{"provider":"oneTrust","resolutionStrategy":"and","allowedConsentIds":["C0001","C0002"],"deniedConsentIds":["C0004"]}}`, "",
			[]string{"analytics/=true", "marketing/=false"}, 1,
		},
		{
			"rudderstack older object form", custos.Track,
			`{"consentManagement":{"allowedConsentIds":{"C0002":"Performance Cookies","C0004":"Targeting Cookies"},"deniedConsentIds":[]}}`, "",
			[]string{"analytics/=true", "marketing/=true"}, 0,
		},
		{
			"MSG traits on identify", custos.Identify, `{}`,
			`{"MSG-email":true,"MSG-push":"false","MSG-sms":false,"MSG-whatsapp":true,"MSG-dndPhone":true,"name":"Ann"}`,
			[]string{"marketing/email=true", "marketing/push=false", "marketing/sms=false", "marketing/whatsapp=true"}, 0,
		},
		{"MSG traits not boolean are ignored", custos.Identify, "", `{"MSG-email":"yes","MSG-sms":1}`, nil, 0},
		{"MSG traits only count on identify", custos.Track, "", `{"MSG-email":true}`, nil, 0},
		{"consent of an odd shape is ignored", custos.Track, `{"consent":"yes","consentManagement":[1]}`, "", nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &custos.Message{Type: tc.typ, MessageID: "m-1", UserID: "u", Context: []byte(tc.context), Traits: []byte(tc.traits),
				Timestamp: t0, ReceivedAt: t0.Add(time.Second)}
			recs, unmapped := pol.FromMessage(m)
			if got := summary(recs); !slices.Equal(got, tc.want) {
				t.Errorf("records = %v, want %v", got, tc.want)
			}
			if unmapped != tc.unmapped {
				t.Errorf("unmapped = %d, want %d", unmapped, tc.unmapped)
			}
			for _, r := range recs {
				if r.Source != custos.SourceSDK || !r.Time.Equal(t0) || !strings.Contains(string(r.Proof), `"m-1"`) {
					t.Errorf("record %+v: want source sdk, time %v, proof naming the message", r, t0)
				}
			}
		})
	}
}

func TestFromMessageProvenance(t *testing.T) {
	pol := NewPolicy(&custos.Settings{})
	m := &custos.Message{Type: custos.Track, MessageID: "m",
		Context:   []byte(`{"consent":{"categoryPreferences":{"marketing":true}},"ip":"2001:db8:aaaa:bbbb::1","userAgent":"Mozilla/5.0 (X11)"}`),
		Timestamp: t0.Add(time.Hour), ReceivedAt: t0}
	recs, _ := pol.FromMessage(m)
	if len(recs) != 1 {
		t.Fatalf("records = %+v, want 1", recs)
	}
	r := recs[0]
	if r.IP != "2001:db8:aaaa::" || r.UserAgent != "Mozilla/5.0 (X11)" {
		t.Errorf("IP %q, user agent %q; want the /48 and the context's user agent", r.IP, r.UserAgent)
	}
	if !r.Time.Equal(t0) {
		t.Errorf("a message dated ahead of its receipt: record dated %v, want the receipt %v", r.Time, t0)
	}
}

func TestPolicyWithoutMarketingIgnoresMSGTraits(t *testing.T) {
	pol := NewPolicy(&custos.Settings{Purposes: []custos.Purpose{{Name: "analytics", LegalBasis: "consent"}}})
	recs, unmapped := pol.FromMessage(&custos.Message{Type: custos.Identify, Traits: []byte(`{"MSG-email":true}`)})
	if len(recs) != 0 || unmapped != 1 {
		t.Errorf("records %v, unmapped %d; want none and 1", summary(recs), unmapped)
	}
}
