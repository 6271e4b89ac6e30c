package console

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/campaign"
)

// Campaigns is what the console needs of the campaign engine.
type Campaigns interface {
	Create(ctx context.Context, t *custos.Tenant, in campaign.Input) (*custos.Campaign, error)
	Get(ctx context.Context, t custos.TenantID, id string) (*custos.Campaign, error)
	List(ctx context.Context, t custos.TenantID) ([]*custos.Campaign, error)
	PreviewBy(ctx context.Context, t *custos.Tenant, id string, sample int, actor string) (*campaign.Preview, error)
	SendBy(ctx context.Context, t *custos.Tenant, id, actor string) (*custos.Campaign, error)
}

type campaignsData struct {
	Campaigns []*custos.Campaign
	Purposes  []custos.Purpose
	Channels  []string
	Ops       []string
	Error     string
	Form      url.Values
}

func (h *Handler) campaignsPage(w http.ResponseWriter, r *http.Request, u *user) {
	h.showCampaigns(w, r, u, http.StatusOK, "", nil)
}

func (h *Handler) showCampaigns(w http.ResponseWriter, r *http.Request, u *user, status int, msg string, form url.Values) {
	if h.d.Campaigns == nil {
		h.fail(w, u, custos.Errorf(custos.NotImplemented, "this node sends no campaigns"))
		return
	}
	list, err := h.d.Campaigns.List(r.Context(), u.t.ID)
	if err != nil {
		h.fail(w, u, err)
		return
	}
	if form == nil {
		form = url.Values{}
	}
	d := campaignsData{Campaigns: list, Purposes: u.t.Settings.EffectivePurposes(), Channels: []string{custos.ChannelEmail, custos.ChannelWebhook},
		Ops: []string{"eq", "neq", "exists", "gt", "lt", "contains"}, Error: msg, Form: form}
	h.render(w, status, "campaigns", u.page("Campaigns", d))
}

// createCampaign makes a draft from the form: one optional trait
// condition and one optional event condition.
func (h *Handler) createCampaign(w http.ResponseWriter, r *http.Request, u *user) {
	if h.d.Campaigns == nil {
		h.fail(w, u, custos.Errorf(custos.NotImplemented, "this node sends no campaigns"))
		return
	}
	f := r.PostForm
	in := campaign.Input{Name: f.Get("name"), Purpose: f.Get("purpose"), Channel: f.Get("channel"), Actor: u.actor(),
		Message: custos.CampaignMessage{Subject: f.Get("subject"), Body: f.Get("body")}}
	if key := strings.TrimSpace(f.Get("trait_key")); key != "" {
		c := custos.TraitCondition{Key: key, Op: f.Get("trait_op")}
		if v := strings.TrimSpace(f.Get("trait_value")); v != "" {
			// A number or true/false as such; anything else as a string.
			if json.Valid([]byte(v)) && !strings.HasPrefix(v, "\"") && !strings.HasPrefix(v, "{") && !strings.HasPrefix(v, "[") {
				c.Value = json.RawMessage(v)
			} else {
				b, _ := json.Marshal(v)
				c.Value = b
			}
		}
		in.Audience.Traits = append(in.Audience.Traits, c)
	}
	if name := strings.TrimSpace(f.Get("event_name")); name != "" {
		days, _ := strconv.Atoi(f.Get("event_days"))
		in.Audience.Events = append(in.Audience.Events, custos.EventCondition{Name: name, WithinDays: days})
	}
	c, err := h.d.Campaigns.Create(r.Context(), u.t, in)
	if err != nil {
		if statusOf(err) >= 500 {
			h.fail(w, u, err)
			return
		}
		h.showCampaigns(w, r, u, statusOf(err), custos.ErrorMessage(err), f)
		return
	}
	http.Redirect(w, r, "/console/campaigns/"+url.PathEscape(c.ID), http.StatusSeeOther)
}

type campaignData struct {
	*custos.Campaign
	Preview       *campaign.Preview
	Chart         barChart
	ProgressChart barChart
	Refresh       bool
	Sendable      bool
	Percent       int
	Flash         string
	Error         string
}

// exclusionChart draws the exclusions by reason, every reason shown.
func exclusionChart(title string, excluded map[string]int) barChart {
	values := make([]int, len(campaign.Reasons))
	for i, r := range campaign.Reasons {
		values[i] = excluded[r]
	}
	return newBarChart(title, campaign.Reasons, values)
}

func (h *Handler) campaignPage(w http.ResponseWriter, r *http.Request, u *user) {
	h.showCampaign(w, r, u, http.StatusOK, nil, "")
}

func (h *Handler) showCampaign(w http.ResponseWriter, r *http.Request, u *user, status int, pv *campaign.Preview, msg string) {
	if h.d.Campaigns == nil {
		h.fail(w, u, custos.Errorf(custos.NotImplemented, "this node sends no campaigns"))
		return
	}
	c, err := h.d.Campaigns.Get(r.Context(), u.t.ID, r.PathValue("id"))
	if err != nil {
		h.fail(w, u, err)
		return
	}
	d := campaignData{Campaign: c, Preview: pv, Refresh: c.Status == custos.CampaignSending, Error: msg,
		Sendable: c.Status == custos.CampaignDraft || c.Status == custos.CampaignPaused}
	if pv != nil {
		d.Chart = exclusionChart("Excluded from this campaign now, by reason", pv.Excluded)
	}
	if c.Status != custos.CampaignDraft {
		d.ProgressChart = exclusionChart("Excluded while sending, by reason", c.Progress.Excluded)
		if c.Progress.Audience > 0 {
			done := c.Progress.Sent + c.Progress.Failed
			for _, n := range c.Progress.Excluded {
				done += n
			}
			d.Percent = min(100, done*100/c.Progress.Audience)
		} else if c.Status == custos.CampaignCompleted {
			d.Percent = 100
		}
	}
	if r.URL.Query().Get("done") == "sending" {
		d.Flash = "Sending started."
	}
	name := c.ID
	if c.Definition != nil {
		name = c.Definition.Name
	}
	h.render(w, status, "campaign", u.page("Campaign "+name, d))
}

func (h *Handler) previewCampaign(w http.ResponseWriter, r *http.Request, u *user) {
	if h.d.Campaigns == nil {
		h.fail(w, u, custos.Errorf(custos.NotImplemented, "this node sends no campaigns"))
		return
	}
	pv, err := h.d.Campaigns.PreviewBy(r.Context(), u.t, r.PathValue("id"), 3, u.actor())
	if err != nil {
		if statusOf(err) >= 500 || statusOf(err) == http.StatusNotFound {
			h.fail(w, u, err)
			return
		}
		h.showCampaign(w, r, u, statusOf(err), nil, custos.ErrorMessage(err))
		return
	}
	h.showCampaign(w, r, u, http.StatusOK, pv, "")
}

func (h *Handler) sendCampaign(w http.ResponseWriter, r *http.Request, u *user) {
	if h.d.Campaigns == nil {
		h.fail(w, u, custos.Errorf(custos.NotImplemented, "this node sends no campaigns"))
		return
	}
	if _, err := h.d.Campaigns.SendBy(r.Context(), u.t, r.PathValue("id"), u.actor()); err != nil {
		if statusOf(err) >= 500 || statusOf(err) == http.StatusNotFound {
			h.fail(w, u, err)
			return
		}
		h.showCampaign(w, r, u, statusOf(err), nil, custos.ErrorMessage(err))
		return
	}
	http.Redirect(w, r, "/console/campaigns/"+url.PathEscape(r.PathValue("id"))+"?done=sending", http.StatusSeeOther)
}
