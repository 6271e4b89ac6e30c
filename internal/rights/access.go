package rights

import (
	"archive/zip"
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/consent"
)

// ResultTTL is how long the result of an access or portability request can
// be downloaded. Custos keeps no copy: a download streams the subject's
// data, still sealed in the store, and after this it answers Gone.
const ResultTTL = 7 * 24 * time.Hour

// accessResult is the head of an export: everything held apart from the
// events, which are streamed after it.
type accessResult struct {
	RequestID    string                     `json:"request_id"`
	GeneratedAt  time.Time                  `json:"generated_at"`
	Controller   string                     `json:"tenant_id"`
	Region       string                     `json:"region"`
	Subject      string                     `json:"subject_id,omitempty"`
	Held         bool                       `json:"data_held"`
	Identifiers  map[string][]string        `json:"identifiers"`
	Traits       map[string]json.RawMessage `json:"traits"`
	Groups       []custos.GroupMembership   `json:"groups"`
	FirstSeen    time.Time                  `json:"first_seen,omitzero"`
	LastSeen     time.Time                  `json:"last_seen,omitzero"`
	Restrictions struct {
		Suppressed bool      `json:"suppressed"`
		Restricted bool      `json:"restricted"`
		ObjectedAt time.Time `json:"objected_to_direct_marketing_at,omitzero"`
	} `json:"restrictions"`
	// Consents is the subject's whole consent ledger, oldest first;
	// ConsentState what it adds up to now, per purpose and channel.
	Consents     []custos.ConsentRecord `json:"consents"`
	ConsentState []consentNow           `json:"consent_state"`
	// Messages are the campaign messages sent to the subject: which
	// campaign, purpose and channel, when, and with what outcome.
	Messages []custos.SendRecord `json:"messages_sent"`
	// Purposes are the purposes of processing the tenant declares, each
	// with its legal basis (Art. 15(1)(a)).
	Purposes   []custos.Purpose `json:"purposes"`
	Recipients []any            `json:"recipients"`
	Retention  string           `json:"retention"`
	// RetentionDays is the retention period of events (Art. 15(1)(d)).
	RetentionDays int    `json:"retention_days"`
	Source        string `json:"source"`
}

// Formats a result can be downloaded in.
const (
	FormatJSON   = "json"
	FormatNDJSON = "ndjson"
	FormatZIP    = "zip"
)

// Result streams the result of a completed access or portability request
// to w, with constant memory whatever the subject's size. contentType is
// called once, before anything is written.
func (e *Engine) Result(ctx context.Context, t custos.TenantID, id, format string, w io.Writer, contentType func(ct, filename string)) error {
	r, err := e.store.Request(ctx, t, id)
	if err != nil {
		return err
	}
	if r.Type != custos.Access && r.Type != custos.Portability {
		return custos.Errorf(custos.NotFound, "request %s is a %s request; only access and portability requests have results", id, r.Type)
	}
	if r.Status != custos.Completed {
		return custos.Errorf(custos.Conflict, "request %s is %s; its result is ready when it completes", id, r.Status)
	}
	if e.now().After(r.CompletedAt.Add(ResultTTL)) {
		return custos.Errorf(custos.Gone, "the result of request %s expired on %s; make a new request", id, r.CompletedAt.Add(ResultTTL).Format(time.RFC3339))
	}
	if format == "" {
		format = FormatJSON
	}
	switch {
	case format == FormatJSON:
	case r.Type == custos.Portability && (format == FormatNDJSON || format == FormatZIP):
	default:
		return custos.Errorf(custos.Invalid, "format %q is not available for %s requests (json%s)", format, r.Type,
			map[bool]string{true: ", ndjson or zip", false: ""}[r.Type == custos.Portability])
	}
	head, err := e.resultHead(ctx, r)
	if err != nil {
		return err
	}
	if err := e.put(ctx, r, "tenant:secret-key", "request.result.download", map[string]string{"format": format}); err != nil {
		return err
	}
	switch format {
	case FormatNDJSON:
		contentType("application/x-ndjson", r.ID+".ndjson")
		return e.writeNDJSON(ctx, r, head, w, true)
	case FormatZIP:
		contentType("application/zip", r.ID+".zip")
		return e.writeZIP(ctx, r, head, w)
	}
	contentType("application/json", r.ID+".json")
	return e.writeJSON(ctx, r, head, w)
}

