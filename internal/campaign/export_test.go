package campaign

import (
	"context"
	"time"

	"github.com/custos-dev/custos"
)

// SetBeforeGate makes the engine call fn just before each recipient is
// gated, so a test can land a change "during the run".
func (e *Engine) SetBeforeGate(fn func(custos.SubjectID)) { e.beforeGate = fn }

// SetBeforeRecord makes the engine call fn once a recipient passed the
// gate, just before its first send record is written.
func (e *Engine) SetBeforeRecord(fn func(custos.SubjectID)) { e.beforeRecord = fn }

// PutSending writes the record a run leaves just before a message goes,
// as if the process had died right after it.
func (e *Engine) PutSending(ctx context.Context, c *custos.Campaign, s custos.SubjectID, at time.Time) error {
	return e.putSend(ctx, c.Tenant, s, custos.SendRecord{Campaign: c.ID, Purpose: c.Purpose, Channel: c.Channel, Time: at, Status: statusSending})
}

// DeliveryID is the outbox id of a recipient's webhook message.
func DeliveryID(c *custos.Campaign, s custos.SubjectID) string { return deliveryID(c, s) }
