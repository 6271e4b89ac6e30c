package server

import (
	"encoding/json"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/campaign"
	"github.com/custos-dev/custos/internal/tenants"
)

// campaignView is a campaign as the API shows it.
type campaignView struct {
	ID        string                `json:"id"`
	Name      string                `json:"name"`
	Purpose   string                `json:"purpose"`
	Channel   string                `json:"channel"`
	Status    custos.CampaignStatus `json:"status"`
	Audience  audienceView          `json:"audience"`
	Message   messageView           `json:"message"`
	CreatedAt time.Time             `json:"created_at"`
	Progress  progressView          `json:"progress"`
	Error     string                `json:"error,omitempty"`
}

type progressView struct {
	Audience    int            `json:"audience"`
	Sent        int            `json:"sent"`
	Failed      int            `json:"failed"`
	Excluded    map[string]int `json:"excluded"`
	StartedAt   time.Time      `json:"started_at,omitzero"`
	UpdatedAt   time.Time      `json:"updated_at,omitzero"`
	CompletedAt time.Time      `json:"completed_at,omitzero"`
}

// audienceView is who a campaign is for.
type audienceView struct {
	Traits []traitConditionView `json:"traits,omitempty"`
	Events []eventConditionView `json:"events,omitempty"`
}

// traitConditionView is a condition on a trait.
type traitConditionView struct {
	Key   string          `json:"key"`
	Op    string          `json:"op"`
	Value json.RawMessage `json:"value,omitempty"`
}

// eventConditionView is a condition on events.
type eventConditionView struct {
	Name       string `json:"name"`
	WithinDays int    `json:"within_days,omitempty"`
	MinCount   int    `json:"min_count,omitempty"`
}

// messageView is a campaign's message templates.
type messageView struct {
	Subject string `json:"subject"`
	Body    string `json:"body"`
	Text    string `json:"text,omitempty"`
}

// previewView is what a campaign would do if sent now.
type previewView struct {
	Audience int                 `json:"audience"`
	Eligible int                 `json:"eligible"`
	Excluded map[string]int      `json:"excluded"`
	Sample   []sampleMessageView `json:"sample"`
}

// sampleMessageView is one rendered message of a preview.
type sampleMessageView struct {
	SubjectID string `json:"subject_id"`
	To        string `json:"to,omitempty"`
	Subject   string `json:"subject"`
	Body      string `json:"body"`
	Text      string `json:"text,omitempty"`
}

func viewPreview(p *campaign.Preview) previewView {
	v := previewView{Audience: p.Audience, Eligible: p.Eligible, Excluded: p.Excluded, Sample: make([]sampleMessageView, len(p.Sample))}
	for i, m := range p.Sample {
		v.Sample[i] = sampleMessageView(m)
	}
	return v
}

func viewCampaign(c *custos.Campaign) campaignView {
	v := campaignView{ID: c.ID, Purpose: c.Purpose, Channel: c.Channel, Status: c.Status, CreatedAt: c.CreatedAt, Error: c.Error,
		Progress: progressView{Audience: c.Progress.Audience, Sent: c.Progress.Sent, Failed: c.Progress.Failed, Excluded: c.Progress.Excluded,
			StartedAt: c.Progress.StartedAt, UpdatedAt: c.Progress.UpdatedAt, CompletedAt: c.Progress.CompletedAt}}
	if d := c.Definition; d != nil {
		v.Name, v.Message = d.Name, messageView(d.Message)
		for _, tc := range d.Audience.Traits {
			v.Audience.Traits = append(v.Audience.Traits, traitConditionView(tc))
		}
		for _, ec := range d.Audience.Events {
			v.Audience.Events = append(v.Audience.Events, eventConditionView(ec))
		}
	}
	return v
}

func handleCreateCampaign(log *slog.Logger, eng *campaign.Engine) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		in, err := decodeBody[campaign.Input](w, r, maxBody)
		if err != nil {
			writeError(w, log, err)
			return
		}
		c, err := eng.Create(r.Context(), t, in)
		if err != nil {
			writeError(w, log, err)
			return
		}
		writeJSON(w, http.StatusCreated, viewCampaign(c))
	}
}

func handleListCampaigns(log *slog.Logger, eng *campaign.Engine) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		p, err := readPage(r, "campaigns")
		if err != nil {
			writeError(w, log, err)
			return
		}
		all, err := eng.List(r.Context(), t.ID)
		if err != nil {
			writeError(w, log, err)
			return
		}
		list, next := pageSlice(all, p, func(c *custos.Campaign) string { return c.ID })
		out := make([]campaignView, len(list))
		for i, c := range list {
			out[i] = viewCampaign(c)
		}
		writeJSON(w, http.StatusOK, listPage("campaigns", out, next))
	}
}

