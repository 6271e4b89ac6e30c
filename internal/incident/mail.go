package incident

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
	"github.com/custos-dev/custos/internal/mail"
	"github.com/custos-dev/custos/internal/retry"
)

// pollInterval is how often an idle Run looks for e-mail due (another
// node may share the store).
const pollInterval = time.Minute

// Kick wakes Run to look for e-mail due now. It never blocks.
func (r *Register) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run sends the e-mails due until ctx is done: at once, after each Kick,
// when the earliest retry is due, and every minute. Pending e-mails live
// in the notification records, so a restart loses none. Without an SMTP
// server it returns at once and they wait. A failed pass is logged and
// retried; Run returns nil.
func (r *Register) Run(ctx context.Context) error {
	if r.mail == nil {
		return nil
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.kick:
		case <-timer.C:
		}
		next, err := r.DeliverMail(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait := pollInterval
		if err != nil {
			r.log.Error("incident e-mail pass failed", "err", err)
			wait = r.min
		} else if !next.IsZero() {
			wait = min(max(next.Sub(r.now()), 10*time.Millisecond), pollInterval)
		}
		timer.Reset(wait)
	}
}

type dueMail struct {
	inc  *custos.Incident
	t    custos.TenantID
	kind string
	seq  int
}

// DeliverMail makes one attempt at every e-mail due now (what Run does
// each time it wakes) and returns when the next retry is due (zero: none
// waits). It returns the first error reading or storing a record.
func (r *Register) DeliverMail(ctx context.Context) (next time.Time, err error) {
	if r.mail == nil {
		return time.Time{}, nil
	}
	incs, err := r.store.Incidents(ctx)
	if err != nil {
		return time.Time{}, err
	}
	now := r.now()
	var due []dueMail
	for _, inc := range incs {
		for _, t := range inc.Tenants {
			n, err := r.store.IncidentNotification(ctx, t, inc.ID)
			if custos.ErrorCode(err) == custos.NotFound {
				continue
			}
			if err != nil {
				return time.Time{}, err
			}
			for _, m := range n.Messages {
				c := m.Channel(custos.ChannelEmail)
				if c == nil || c.Final() {
					continue
				}
				if c.NextAt.After(now) {
					if next.IsZero() || c.NextAt.Before(next) {
						next = c.NextAt
					}
					continue
				}
				due = append(due, dueMail{inc, t, m.Kind, m.Seq})
			}
		}
	}
	var first error
	for _, d := range due {
		if ctx.Err() != nil {
			return next, ctx.Err()
		}
		retry, err := r.sendMail(ctx, d)
		if err != nil && first == nil {
			first = err
		}
		if !retry.IsZero() && (next.IsZero() || retry.Before(next)) {
			next = retry
		}
	}
	return next, first
}

