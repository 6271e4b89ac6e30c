package campaign

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
	"github.com/custos-dev/custos/internal/mail"
)

// DeliveryKind is the X-Custos-Kind of a campaign message delivered to the
// tenant's webhook.
const DeliveryKind = "campaign.message"

// sendTimeout bounds one delivery once it has begun: a run that is being
// stopped still finishes the message in hand, so it is neither lost nor
// sent twice.
const sendTimeout = 2 * time.Minute

// one gates and sends the message of one recipient, and returns what
// became of it: statusSent, statusFailed, or "excluded" and the reason.
// An error means nothing was decided (the store failed, ctx ended): the
// recipient is done again.
func (e *Engine) one(ctx context.Context, rs *runState, p *custos.Profile) (kind, reason string, err error) {
	c, s := rs.c, p.Subject
	t, ok := e.d.Tenants.Get(c.Tenant)
	if !ok {
		return "", "", errPause{"the tenant was deleted"}
	}
	if err := checkDestination(t, c.Channel); err != nil {
		return "", "", errPause{custos.ErrorMessage(err)}
	}
	if e.beforeGate != nil {
		e.beforeGate(s)
	}
	mu := e.lock(s)
	mu.Lock()
	locked := true
	defer func() {
		if locked {
			mu.Unlock()
		}
	}()

	now := e.now().UTC()
	h, err := e.history(ctx, c.Tenant, s, c, now)
	if err != nil {
		return "", "", fmt.Errorf("read send records: %w", err)
	}
	resend := false
	if h.own != nil {
		// A run before a restart got this far with this recipient.
		rec, err := e.openSend(ctx, c.Tenant, *h.own)
		if errors.Is(err, custos.ErrShredded) {
			return "excluded", "erased", nil
		}
		if err != nil {
			return "", "", err
		}
		switch {
		case rec.Status == statusSent || rec.Status == statusFailed:
			return rec.Status, "", nil
		case c.Channel == custos.ChannelEmail:
			// The mail server may or may not have taken it: a second copy
			// is worse than none.
			rec.Status, rec.Error = statusFailed, "interrupted by a restart while being sent; not sent again, so as never to send it twice"
			return statusFailed, "", e.finish(ctx, c, s, rec)
		}
		// A webhook message is in the outbox or not at all.
		if queued, err := e.queued(ctx, c, s); err != nil {
			return "", "", err
		} else if queued {
			rec.Status = statusSent
			return statusSent, "", e.finish(ctx, c, s, rec)
		}
		resend, now = true, rec.Time // gated again below, same record
	}

	erased := false
	if _, err := e.d.Store.Profile(ctx, c.Tenant, s); errors.Is(err, custos.ErrNotFound) {
		erased = true
	} else if err != nil {
		return "", "", fmt.Errorf("read profile: %w", err)
	}
	flags, err := e.d.Gate.Flags(ctx, c.Tenant, s)
	if err != nil {
		return "", "", fmt.Errorf("read subject flags: %w", err)
	}
	st, err := e.d.Consents.State(ctx, c.Tenant, s)
	if custos.ErrorCode(err) == custos.NotFound {
		erased = true
	} else if err != nil {
		return "", "", fmt.Errorf("read consent: %w", err)
	}
	if r := Decide(st, flags, erased, c.Purpose, c.Channel, h.today, t.Settings.DailyCap()); r != "" {
		if resend {
			rec := custos.SendRecord{Campaign: c.ID, Purpose: c.Purpose, Channel: c.Channel, Time: now, Status: statusFailed, Error: "not sent: " + r}
			if err := e.finish(ctx, c, s, rec); err != nil && !errors.Is(err, custos.ErrShredded) {
				return "", "", err
			}
		}
		return "excluded", r, nil
	}
	to := ""
	if c.Channel == custos.ChannelEmail {
		if to = address(p); to == "" {
			return "excluded", ReasonNoAddress, nil
		}
	}
	token, err := NewToken(e.d.Keys, Unsubscribe{Tenant: c.Tenant, Subject: s, Purpose: c.Purpose, Channel: c.Channel})
	if err != nil {
		return "", "", err
	}
	link := e.d.PublicURL + "/u/" + token
	msg, err := rs.tpl.render(templateData(p, link))
	if err != nil {
		e.log.Warn("campaign message did not render", "tenant", c.Tenant.String(), "campaign", c.ID, "err", err)
		return statusFailed, "", nil
	}

	rec := custos.SendRecord{Campaign: c.ID, Purpose: c.Purpose, Channel: c.Channel, Time: now, Status: statusSending}
	if resend {
		err = e.putSend(ctx, c.Tenant, s, rec)
	} else {
		if e.beforeRecord != nil {
			e.beforeRecord(s)
		}
		// The gate above counted this node's view of the cap; the store
		// counts again, atomically with the write, for campaigns that
		// other nodes are sending to the same person right now.
		err = e.putFirstSend(ctx, c.Tenant, s, rec, t.Settings.DailyCap())
	}
	switch {
	case errors.Is(err, custos.ErrShredded):
		return "excluded", "erased", nil
	case errors.Is(err, custos.ErrCapReached):
		return "excluded", ReasonFrequencyCap, nil
	case err != nil:
		return "", "", fmt.Errorf("store send record: %w", err)
	}
	mu.Unlock()
	locked = false

	// Begun: finished even if the run is being stopped.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sendTimeout)
	defer cancel()
	var sendErr error
	switch c.Channel {
	case custos.ChannelWebhook:
		sendErr = e.sendWebhook(sctx, t, c, p, msg, link)
	case custos.ChannelEmail:
		sendErr = e.sendEmail(sctx, t, to, msg, link, c.Definition.Message)
	}
	rec.Status = statusSent
	if sendErr != nil {
		rec.Status, rec.Error = statusFailed, clip(sendErr.Error())
		e.log.Warn("campaign message failed", "tenant", c.Tenant.String(), "campaign", c.ID, "channel", c.Channel, "err", clip(sendErr.Error()))
	}
	if err := e.finish(sctx, c, s, rec); err != nil && !errors.Is(err, custos.ErrShredded) {
		return "", "", err
	}
	return rec.Status, "", nil
}

