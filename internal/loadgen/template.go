package loadgen

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
)

// A slot is a per-message value a template leaves open.
type slot uint8

const (
	slotNone slot = iota
	slotMessageID
	slotAnonymousID
	slotUserID
	slotTimestamp
	slotIP
	slotName
	slotPlan
)

// slotNamed returns the slot a {{name}} placeholder stands for.
func slotNamed(name string) (slot, bool) {
	switch name {
	case "messageId":
		return slotMessageID, true
	case "anonymousId":
		return slotAnonymousID, true
	case "userId":
		return slotUserID, true
	case "timestamp":
		return slotTimestamp, true
	case "ip":
		return slotIP, true
	case "name":
		return slotName, true
	case "plan":
		return slotPlan, true
	}
	return slotNone, false
}

// A part is literal JSON followed by one slot (slotNone for the last part).
type part struct {
	lit  []byte
	slot slot
}

// A template is one message, serialised once with its per-message values
// left open, so rendering it is a handful of appends.
type template struct {
	path  string // the single-message endpoint of its type
	parts []part
}

// compile splits JSON holding {{name}} placeholders into parts.
func compile(path string, js []byte) (template, error) {
	t := template{path: path}
	for {
		i := bytes.Index(js, []byte("{{"))
		if i < 0 {
			t.parts = append(t.parts, part{lit: js})
			return t, nil
		}
		j := bytes.Index(js[i:], []byte("}}"))
		if j < 0 {
			return t, fmt.Errorf("unclosed placeholder in %s", js)
		}
		name := string(js[i+2 : i+j])
		s, ok := slotNamed(name)
		if !ok {
			return t, fmt.Errorf("unknown placeholder {{%s}}", name)
		}
		t.parts = append(t.parts, part{lit: js[:i], slot: s})
		js = js[i+j+2:]
	}
}

const (
	libraryName    = "analytics-go"
	libraryVersion = "3.0.0"
	batchTrailer   = `],"context":{"library":{"name":"` + libraryName + `","version":"` + libraryVersion + `"}}}`
	// identifyEvery is the share of messages that are identify calls: about
	// one in identifyEvery.
	identifyEvery = 20
)

// The JSON shapes of the templates, fields in the order analytics-go
// writes them.
type (
	libraryInfo struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	}
	appInfo struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	}
	deviceInfo struct {
		Model string `json:"model"`
	}
	osInfo struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	}
	pageInfo struct {
		Path string `json:"path"`
	}
	messageContext struct {
		App       *appInfo     `json:"app,omitempty"`
		Device    *deviceInfo  `json:"device,omitempty"`
		Library   *libraryInfo `json:"library,omitempty"`
		OS        *osInfo      `json:"os,omitempty"`
		Page      *pageInfo    `json:"page,omitempty"`
		IP        string       `json:"ip"`
		Locale    string       `json:"locale"`
		UserAgent string       `json:"userAgent"`
	}
	trackMessage struct {
		Type        string         `json:"type"`
		MessageID   string         `json:"messageId"`
		AnonymousID string         `json:"anonymousId"`
		UserID      string         `json:"userId"`
		Event       string         `json:"event"`
		Timestamp   string         `json:"timestamp"`
		SentAt      string         `json:"sentAt,omitempty"`
		Context     messageContext `json:"context"`
		Properties  map[string]any `json:"properties"`
	}
	identifyMessage struct {
		Type        string         `json:"type"`
		MessageID   string         `json:"messageId"`
		AnonymousID string         `json:"anonymousId"`
		UserID      string         `json:"userId"`
		Timestamp   string         `json:"timestamp"`
		SentAt      string         `json:"sentAt,omitempty"`
		Context     messageContext `json:"context"`
		Traits      map[string]any `json:"traits"`
	}
)

// newContext returns a web context (page, browser user agent) or a mobile
// app's.
func newContext(r *rand.Rand, path string, mobile, single bool) messageContext {
	c := messageContext{IP: "{{ip}}"}
	if single {
		// Alone, a message carries the library itself: there is no batch
		// context to inherit it from.
		c.Library = &libraryInfo{Name: libraryName, Version: libraryVersion}
	}
	if mobile {
		m := mobileClients[r.IntN(len(mobileClients))]
		c.App = &appInfo{Name: "Example Outdoor", Version: "4.12.1"}
		c.Device = &deviceInfo{Model: m.model}
		c.OS = &osInfo{Name: m.osName, Version: m.osVersion}
		c.Locale = m.locale
		c.UserAgent = "ExampleOutdoor/4.12.1 (" + m.model + "; " + m.osName + " " + m.osVersion + ")"
		return c
	}
	w := webClients[r.IntN(len(webClients))]
	c.Page = &pageInfo{Path: path}
	c.Locale, c.UserAgent = w.locale, w.userAgent
	return c
}

func newTrack(r *rand.Rand, ev event, mobile, single bool) any {
	p := products[r.IntN(len(products))]
	path := ev.path
	if strings.Contains(path, "%s") {
		path = fmt.Sprintf(path, p.id)
	}
	ctx := newContext(r, path, mobile, single)
	props := map[string]any{"currency": "EUR"}
	if ev.order {
		props["order_id"] = fmt.Sprintf("ord-%06d", r.IntN(1000000))
		props["total"] = round2(p.price + 4.95)
		props["products"] = []map[string]any{{"product_id": p.id, "price": p.price, "quantity": 1}}
	} else {
		props["product_id"] = p.id
		props["price"] = p.price
		if ev.withCart {
			props["quantity"] = 1 + r.IntN(3)
		}
	}
	if mobile {
		props["url"] = "exampleoutdoor:/" + path
	} else {
		props["url"] = "https://example.com" + path
		if ref := referrers[r.IntN(len(referrers))]; ref != "" {
			props["referrer"] = ref
		}
	}
	m := trackMessage{
		Type: "track", MessageID: "{{messageId}}", AnonymousID: "{{anonymousId}}", UserID: "{{userId}}",
		Event: ev.name, Timestamp: "{{timestamp}}", Context: ctx, Properties: props,
	}
	if single {
		m.SentAt = "{{timestamp}}"
	}
	return m
}

func newIdentify(r *rand.Rand, mobile, single bool) any {
	ctx := newContext(r, "/account", mobile, single)
	m := identifyMessage{
		Type: "identify", MessageID: "{{messageId}}", AnonymousID: "{{anonymousId}}", UserID: "{{userId}}",
		Timestamp: "{{timestamp}}", Context: ctx,
		Traits: map[string]any{
			"email": "{{userId}}@example.com",
			"name":  "{{name}}",
			"plan":  "{{plan}}",
		},
	}
	if single {
		m.SentAt = "{{timestamp}}"
	}
	return m
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }
