package consent

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/custos-dev/custos"
)

// Analytics is the purpose whose grant Settings.CollectionRequiresConsent
// asks for before a subject's events are stored.
const Analytics = "analytics"

// Marketing is the purpose the MSG-* profile flags speak for.
const Marketing = "marketing"

// Policy is what a tenant's settings say about the consent carried by
// ingested messages. Build it with NewPolicy; it is safe for concurrent use.
type Policy struct {
	// categories maps lowercased SDK category names to purposes.
	categories map[string]string
	marketing  bool
	// RequireAnalytics drops the events of subjects without a current
	// analytics grant (Settings.CollectionRequiresConsent).
	RequireAnalytics bool
}

// NewPolicy returns the policy of a tenant's settings.
func NewPolicy(s *custos.Settings) *Policy {
	p := &Policy{categories: map[string]string{}, RequireAnalytics: s.CollectionRequiresConsent}
	for _, pp := range s.EffectivePurposes() {
		p.categories[strings.ToLower(pp.Name)] = pp.Name
		if pp.Name == Marketing {
			p.marketing = true
		}
	}
	// Explicit mappings win over a purpose's own name.
	for k, v := range s.ConsentCategories {
		if _, ok := s.Purpose(v); ok {
			p.categories[strings.ToLower(k)] = v
		}
	}
	return p
}

// Purpose returns the purpose an SDK consent category maps to, compared
// case-insensitively.
func (p *Policy) Purpose(category string) (string, bool) {
	v, ok := p.categories[strings.ToLower(strings.TrimSpace(category))]
	return v, ok
}

// sdkContext is the part of a message's context that carries consent.
type sdkContext struct {
	Consent *struct {
		CategoryPreferences map[string]json.RawMessage `json:"categoryPreferences"`
	} `json:"consent"`
	ConsentManagement *struct {
		Allowed json.RawMessage `json:"allowedConsentIds"`
		Denied  json.RawMessage `json:"deniedConsentIds"`
	} `json:"consentManagement"`
	IP        string `json:"ip"`
	UserAgent string `json:"userAgent"`
}

// msgChannels maps CleverTap-style profile flags to channels. WhatsApp is
// a channel of its own: an SMS opt-in does not cover it, nor the reverse.
var msgChannels = []struct{ trait, channel string }{
	{"MSG-email", custos.ChannelEmail},
	{"MSG-push", custos.ChannelPush},
	{"MSG-sms", custos.ChannelSMS},
	{"MSG-whatsapp", custos.ChannelWhatsApp},
}

