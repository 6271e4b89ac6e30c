package campaign

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
)

// checkpointEvery bounds the work a crash can make a resumed run redo
// (never resend: send records prevent that).
const (
	checkpointEvery    = 200
	checkpointInterval = time.Second
)

// Run sends campaigns until ctx ends: first it resumes the campaigns of
// Deps.Resume's tenants that were sending when the node stopped, then it
// starts the runs Send asks for. When ctx ends each run stops after the
// recipient in hand, with its progress stored, and Run returns once every
// run has stopped. An Engine is run once.
func (e *Engine) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(e.stopped) // first: Send stops handing over runs
	start := func(ref campaignRef) bool {
		e.runMu.Lock()
		defer e.runMu.Unlock()
		if e.running[ref] {
			return false
		}
		e.running[ref] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { e.runMu.Lock(); delete(e.running, ref); e.runMu.Unlock() }()
			e.run(ctx, ref.t, ref.id)
		}()
		return true
	}
	resume := func() error {
		resumed := 0
		for _, t := range e.d.Resume() {
			var ids []string
			err := e.d.Store.Campaigns(ctx, t, func(c *custos.Campaign) bool {
				if c.Status == custos.CampaignSending {
					ids = append(ids, c.ID)
				}
				return true
			})
			if err != nil {
				return fmt.Errorf("list campaigns to resume: %w", err)
			}
			for _, id := range ids {
				if start(campaignRef{t, id}) {
					resumed++
				}
			}
		}
		if resumed > 0 {
			e.log.Info("resuming campaigns being sent", "count", resumed)
		}
		return nil
	}
	var tick <-chan time.Time
	if e.d.Resume != nil {
		if err := resume(); err != nil {
			return err
		}
		if e.d.ResumeEvery > 0 {
			t := time.NewTicker(e.d.ResumeEvery)
			defer t.Stop()
			tick = t.C
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ref := <-e.launches:
			start(ref)
		case <-tick:
			if err := resume(); err != nil && ctx.Err() == nil {
				e.log.Error("look for campaigns to resume", "err", err)
			}
		}
	}
}

// launch hands a run to Run, which starts it unless one is running.
func (e *Engine) launch(ctx context.Context, t custos.TenantID, id string) error {
	unavailable := custos.Errorf(custos.Unavailable, "campaigns are not being sent on this node right now (starting or shutting down); retry")
	select {
	case e.launches <- campaignRef{t, id}:
		return nil
	case <-e.stopped:
		return unavailable
	case <-ctx.Done():
		return unavailable
	}
}

// Send starts sending a draft or paused campaign in the background and
// returns it as it stands. Sending a campaign that is sending already
// changes nothing; a completed campaign is not sent again.
func (e *Engine) Send(ctx context.Context, t *custos.Tenant, id string) (*custos.Campaign, error) {
	return e.SendBy(ctx, t, id, audit.ActorTenant)
}

// SendBy is Send with the actor its audit entry names (a person in the
// console).
func (e *Engine) SendBy(ctx context.Context, t *custos.Tenant, id, actor string) (*custos.Campaign, error) {
	c, err := e.Get(ctx, t.ID, id)
	if err != nil {
		return nil, err
	}
	switch c.Status {
	case custos.CampaignCompleted:
		return nil, custos.Errorf(custos.Conflict, "campaign %s was sent already (completed %s); create a new one", id, c.Progress.CompletedAt.Format(time.RFC3339))
	case custos.CampaignSending:
		return c, e.launch(ctx, t.ID, id)
	}
	if err := checkDestination(t, c.Channel); err != nil {
		return nil, err
	}
	now := e.now().UTC()
	c.Status, c.Error = custos.CampaignSending, ""
	if c.Progress.StartedAt.IsZero() {
		c.Progress.StartedAt = now
	}
	c.Progress.UpdatedAt = now
	if err := e.put(ctx, c); err != nil {
		return nil, err
	}
	if err := e.record(ctx, t.ID, audit.Entry{Actor: actor, Action: "campaign.send",
		Details: map[string]string{"campaign_id": c.ID, "purpose": c.Purpose, "channel": c.Channel}}); err != nil {
		return nil, err
	}
	return c, e.launch(ctx, t.ID, id)
}

// checkDestination checks that the channel's destination is configured
// and allowed for the tenant's region.
func checkDestination(t *custos.Tenant, channel string) error {
	s := &t.Settings
	switch channel {
	case custos.ChannelWebhook:
		if s.DeliveryWebhook == nil {
			return custos.Errorf(custos.Conflict, "the tenant has no delivery_webhook: set it with PATCH /api/v1/settings before sending a webhook campaign")
		}
		return s.CheckDestination(t.Region, "delivery_webhook", s.DeliveryWebhook.Region)
	case custos.ChannelEmail:
		if s.SMTP == nil {
			return custos.Errorf(custos.Conflict, "the tenant has no smtp settings: set them with PATCH /api/v1/settings before sending an e-mail campaign")
		}
		return s.CheckDestination(t.Region, "smtp", s.SMTP.Region)
	}
	return custos.Errorf(custos.Invalid, "channel %q cannot be sent", channel)
}

// errPause stops a run until the tenant sends the campaign again.
type errPause struct{ msg string }

func (e errPause) Error() string { return e.msg }