func (e *Engine) resultHead(ctx context.Context, r *custos.Request) (*accessResult, error) {
	region, settings := e.tenantOf(r.Tenant)
	days := settings.RetentionDays()
	h := &accessResult{
		RequestID: r.ID, GeneratedAt: e.now().UTC(), Controller: r.Tenant.String(), Region: region,
		Identifiers: map[string][]string{}, Traits: map[string]json.RawMessage{}, Groups: []custos.GroupMembership{},
		Consents: []custos.ConsentRecord{}, ConsentState: []consentNow{}, Purposes: settings.EffectivePurposes(), Recipients: []any{}, Messages: []custos.SendRecord{},
		Retention:     fmt.Sprintf("events are kept %d days and then deleted; the profile is deleted once no events are left and no request was made within %d days, unless a standing suppression, restriction or objection must be kept to be honoured", days, days),
		RetentionDays: days,
		Source:        "collected through the tenant's Segment-compatible SDKs and servers",
	}
	if e.recipients != nil {
		list, err := e.recipients.Recipients(ctx, r.Tenant)
		if err != nil {
			return nil, err
		}
		for _, rc := range list {
			h.Recipients = append(h.Recipients, map[string]string{"name": rc.Name, "region": rc.Region})
		}
	}
	if r.Subject == (custos.SubjectID{}) {
		return h, nil
	}
	p, err := e.subj.Profile(ctx, r.Tenant, r.Subject)
	if custos.ErrorCode(err) == custos.NotFound {
		return h, nil // erased or merged since
	}
	if err != nil {
		return nil, err
	}
	h.Held, h.Subject = true, r.Subject.String()
	h.Identifiers, h.Traits, h.Groups, h.FirstSeen, h.LastSeen = p.Identifiers, p.Traits, p.Groups, p.FirstSeen, p.LastSeen
	f, err := e.gate.Flags(ctx, r.Tenant, r.Subject)
	if err != nil {
		return nil, err
	}
	h.Restrictions.Suppressed, h.Restrictions.Restricted, h.Restrictions.ObjectedAt = f.Suppressed, f.Restricted, f.ObjectedAt
	if e.consents != nil {
		hist, err := e.consents.History(ctx, r.Tenant, r.Subject)
		if err != nil && custos.ErrorCode(err) != custos.NotFound {
			return nil, err
		}
		h.Consents = append(h.Consents, hist...)
		h.ConsentState = consentStateOf(hist)
	}
	if e.sends != nil {
		sends, err := e.sends.Sends(ctx, r.Tenant, r.Subject)
		if err != nil && custos.ErrorCode(err) != custos.NotFound {
			return nil, err
		}
		if sends != nil {
			h.Messages = sends
		}
	}
	return h, nil
}

// consentNow is the current consent for one purpose and channel.
type consentNow struct {
	Purpose string `json:"purpose"`
	Channel string `json:"channel"`
	Granted bool   `json:"granted"`
}

// consentStateOf lists, for every purpose the ledger names and every
// channel, whether consent is granted now (only pairs some record speaks to).
func consentStateOf(hist []custos.ConsentRecord) []consentNow {
	out := []consentNow{}
	st := consent.NewState(hist)
	var purposes []string
	for _, r := range st.Records() {
		if !slices.Contains(purposes, r.Purpose) {
			purposes = append(purposes, r.Purpose)
		}
	}
	for _, p := range purposes {
		for _, ch := range custos.Channels {
			if g, ok := st.Lookup(p, ch); ok {
				out = append(out, consentNow{Purpose: p, Channel: ch, Granted: g})
			}
		}
	}
	return out
}

// eachEvent streams the subject's events, or none if it holds nothing.
func (e *Engine) eachEvent(ctx context.Context, r *custos.Request, head *accessResult, fn func(custos.Event) error) error {
	if !head.Held {
		return nil
	}
	return e.subj.EachEvent(ctx, r.Tenant, r.Subject, fn)
}

// writeJSON writes {...head, "events": [ ... ]} without holding the events.
func (e *Engine) writeJSON(ctx context.Context, r *custos.Request, head *accessResult, w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	b, err := json.Marshal(head)
	if err != nil {
		return err
	}
	bw.Write(b[:len(b)-1]) // leave the object open
	bw.WriteString(`,"events":[`)
	first := true
	err = e.eachEvent(ctx, r, head, func(ev custos.Event) error {
		if !first {
			bw.WriteByte(',')
		}
		first = false
		b, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		_, err = bw.Write(b)
		return err
	})
	if err != nil {
		return err
	}
	bw.WriteString("]}\n")
	return bw.Flush()
}

// writeNDJSON writes the profile as the first line, then one event a line.
func (e *Engine) writeNDJSON(ctx context.Context, r *custos.Request, head *accessResult, w io.Writer, withProfile bool) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	if withProfile {
		if err := enc.Encode(struct {
			Kind string `json:"kind"`
			*accessResult
		}{"profile", head}); err != nil {
			return err
		}
	}
	err := e.eachEvent(ctx, r, head, func(ev custos.Event) error {
		return enc.Encode(struct {
			Kind string `json:"kind"`
			custos.Event
		}{"event", ev})
	})
	if err != nil {
		return err
	}
	return bw.Flush()
}

const zipReadme = `This archive holds a copy of the personal data kept about you, in
machine-readable form (GDPR Art. 20).

profile.json   who you are to this service: identifiers, profile traits,
               groups, restrictions, every consent you gave or withdrew
               and what it adds up to now, and how long data is kept
events.ndjson  every event recorded about you, one JSON object a line,
               oldest first
`

// writeZIP writes profile.json, events.ndjson and a README, streaming.
func (e *Engine) writeZIP(ctx context.Context, r *custos.Request, head *accessResult, w io.Writer) error {
	zw := zip.NewWriter(w)
	f, err := zw.Create("profile.json")
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(head, "", "  ")
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		return err
	}
	f, err = zw.Create("events.ndjson")
	if err != nil {
		return err
	}
	if err := e.writeNDJSON(ctx, r, head, f, false); err != nil {
		return err
	}
	f, err = zw.Create("README.txt")
	if err != nil {
		return err
	}
	if _, err := io.WriteString(f, zipReadme); err != nil {
		return err
	}
	return zw.Close()
}