// FromMessage returns the consent records a message carries, without
// subject or sequence number, and how many SDK categories it named that
// map to no purpose (they are ignored):
//
//   - Segment's context.consent.categoryPreferences {"Marketing": true, ...}
//     and RudderStack's context.consentManagement allowedConsentIds /
//     deniedConsentIds give one record per purpose, for every channel. When
//     several categories map to one purpose, a denial of any wins.
//   - Identify traits MSG-email, MSG-push, MSG-sms and MSG-whatsapp
//     (true/false, or "true"/"false") grant or withdraw marketing on that
//     channel.
//
// Records are dated at the message's timestamp (never after it was
// received), with source sdk, the context's IP truncated and its user agent.
func (p *Policy) FromMessage(m *custos.Message) (recs []custos.ConsentRecord, unmapped int) {
	hasCtx := bytes.Contains(m.Context, []byte(`"consent`))
	hasMSG := m.Type == custos.Identify && bytes.Contains(m.Traits, []byte(`"MSG-`))
	if !hasCtx && !hasMSG {
		return nil, 0
	}
	var c sdkContext
	if len(m.Context) > 0 {
		// The decoder passed the context as a JSON object; a shape we do
		// not understand carries no consent we can prove.
		_ = json.Unmarshal(m.Context, &c)
	}
	at := m.Timestamp
	if at.IsZero() || (!m.ReceivedAt.IsZero() && at.After(m.ReceivedAt)) {
		at = m.ReceivedAt
	}
	base := custos.ConsentRecord{Time: at.UTC(), Source: custos.SourceSDK, IP: TruncateIP(c.IP), UserAgent: c.UserAgent}
	if len(base.UserAgent) > MaxUserAgent || !utf8.ValidString(base.UserAgent) {
		base.UserAgent = ""
	}

	// Per purpose: granted unless any of its categories is denied.
	type choice struct {
		granted bool
		cats    []string
	}
	var order []string
	choices := map[string]*choice{}
	add := func(cat string, granted bool) {
		purpose, ok := p.Purpose(cat)
		if !ok {
			unmapped++
			return
		}
		ch := choices[purpose]
		if ch == nil {
			ch = &choice{granted: true}
			choices[purpose] = ch
			order = append(order, purpose)
		}
		ch.granted = ch.granted && granted
		ch.cats = append(ch.cats, cat)
	}
	var via []string
	if c.Consent != nil && len(c.Consent.CategoryPreferences) > 0 {
		via = append(via, "context.consent.categoryPreferences")
		cats := make([]string, 0, len(c.Consent.CategoryPreferences))
		for k := range c.Consent.CategoryPreferences {
			cats = append(cats, k)
		}
		slices.Sort(cats) // map order must not decide the record order
		for _, k := range cats {
			if g, ok := boolValue(c.Consent.CategoryPreferences[k]); ok {
				add(k, g)
			}
		}
	}
	if cm := c.ConsentManagement; cm != nil {
		allowed, denied := consentIDs(cm.Allowed), consentIDs(cm.Denied)
		if len(allowed)+len(denied) > 0 {
			via = append(via, "context.consentManagement")
		}
		for _, id := range allowed {
			add(id, true)
		}
		for _, id := range denied {
			add(id, false)
		}
	}
	for _, purpose := range order {
		ch := choices[purpose]
		r := base
		r.Purpose, r.Granted = purpose, ch.granted
		r.Proof = proof(m.MessageID, via, ch.cats)
		recs = append(recs, r)
	}

	if hasMSG {
		var traits map[string]json.RawMessage
		if json.Unmarshal(m.Traits, &traits) == nil {
			for _, mc := range msgChannels {
				v, ok := traits[mc.trait]
				if !ok {
					continue
				}
				g, ok := boolValue(v)
				if !ok {
					continue
				}
				if !p.marketing {
					unmapped++
					continue
				}
				r := base
				r.Purpose, r.Channel, r.Granted = Marketing, mc.channel, g
				r.Proof = proof(m.MessageID, []string{"traits"}, []string{mc.trait})
				recs = append(recs, r)
			}
		}
	}
	return recs, unmapped
}

// GrantsAny reports whether any record grants something.
func GrantsAny(recs []custos.ConsentRecord) bool {
	return slices.ContainsFunc(recs, func(r custos.ConsentRecord) bool { return r.Granted })
}

// proof is what a record keeps of the message it came from.
func proof(messageID string, via, categories []string) json.RawMessage {
	b, _ := json.Marshal(struct {
		MessageID  string   `json:"message_id"`
		Via        []string `json:"via"`
		Categories []string `json:"categories"`
	}{messageID, via, categories})
	return b
}

// boolValue reads true/false, or the strings "true"/"false".
func boolValue(v json.RawMessage) (bool, bool) {
	switch strings.ToLower(string(bytes.TrimSpace(v))) {
	case "true", `"true"`:
		return true, true
	case "false", `"false"`:
		return false, true
	}
	return false, false
}

// consentIDs reads RudderStack's consent ids: an array of strings, or (in
// older SDKs) an object whose keys are the ids.
func consentIDs(raw json.RawMessage) []string {
	if len(raw) == 0 {
		return nil
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return list
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) == nil {
		ids := make([]string, 0, len(obj))
		for k := range obj {
			ids = append(ids, k)
		}
		slices.Sort(ids)
		return ids
	}
	return nil
}