// run walks the audience until it is done, the run pauses or ctx ends,
// holding the campaign's lease: if another node holds it, that node is
// sending the campaign, and run returns at once.
func (e *Engine) run(ctx context.Context, t custos.TenantID, id string) {
	if e.d.Leases == nil {
		e.walkRetrying(ctx, t, id)
		return
	}
	held, err := e.d.Leases.Hold(ctx, t, "campaign/"+id, func(ctx context.Context) error {
		e.walkRetrying(ctx, t, id)
		return nil
	})
	if err != nil && ctx.Err() == nil {
		e.log.Error("campaign run: acquire its lease", "tenant", t.String(), "campaign", id, "err", err)
	} else if !held {
		e.log.Info("campaign is being sent by another node", "tenant", t.String(), "campaign", id)
	}
}

// walkRetrying walks the audience until it is done, the run pauses or
// ctx ends; a failure of the store is retried with backoff.
func (e *Engine) walkRetrying(ctx context.Context, t custos.TenantID, id string) {
	wait := time.Second
	for {
		err := e.walk(ctx, t, id)
		if err == nil || ctx.Err() != nil {
			return
		}
		e.log.Error("campaign run failed; retrying", "tenant", t.String(), "campaign", id, "err", err, "retry_in", wait.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Minute)
	}
}

// runState is what one pass of a run keeps.
type runState struct {
	c   *custos.Campaign
	tpl *templates
}

// walk makes one pass over the audience from the campaign's cursor.
func (e *Engine) walk(ctx context.Context, t custos.TenantID, id string) error {
	c, err := e.Get(ctx, t, id)
	if err != nil {
		return err
	}
	if c.Status != custos.CampaignSending {
		return nil
	}
	tpl, err := parseTemplates(c.Channel, c.Definition.Message)
	if err != nil {
		return err
	}
	rs := &runState{c: c, tpl: tpl}
	// Progress is stored even as ctx ends: it is what the next start
	// resumes from.
	store := context.WithoutCancel(ctx)
	handled, last := 0, time.Now()
	checkpoint := func(force bool) error {
		if !force && handled < checkpointEvery && time.Since(last) < checkpointInterval {
			return nil
		}
		handled, last = 0, time.Now()
		c.Progress.UpdatedAt = e.now().UTC()
		return e.put(store, c)
	}
	var pause errPause
	tenant, ok := e.d.Tenants.Get(t)
	if !ok {
		return nil // the tenant was deleted, and its campaigns with it
	}
	capN := tenant.Settings.DailyCap()
	flags, err := e.flagsOf(ctx, t)
	if err != nil {
		return err
	}
	err = e.eachMember(ctx, t, c, c.Progress.Cursor, e.now(), func(m *member) (bool, error) {
		if ctx.Err() != nil {
			return false, nil
		}
		p := m.profile
		in, err := e.inAudience(ctx, t, &c.Definition.Audience, p, e.now())
		if err != nil {
			return false, err
		}
		if in {
			kind, reason := "", ""
			if m.own == nil {
				if r := quickGate(c, m, flags[p.Subject], capN); r != "" {
					kind, reason = "excluded", r
				}
			}
			if kind == "" {
				kind, reason, err = e.one(ctx, rs, p)
				if errors.As(err, &pause) {
					return false, nil
				}
				if err != nil {
					return false, err // the cursor stays before p: it is done again
				}
			}
			c.Progress.Audience++
			switch kind {
			case statusSent:
				c.Progress.Sent++
			case statusFailed:
				c.Progress.Failed++
			default:
				c.Progress.Excluded[reason]++
			}
		}
		c.Progress.Cursor = p.Subject
		handled++
		return true, checkpoint(false)
	})
	switch {
	case pause.msg != "":
		c.Status, c.Error = custos.CampaignPaused, pause.msg
		e.log.Warn("campaign paused", "tenant", t.String(), "campaign", id, "reason", pause.msg)
	case err == nil && ctx.Err() == nil:
		c.Status = custos.CampaignCompleted
		c.Progress.CompletedAt = e.now().UTC()
	}
	if cerr := checkpoint(true); cerr != nil && err == nil {
		err = cerr
	}
	if c.Status == custos.CampaignCompleted {
		e.record(store, t, audit.Entry{Actor: audit.ActorSystem, Action: "campaign.completed", Details: map[string]any{
			"campaign_id": c.ID, "audience": c.Progress.Audience, "sent": c.Progress.Sent, "failed": c.Progress.Failed, "excluded": c.Progress.Excluded}})
	}
	return err
}

// inAudience reports whether a profile meets every condition.
func (e *Engine) inAudience(ctx context.Context, t custos.TenantID, a *custos.Audience, p *custos.Profile, now time.Time) (bool, error) {
	if !matchTraits(p.Traits, a) {
		return false, nil
	}
	for _, ec := range a.Events {
		n, need := 0, minCount(ec)
		err := e.d.Profiles.EventsSince(ctx, t, p.Subject, eventWindow(ec, now), func(ev custos.Event) (bool, error) {
			if ev.Event == ec.Name || ev.Event == "" && ev.Name == ec.Name {
				n++
			}
			return n < need, nil
		})
		if custos.ErrorCode(err) == custos.NotFound {
			return false, nil // erased during the walk
		}
		if err != nil {
			return false, err
		}
		if n < need {
			return false, nil
		}
	}
	return true, nil
}