func handleGetCampaign(log *slog.Logger, eng *campaign.Engine) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		c, err := eng.Get(r.Context(), t.ID, r.PathValue("id"))
		if err != nil {
			writeError(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, viewCampaign(c))
	}
}

func handlePreviewCampaign(log *slog.Logger, eng *campaign.Engine) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		sample := campaign.DefaultSample
		if s := r.URL.Query().Get("sample"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 || n > 50 {
				writeError(w, log, custos.Errorf(custos.Invalid, "sample must be a number from 0 to 50"))
				return
			}
			sample = n
		}
		pv, err := eng.Preview(r.Context(), t, r.PathValue("id"), sample)
		if err != nil {
			writeError(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, viewPreview(pv))
	}
}

func handleSendCampaign(log *slog.Logger, eng *campaign.Engine) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		c, err := eng.Send(r.Context(), t, r.PathValue("id"))
		if err != nil {
			writeError(w, log, err)
			return
		}
		writeJSON(w, http.StatusAccepted, viewCampaign(c))
	}
}

// The unsubscribe pages: small, self-contained, no scripts, no third-party
// resources, never cached.
var unsubscribePage = template.Must(template.New("u").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex"><title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;line-height:1.5}button{font-size:1rem;padding:.6rem 1.2rem}</style>
</head><body><h1>{{.Title}}</h1><p>{{.Text}}</p>
{{if .Form}}<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click"><button type="submit">Unsubscribe</button></form>{{end}}
</body></html>
`))

type unsubscribeView struct {
	Title, Text string
	Form        bool
}

func writePage(w http.ResponseWriter, status int, v unsubscribeView) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	unsubscribePage.Execute(w, v)
}

func channelName(c string) string {
	if c == custos.ChannelEmail {
		return "e-mail"
	}
	return c
}

// handleUnsubscribePage answers GET /u/{token}: a confirmation page with
// a button. A GET never withdraws anything: mail scanners fetch links.
func handleUnsubscribePage(eng *campaign.Engine, reg *tenants.Registry) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := eng.CheckToken(r.PathValue("token"))
		if err != nil {
			writePage(w, http.StatusNotFound, unsubscribeView{Title: "Link not valid", Text: "This unsubscribe link is not valid. Use the link in the message you received."})
			return
		}
		if linkMisdirected(w, reg, u.Tenant) {
			return
		}
		writePage(w, http.StatusOK, unsubscribeView{Title: "Unsubscribe",
			Text: "Stop receiving " + u.Purpose + " messages by " + channelName(u.Channel) + "? This takes effect at once.", Form: true})
	})
}

// handleUnsubscribe answers POST /u/{token} (RFC 8058 one-click, or the
// page's button): the consent is withdrawn before the answer.
func handleUnsubscribe(log *slog.Logger, eng *campaign.Engine, reg *tenants.Registry) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, err := eng.CheckToken(r.PathValue("token")); err == nil && linkMisdirected(w, reg, u.Tenant) {
			return
		}
		ip, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			ip = ""
		}
		u, err := eng.Unsubscribe(r.Context(), r.PathValue("token"), ip, r.UserAgent())
		switch code := custos.ErrorCode(err); {
		case err == nil:
			writePage(w, http.StatusOK, unsubscribeView{Title: "Unsubscribed",
				Text: "You will receive no more " + u.Purpose + " messages by " + channelName(u.Channel) + "."})
		case code == custos.NotFound:
			writePage(w, http.StatusNotFound, unsubscribeView{Title: "Link not valid", Text: "This unsubscribe link is not valid. Use the link in the message you received."})
		default:
			if statusOf(code) >= 500 {
				log.Error("unsubscribe failed", "code", code, "err", err)
			}
			w.Header().Set("Retry-After", "1")
			writePage(w, http.StatusServiceUnavailable, unsubscribeView{Title: "Please try again", Text: "We could not record your choice just now. Please try again in a moment."})
		}
	})
}

// linkMisdirected answers a link of a tenant of another region with a
// page saying so (421), reading and changing nothing.
func linkMisdirected(w http.ResponseWriter, reg *tenants.Registry, id custos.TenantID) bool {
	t, ok := reg.Get(id)
	if !ok || reg.Misdirected(t) == nil {
		return false
	}
	writePage(w, http.StatusMisdirectedRequest, unsubscribeView{Title: "Wrong server",
		Text: "This link belongs to a server of region " + t.Region + ", not to this one (" + reg.Region() + "). Nothing was changed."})
	return true
}
