package rights

import (
	"context"
	"encoding/json"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
	"github.com/custos-dev/custos/internal/certificate"
	"github.com/custos-dev/custos/internal/forward"
	"github.com/custos-dev/custos/internal/opendsr"
)

// Outbox delivers signed notices durably (webhook.Outbox satisfies it).
type Outbox interface {
	Enqueue(ctx context.Context, d custos.Delivery) (custos.Delivery, error)
}

// notice is what a recipient is told (Art. 19): which right, about whom,
// and for rectification the traits that changed. It names the person —
// the recipient needs that to act — so it is sealed at rest in the outbox.
type notice struct {
	Type        custos.RequestType         `json:"type"`
	RequestID   string                     `json:"request_id"`
	TenantID    string                     `json:"tenant_id"`
	Identifiers []identifierJSON           `json:"identifiers"`
	Traits      map[string]json.RawMessage `json:"traits,omitempty"`
	Restricted  *bool                      `json:"restricted,omitempty"`
	At          time.Time                  `json:"at"`
}

type identifierJSON struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// notifyRecipients queues a notice of the request to every recipient of
// the tenant. It is called while the identifiers are still known in the
// clear, before an erasure destroys them.
func (e *Engine) notifyRecipients(ctx context.Context, r *custos.Request, ids []custos.Identifier, extra func(*notice)) error {
	if e.recipients == nil || e.outbox == nil {
		return nil
	}
	list, err := e.recipients.Recipients(ctx, r.Tenant)
	if err != nil || len(list) == 0 {
		return err
	}
	n := notice{Type: r.Type, RequestID: r.ID, TenantID: r.Tenant.String(), At: e.now().UTC()}
	for _, id := range ids {
		n.Identifiers = append(n.Identifiers, identifierJSON{id.Type.String(), id.Value})
	}
	if extra != nil {
		extra(&n)
	}
	body, err := json.Marshal(n)
	if err != nil {
		return err
	}
	region, settings := e.tenantOf(r.Tenant)
	for _, rc := range list {
		// A recipient outside the region, once transfers are forbidden, is
		// told nothing; the audit log says why.
		if err := settings.CheckDestination(region, "recipient "+rc.Name, rc.Region); err != nil {
			if _, aerr := e.audit.Record(ctx, r.Tenant, audit.Entry{Actor: audit.ActorSystem, Action: "recipient.skipped", RequestID: r.ID,
				Details: map[string]string{"recipient": rc.Name, "region": rc.Region, "reason": custos.ErrorMessage(err)}}); aerr != nil {
				return aerr
			}
			continue
		}
		if rc.Kind == custos.RecipientOpenDSR {
			continue // forwarded over OpenDSR instead: see internal/forward
		}
		secret, err := e.recipientSecret(rc)
		if err != nil {
			return err
		}
		_, err = e.outbox.Enqueue(ctx, custos.Delivery{
			Tenant: r.Tenant, Kind: "recipient." + string(r.Type), RequestID: r.ID,
			Target: rc.Name, URL: rc.URL, Secret: secret, Body: body,
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// outcomes reads what became of a request's notices.
func (e *Engine) outcomes(ctx context.Context, r *custos.Request) ([]certificate.Outcome, error) {
	out := []certificate.Outcome{}
	if e.deliveries == nil {
		return append(out, forward.Outcomes(r)...), nil
	}
	ds, err := e.deliveries.Deliveries(ctx, r.Tenant, r.ID)
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		if isCallback(d) {
			continue
		}
		out = append(out, outcomeOf(d, d.Target))
	}
	return append(out, forward.Outcomes(r)...), nil
}

// isCallback tells a status callback to the requester from a notice to a
// recipient.
func isCallback(d custos.Delivery) bool {
	return d.Target == "callback" || d.Kind == opendsr.CallbackKind
}

func outcomeOf(d custos.Delivery, name string) certificate.Outcome {
	o := certificate.Outcome{Recipient: name, Status: "pending", At: d.DeliveredAt}
	switch {
	case !d.DeliveredAt.IsZero():
		o.Status = "delivered"
	case d.Final:
		o.Status, o.Detail = "refused", d.LastError
	case d.Attempts > 0:
		o.Status, o.Detail = "retrying", d.LastError
	}
	return o
}

// Callbacks reports what became of a request's status callbacks, each
// named by its URL: a controller that refused a signature (401, 403) shows
// as refused, for good.
func (e *Engine) Callbacks(ctx context.Context, r *custos.Request) ([]certificate.Outcome, error) {
	out := []certificate.Outcome{}
	if e.deliveries == nil {
		return out, nil
	}
	ds, err := e.deliveries.Deliveries(ctx, r.Tenant, r.ID)
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		if isCallback(d) {
			out = append(out, outcomeOf(d, d.URL))
		}
	}
	return out, nil
}
