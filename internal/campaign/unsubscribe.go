package campaign

import (
	"context"
	"errors"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
)

// CheckToken opens an unsubscribe token without acting on it (the page a
// GET shows).
func (e *Engine) CheckToken(token string) (Unsubscribe, error) {
	u, err := ParseToken(e.d.Keys, token)
	if err != nil {
		return u, err
	}
	if _, ok := e.d.Tenants.Get(u.Tenant); !ok {
		return u, errBadToken
	}
	return u, nil
}

// Unsubscribe withdraws the consent a token names, at once, through the
// ledger (source unsubscribe_link), and audits it. ip and userAgent are
// the request's, kept (truncated) as the withdrawal's proof. A subject
// erased since the message was sent has nothing left to withdraw: that
// is success too.
func (e *Engine) Unsubscribe(ctx context.Context, token, ip, userAgent string) (Unsubscribe, error) {
	u, err := e.CheckToken(token)
	if err != nil {
		return u, err
	}
	if len(userAgent) > 512 {
		userAgent = userAgent[:512]
	}
	err = e.d.Consents.RecordSubject(ctx, u.Tenant, u.Subject, custos.ConsentRecord{
		Subject: u.Subject, Purpose: u.Purpose, Channel: u.Channel, Granted: false,
		Source: custos.SourceUnsubscribe, IP: ip, UserAgent: userAgent,
	})
	if custos.ErrorCode(err) == custos.NotFound || errors.Is(err, custos.ErrShredded) {
		return u, nil
	}
	if err != nil {
		return u, err
	}
	pseudonym, err := e.d.Profiles.Pseudonym(u.Tenant, u.Subject)
	if err != nil {
		return u, err
	}
	return u, e.record(ctx, u.Tenant, audit.Entry{Actor: audit.ActorSubject, Action: "consent.withdraw", Subject: pseudonym,
		Details: map[string]string{"purpose": u.Purpose, "channel": u.Channel, "source": string(custos.SourceUnsubscribe)}})
}