// sendMail makes one attempt at one e-mail and records it; retry is when
// the next attempt is due (zero: none).
func (r *Register) sendMail(ctx context.Context, d dueMail) (retry time.Time, err error) {
	n, err := r.store.IncidentNotification(ctx, d.t, d.inc.ID)
	if err != nil {
		return time.Time{}, err
	}
	ten, ok := r.tenants.Get(d.t)
	if !ok {
		return time.Time{}, nil
	}
	to := ten.Settings.SecurityContactEmail
	var sendErr error
	if to == "" {
		sendErr = &mail.Error{Err: errors.New("the tenant removed its security_contact_email")}
	} else {
		m := custos.IncidentMessage{Kind: d.kind, Seq: d.seq}
		sendErr = mail.Send(ctx, *r.mail, r.message(to, d.inc, n, m))
		if sendErr != nil && ctx.Err() != nil {
			return time.Time{}, nil // shutting down: not the server's failure; still due
		}
	}
	att := custos.DeliveryAttempt{At: r.now().UTC(), OK: sendErr == nil}
	status := custos.DeliveryDelivered
	if sendErr != nil {
		att.Error = clip(sendErr.Error())
		status = custos.DeliveryRetrying
		var me *mail.Error
		if errors.As(sendErr, &me) && !me.Temporary {
			status = custos.DeliveryRefused
		}
	}
	err = r.updateChannel(ctx, d.t, d.inc.ID, func(n *custos.IncidentNotification) *custos.ChannelDelivery {
		if m := n.Message(d.kind, d.seq); m != nil {
			return m.Channel(custos.ChannelEmail)
		}
		return nil
	}, func(c *custos.ChannelDelivery) {
		c.Attempts = append(c.Attempts, att)
		c.Status, c.NextAt = status, time.Time{}
		switch status {
		case custos.DeliveryDelivered:
			c.DeliveredAt = att.At
		case custos.DeliveryRetrying:
			c.NextAt = att.At.Add(r.backoff(len(c.Attempts)))
			retry = c.NextAt
		}
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("store e-mail attempt: %w", err)
	}
	r.log.Info("incident e-mail attempt", "incident", d.inc.ID, "tenant", d.t.String(), "kind", d.kind, "status", status)
	err = r.record(ctx, d.t, audit.Entry{Actor: audit.ActorSystem, Action: "incident.delivery", RequestID: d.inc.ID,
		Details: map[string]any{"incident": d.inc.ID, "kind": d.kind, "seq": d.seq, "channel": custos.ChannelEmail,
			"status": status, "error": att.Error}})
	return retry, err
}

// message writes the e-mail of one incident message.
func (r *Register) message(to string, inc *custos.Incident, n *custos.IncidentNotification, m custos.IncidentMessage) mail.Message {
	p := r.payload(inc, n, m)
	var b strings.Builder
	subject := "[Custos] Personal data breach " + inc.ID
	switch m.Kind {
	case custos.IncidentMessageOpened:
		subject += ": notification (GDPR Art. 33(2))"
		fmt.Fprintf(&b, "Your processor has registered a personal data breach that concerns your data.\n\n")
	case custos.IncidentMessageUpdated:
		subject += fmt.Sprintf(": update %d", m.Seq)
		if p.Update != nil {
			fmt.Fprintf(&b, "Update %d (%s):\n%s\n\n", m.Seq, p.Update.At.Format(time.RFC3339), p.Update.Message)
		}
	case custos.IncidentMessageClosed:
		subject += ": closed"
		fmt.Fprintf(&b, "The incident is closed (%s):\n%s\n\n", inc.ClosedAt.Format(time.RFC3339), inc.ClosingNote)
	}
	fmt.Fprintf(&b, "Incident:             %s\nDetected at:          %s\nNature:               %s\nData categories:      %s\n",
		inc.ID, inc.DetectedAt.Format(time.RFC3339), inc.Nature, strings.Join(inc.DataCategories, ", "))
	fmt.Fprintf(&b, "Encrypted:            %t (keys safe: %t)\nLikely consequences:  %s\nMeasures taken:       %s\nContact point:        %s\n\n",
		inc.Encrypted, inc.KeysSafe, inc.Consequences, inc.Measures, inc.ContactPoint)
	fmt.Fprintf(&b, "Approximately %d data subjects and %d records of yours are in scope.\n", n.Subjects, n.Records)
	fmt.Fprintf(&b, "You were notified at %s. If you must tell your supervisory authority (Art. 33(1)), do so by %s (72 hours).\n\n",
		n.NotifiedAt.Format(time.RFC3339), p.Deadline.DeadlineAt.Format(time.RFC3339))
	fmt.Fprintf(&b, "With your secret key: GET %s (details), POST %s/acknowledge, GET %s/affected-subjects, GET %s/notice (draft notice to the people affected).\n",
		p.API, p.API, p.API, p.API)
	return mail.Message{To: to, Subject: subject, Text: b.String(),
		Headers: []mail.Header{{Name: "X-Custos-Incident", Value: inc.ID}, {Name: "X-Custos-Kind", Value: m.Kind}}}
}

// backoff is the wait before attempt n+1 after n failed ones.
func (r *Register) backoff(n int) time.Duration { return retry.Backoff(n, r.min, r.max) }

// clip shortens an error message kept in a record.
func clip(s string) string {
	const n = 300
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