// finish stores the outcome of a send and audits it, pseudonymously.
func (e *Engine) finish(ctx context.Context, c *custos.Campaign, s custos.SubjectID, rec custos.SendRecord) error {
	if err := e.putSend(ctx, c.Tenant, s, rec); err != nil {
		return err
	}
	pseudonym, err := e.d.Profiles.Pseudonym(c.Tenant, s)
	if err != nil {
		return err
	}
	return e.record(ctx, c.Tenant, audit.Entry{Actor: audit.ActorSystem, Action: "campaign.message." + rec.Status, Subject: pseudonym,
		Details: map[string]string{"campaign_id": c.ID, "channel": c.Channel, "purpose": c.Purpose}})
}

// address is the subject's e-mail address: its first e-mail identifier,
// else an email trait.
func address(p *custos.Profile) string {
	if ids := p.Identifiers["email"]; len(ids) > 0 {
		return ids[0]
	}
	var s string
	if v, ok := p.Traits["email"]; ok && json.Unmarshal(v, &s) == nil && strings.Contains(s, "@") {
		return strings.TrimSpace(s)
	}
	return ""
}

func deliveryID(c *custos.Campaign, s custos.SubjectID) string {
	return "cmpmsg_" + strings.TrimPrefix(c.ID, "cmp_") + "_" + s.String()
}

// queued reports whether the outbox holds this recipient's message.
func (e *Engine) queued(ctx context.Context, c *custos.Campaign, s custos.SubjectID) (bool, error) {
	ds, err := e.d.Store.Deliveries(ctx, c.Tenant, c.ID)
	if err != nil {
		return false, fmt.Errorf("read the campaign's deliveries: %w", err)
	}
	id := deliveryID(c, s)
	for _, d := range ds {
		if d.ID == id {
			return true, nil
		}
	}
	return false, nil
}

// WebhookMessage is the body of one message delivered to the tenant's
// delivery webhook: everything it needs to reach the person on its own
// channels.
type WebhookMessage struct {
	DeliveryID     string              `json:"delivery_id"`
	CampaignID     string              `json:"campaign_id"`
	Purpose        string              `json:"purpose"`
	SubjectID      string              `json:"subject_id"`
	Identifiers    map[string][]string `json:"identifiers"`
	Subject        string              `json:"subject"`
	Body           string              `json:"body"`
	UnsubscribeURL string              `json:"unsubscribe_url"`
	SentAt         time.Time           `json:"sent_at"`
}

// sendWebhook hands the message to the outbox, which signs it, POSTs it
// and retries it with backoff until the endpoint answers 2xx.
func (e *Engine) sendWebhook(ctx context.Context, t *custos.Tenant, c *custos.Campaign, p *custos.Profile, msg rendered, link string) error {
	secret, err := e.d.Tenants.DeliverySecret(t)
	if err != nil {
		return err
	}
	id := deliveryID(c, p.Subject)
	body, err := json.Marshal(WebhookMessage{DeliveryID: id, CampaignID: c.ID, Purpose: c.Purpose, SubjectID: p.Subject.String(),
		Identifiers: p.Identifiers, Subject: msg.Subject, Body: msg.Body, UnsubscribeURL: link, SentAt: e.now().UTC()})
	if err != nil {
		return err
	}
	_, err = e.d.Outbox.Enqueue(ctx, custos.Delivery{ID: id, Tenant: t.ID, Kind: DeliveryKind, RequestID: c.ID,
		Target: "delivery_webhook", URL: t.Settings.DeliveryWebhook.URL, Secret: []byte(secret), Body: body})
	return err
}

// sendEmail sends the message through the tenant's SMTP server with the
// RFC 8058 one-click unsubscribe headers, retrying temporary failures.
func (e *Engine) sendEmail(ctx context.Context, t *custos.Tenant, to string, msg rendered, link string, src custos.CampaignMessage) error {
	m := t.Settings.SMTP
	password, err := e.d.Tenants.SMTPPassword(t)
	if err != nil {
		return err
	}
	cfg := mail.Config{Host: m.Host, Port: m.Port, Username: m.Username, Password: password, TLS: m.TLS, From: m.From, RootCAs: e.d.MailRootCAs, Dial: e.d.MailDial}
	html, text := msg.Body, msg.Text
	if !strings.Contains(src.Body, "unsubscribe_url") {
		html += `<p style="font-size:small"><a href="` + link + `">Unsubscribe</a></p>`
	}
	if !strings.Contains(src.Text, "unsubscribe_url") {
		text += "\n\nUnsubscribe: " + link + "\n"
	}
	out := mail.Message{To: to, Subject: msg.Subject, Text: text, HTML: html, Headers: []mail.Header{
		{Name: "List-Unsubscribe", Value: "<" + link + ">"},
		{Name: "List-Unsubscribe-Post", Value: "List-Unsubscribe=One-Click"},
	}}
	wait := e.d.MailBackoff
	for attempt := 1; ; attempt++ {
		err := mail.Send(ctx, cfg, out)
		var me *mail.Error
		if err == nil || !errors.As(err, &me) || !me.Temporary || attempt >= e.d.MailAttempts {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait *= 2
	}
}

func clip(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}
