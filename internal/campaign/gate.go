package campaign

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/consent"
)

// The exclusion reasons beyond the consent ledger's.
const (
	// ReasonFrequencyCap: the subject already received the tenant's daily
	// cap of campaign messages (Settings.DailyCap) this UTC day.
	ReasonFrequencyCap = "frequency_cap"
	// ReasonNoAddress: an e-mail campaign and the subject has no e-mail
	// address.
	ReasonNoAddress = "no_address"
)

// Reasons lists every exclusion reason, in the order the gate checks them.
var Reasons = func() []string {
	var rs []string
	for _, r := range consent.Reasons {
		rs = append(rs, string(r))
	}
	return append(rs, ReasonFrequencyCap, ReasonNoAddress)
}()

func zeroReasons() map[string]int {
	m := make(map[string]int, len(Reasons))
	for _, r := range Reasons {
		m[r] = 0
	}
	return m
}

// Decide is the gate for one message: the consent ledger's decision
// (erased, suppressed, restricted, objected, withdrawn, no consent), then
// the frequency cap — every campaign message counts, since each one a
// controller sends to engage a person is direct marketing. dailyCap < 0
// means no cap. It returns "" when the message may go. It is pure and
// does not allocate.
func Decide(st consent.State, flags custos.SubjectFlags, erased bool, purpose, channel string, sentToday, dailyCap int) string {
	if r := consent.Decide(st, flags, erased, purpose, channel); r != consent.OK {
		return string(r)
	}
	if dailyCap >= 0 && sentToday >= dailyCap {
		return ReasonFrequencyCap
	}
	return ""
}

// dayStart is the start of t's UTC day, where the cap's count begins.
func dayStart(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// Send record statuses.
const (
	statusSending = "sending" // written before the message goes
	statusSent    = "sent"
	statusFailed  = "failed"
)

// putSend seals and stores a send record in the subject's data.
func (e *Engine) putSend(ctx context.Context, t custos.TenantID, s custos.SubjectID, r custos.SendRecord) error {
	ss, err := e.sealSend(ctx, t, s, r)
	if err != nil {
		return err
	}
	return e.d.Store.PutSend(ctx, t, ss)
}

// putFirstSend stores a recipient's first send record of the campaign
// unless the subject got dailyCap messages of other campaigns since the
// start of the record's UTC day: the store counts and writes in one
// atomic step, so campaigns run at once by several nodes cannot pass the
// cap between them (custos.ErrCapReached).
func (e *Engine) putFirstSend(ctx context.Context, t custos.TenantID, s custos.SubjectID, r custos.SendRecord, dailyCap int) error {
	ss, err := e.sealSend(ctx, t, s, r)
	if err != nil {
		return err
	}
	return e.d.Store.PutSendCapped(ctx, t, ss, dayStart(r.Time), dailyCap)
}

func (e *Engine) sealSend(ctx context.Context, t custos.TenantID, s custos.SubjectID, r custos.SendRecord) (custos.StoredSend, error) {
	plain, err := json.Marshal(r)
	if err != nil {
		return custos.StoredSend{}, fmt.Errorf("encode send record: %w", err)
	}
	sealed, err := e.d.Keys.Seal(ctx, t, s, custos.SendRecordKey(r.Campaign, r.Time), plain)
	if err != nil {
		return custos.StoredSend{}, err
	}
	return custos.StoredSend{Subject: s, Time: r.Time, Campaign: r.Campaign, Value: sealed}, nil
}

func (e *Engine) openSend(ctx context.Context, t custos.TenantID, ss custos.StoredSend) (custos.SendRecord, error) {
	var r custos.SendRecord
	plain, err := e.d.Keys.Open(ctx, t, ss.Subject, custos.SendRecordKey(ss.Campaign, ss.Time), ss.Value)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(plain, &r); err != nil {
		return r, fmt.Errorf("decode send record: %w", err)
	}
	return r, nil
}

// Sends returns every message sent to a subject, oldest first: the
// processing record its access export shows. NotFound if the subject's
// key is gone.
func (e *Engine) Sends(ctx context.Context, t custos.TenantID, s custos.SubjectID) ([]custos.SendRecord, error) {
	out := []custos.SendRecord{}
	err := e.d.Store.Sends(ctx, t, s, time.Time{}, func(ss custos.StoredSend) (bool, error) {
		r, err := e.openSend(ctx, t, ss)
		if err != nil {
			return false, err
		}
		out = append(out, r)
		return true, nil
	})
	if errors.Is(err, custos.ErrShredded) || errors.Is(err, custos.ErrNotFound) {
		return nil, custos.Errorf(custos.NotFound, "no subject %s", s)
	}
	return out, err
}

// history is what the send records say about one subject for a gate:
// how many campaign messages it got today, and this campaign's own
// record, if a run before a restart wrote one.
type history struct {
	today int
	own   *custos.StoredSend
}

func (e *Engine) history(ctx context.Context, t custos.TenantID, s custos.SubjectID, c *custos.Campaign, now time.Time) (history, error) {
	var h history
	start := dayStart(now)
	since := start
	if !c.Progress.StartedAt.IsZero() && c.Progress.StartedAt.Before(since) {
		since = c.Progress.StartedAt
	}
	err := e.d.Store.Sends(ctx, t, s, since, func(ss custos.StoredSend) (bool, error) {
		if ss.Campaign == c.ID {
			own := ss
			h.own = &own
		}
		if !ss.Time.Before(start) && ss.Campaign != c.ID {
			h.today++
		}
		return true, nil
	})
	return h, err
}
