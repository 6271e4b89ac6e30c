package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/retry"
)

// attempt makes one attempt at d and stores its outcome. posted reports
// whether a POST went out; err is a failure to store the outcome. If ctx
// ends during the POST nothing is stored and d stays due.
func (o *Outbox) attempt(ctx context.Context, d custos.Delivery, sealed []byte) (posted bool, err error) {
	plain, err := o.sealer.OpenTenant(d.Tenant, []byte(d.ID), sealed)
	var secret, body []byte
	if err == nil {
		secret, body, err = unpack(plain)
	}
	if err != nil {
		// The tenant's key is destroyed (the tenant was deleted) or the
		// record is damaged: no later attempt can read it either.
		d.Final, d.LastError = true, clip(fmt.Sprintf("sealed body unreadable: %v", err))
		o.log.Error("webhook delivery unreadable", o.attrs(d, "err", err)...)
		return false, o.record(ctx, d, nil)
	}

	now := o.now()
	if deadline := d.CreatedAt.Add(o.maxAge); !now.Before(deadline) {
		// Retrying for ever would hide a dead receiver: give up, and say
		// so where the request shows its deliveries.
		last := d.LastError
		if last == "" {
			last = "no attempt was made"
		}
		d.Final, d.LastError = true, clip(fmt.Sprintf("gave up: not delivered within %s of its creation (%d attempts; last: %s)", o.maxAge, d.Attempts, last))
		o.log.Warn("webhook given up for age", o.attrs(d, "max_age", o.maxAge.String())...)
		if err := o.record(ctx, d, nil); err != nil {
			return false, err
		}
		if o.onGiveUp != nil {
			o.onGiveUp(d)
		}
		return false, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(body))
	if err != nil {
		d.Final, d.LastError = true, clip(fmt.Sprintf("bad delivery URL: %v", err))
		o.log.Error("webhook delivery has a bad URL", o.attrs(d)...)
		return false, o.record(ctx, d, nil)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	if d.Signing == "" {
		req.Header.Set(HeaderSignature, Sign(secret, body, now))
	} else {
		signer := o.signers[d.Signing]
		if signer == nil {
			d.Final, d.LastError = true, clip(fmt.Sprintf("no %q signer is configured on this node", d.Signing))
			o.log.Error("webhook delivery cannot be signed", o.attrs(d)...)
			return false, o.record(ctx, d, nil)
		}
		h, err := signer.SignHeaders(body)
		if err != nil {
			// A signing key that fails now may work after a restart with
			// the right key: try again later.
			d.Attempts++
			d.LastStatus, d.LastError = 0, clip(fmt.Sprintf("sign: %v", err))
			d.NextAt = now.Add(o.backoff(d.Attempts))
			return false, o.record(ctx, d, sealed)
		}
		for k, vs := range h {
			req.Header[k] = vs
		}
	}
	req.Header.Set(HeaderDelivery, d.ID)
	req.Header.Set(HeaderKind, d.Kind)
	resp, err := o.client.Do(req)
	if err != nil && ctx.Err() != nil {
		return true, nil // shutting down: not the receiver's failure
	}
	d.Attempts++
	if err == nil {
		// Read a little of the answer so the connection can be reused.
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
	}

	keep := sealed
	switch {
	case err != nil:
		d.LastStatus, d.LastError = 0, clip(cause(err).Error())
		d.NextAt = o.now().Add(o.backoff(d.Attempts))
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		d.LastStatus, d.LastError = resp.StatusCode, ""
		d.Final, d.DeliveredAt = true, o.now()
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		d.LastStatus, d.LastError = resp.StatusCode, "receiver refused the signature"
		d.Final = true
	default:
		d.LastStatus, d.LastError = resp.StatusCode, fmt.Sprintf("receiver answered %d", resp.StatusCode)
		d.NextAt = o.now().Add(o.backoff(d.Attempts))
	}
	if !d.Final {
		// The last retry falls no later than the deadline, where the
		// delivery is given up.
		if deadline := d.CreatedAt.Add(o.maxAge); d.NextAt.After(deadline) {
			d.NextAt = deadline
		}
	}
	if d.Final {
		// Nothing will be sent again: the body, which may carry personal
		// data, and the secret need not be kept.
		keep = nil
	}
	switch {
	case d.DeliveredAt.IsZero() && d.Final:
		o.log.Warn("webhook refused", o.attrs(d)...)
	case d.Final:
		o.log.Info("webhook delivered", o.attrs(d)...)
	default:
		o.log.Warn("webhook failed, will retry", o.attrs(d, "next_at", d.NextAt, "err", d.LastError)...)
	}
	return true, o.record(ctx, d, keep)
}

// record stores the outcome of an attempt, even if ctx has just ended:
// the attempt was made, and forgetting it would repeat it needlessly.
func (o *Outbox) record(ctx context.Context, d custos.Delivery, sealed []byte) error {
	d.Body, d.Secret = nil, nil // the store gets them only sealed
	if err := o.store.PutDelivery(context.WithoutCancel(ctx), &d, sealed); err != nil {
		o.log.Error("webhook: store delivery outcome", o.attrs(d, "err", err)...)
		return fmt.Errorf("store outcome of delivery %s: %w", d.ID, err)
	}
	if o.onResult != nil {
		d.Body, d.Secret = nil, nil
		o.onResult(d)
	}
	return nil
}

// attrs are what a log line may say about a delivery: never its body,
// secret or URL, which may carry personal data or credentials.
func (o *Outbox) attrs(d custos.Delivery, more ...any) []any {
	return append([]any{"delivery", d.ID, "kind", d.Kind, "tenant", d.Tenant.String(),
		"status", d.LastStatus, "attempts", d.Attempts}, more...)
}

// backoff is the wait before attempt n+1 after n failed ones.
func (o *Outbox) backoff(n int) time.Duration { return retry.Backoff(n, o.min, o.max) }

// cause drops the method and URL net/http puts in front of its errors:
// the URL may carry a token, and the record has it anyway.
func cause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// clip shortens an error message kept in a delivery record.
func clip(s string) string {
	const n = 300
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
