package campaign

import (
	"context"
	"runtime"
	"slices"
	"sync"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
)

// Preview is what sending a campaign now would do: the audience, how many
// of it may be sent to, how many are excluded and why, and a sample of
// the messages as they would be rendered.
type Preview struct {
	Audience int             `json:"audience"`
	Eligible int             `json:"eligible"`
	Excluded map[string]int  `json:"excluded"`
	Sample   []SampleMessage `json:"sample"`
}

// SampleMessage is one rendered message of a preview.
type SampleMessage struct {
	SubjectID string `json:"subject_id"`
	To        string `json:"to,omitempty"`
	Subject   string `json:"subject"`
	Body      string `json:"body"`
	Text      string `json:"text,omitempty"`
}

// DefaultSample is how many messages a preview renders.
const DefaultSample = 5

// Preview evaluates a campaign against the tenant's subjects as they are
// now, without sending: the same audience and gate as a send (flags as
// the store holds them), walked in parallel.
func (e *Engine) Preview(ctx context.Context, t *custos.Tenant, id string, sample int) (*Preview, error) {
	return e.PreviewBy(ctx, t, id, sample, audit.ActorTenant)
}

// PreviewBy is Preview with the actor its audit entry names (a person in
// the console).
func (e *Engine) PreviewBy(ctx context.Context, t *custos.Tenant, id string, sample int, actor string) (*Preview, error) {
	c, err := e.Get(ctx, t.ID, id)
	if err != nil {
		return nil, err
	}
	tpl, err := parseTemplates(c.Channel, c.Definition.Message)
	if err != nil {
		return nil, err
	}
	if sample < 0 {
		sample = DefaultSample
	}
	var mu sync.Mutex
	var picks []*custos.Profile
	pv, err := e.Evaluate(ctx, t, c, func(p *custos.Profile) {
		mu.Lock()
		defer mu.Unlock()
		picks = append(picks, p)
		// Keep the first by subject id, so a preview is repeatable.
		if len(picks) > 4*sample+16 {
			slices.SortFunc(picks, func(a, b *custos.Profile) int { return compareIDs(a.Subject, b.Subject) })
			picks = picks[:sample]
		}
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(picks, func(a, b *custos.Profile) int { return compareIDs(a.Subject, b.Subject) })
	for _, p := range picks[:min(sample, len(picks))] {
		token, err := NewToken(e.d.Keys, Unsubscribe{Tenant: t.ID, Subject: p.Subject, Purpose: c.Purpose, Channel: c.Channel})
		if err != nil {
			return nil, err
		}
		m, err := tpl.render(templateData(p, e.d.PublicURL+"/u/"+token))
		if err != nil {
			m.Body = "(does not render: " + err.Error() + ")"
		}
		pv.Sample = append(pv.Sample, SampleMessage{SubjectID: p.Subject.String(), To: toOf(c, p), Subject: m.Subject, Body: m.Body, Text: m.Text})
	}
	err = e.record(ctx, t.ID, audit.Entry{Actor: actor, Action: "campaign.preview",
		Details: map[string]any{"campaign_id": c.ID, "audience": pv.Audience, "eligible": pv.Eligible, "sample": len(pv.Sample)}})
	return pv, err
}

func toOf(c *custos.Campaign, p *custos.Profile) string {
	if c.Channel == custos.ChannelEmail {
		return address(p)
	}
	return ""
}

func compareIDs(a, b custos.SubjectID) int { return slices.Compare(a[:], b[:]) }

// Evaluate resolves the campaign's audience and gates every member, in
// parallel over ranges of subject ids, and calls eligible (from several
// goroutines) with each member that may be sent to. Flags come from a
// snapshot of the store taken first; consent and send records are read
// per subject.
func (e *Engine) Evaluate(ctx context.Context, t *custos.Tenant, c *custos.Campaign, eligible func(*custos.Profile)) (*Preview, error) {
	flags, err := e.flagsOf(ctx, t.ID)
	if err != nil {
		return nil, err
	}
	workers := runtime.GOMAXPROCS(0)
	shards := make(chan int, 64)
	for i := range 64 {
		shards <- i
	}
	close(shards)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make([]Preview, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	now := e.now().UTC()
	capN := t.Settings.DailyCap()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := &results[w]
			res.Excluded = zeroReasons()
			for sh := range shards {
				lo, hi := byte(sh*4), sh*4+4 // subject ids whose first byte is in [lo, hi)
				var after custos.SubjectID
				if lo > 0 {
					after[0] = lo - 1
					for i := 1; i < len(after); i++ {
						after[i] = 0xff
					}
				}
				err := e.eachMember(ctx, t.ID, c, after, now, func(m *member) (bool, error) {
					p := m.profile
					if int(p.Subject[0]) >= hi {
						return false, nil
					}
					in, err := e.inAudience(ctx, t.ID, &c.Definition.Audience, p, now)
					if err != nil || !in {
						return err == nil, err
					}
					res.Audience++
					if reason := quickGate(c, m, flags[p.Subject], capN); reason != "" {
						res.Excluded[reason]++
						return true, nil
					}
					res.Eligible++
					if eligible != nil {
						eligible(p)
					}
					return true, nil
				})
				if err != nil {
					errs[w] = err
					cancel()
					return
				}
			}
		}()
	}
	wg.Wait()
	out := &Preview{Excluded: zeroReasons(), Sample: []SampleMessage{}}
	for i, r := range results {
		if errs[i] != nil {
			return nil, errs[i]
		}
		out.Audience += r.Audience
		out.Eligible += r.Eligible
		for k, v := range r.Excluded {
			out.Excluded[k] += v
		}
	}
	return out, ctx.Err()
}

// quickGate is the gate on what an audience walk read: the consent
// state and send records from the same pass, flags from a snapshot. It
// decides previews; a send excludes on it (never wrongly: flags only get
// stricter between snapshot and now, or the exclusion errs on the safe
// side) and re-checks everything fresh before it sends.
func quickGate(c *custos.Campaign, m *member, flags custos.SubjectFlags, capN int) string {
	if r := Decide(m.state, flags, false, c.Purpose, c.Channel, m.today, capN); r != "" {
		return r
	}
	if c.Channel == custos.ChannelEmail && address(m.profile) == "" {
		return ReasonNoAddress
	}
	return ""
}

// flagsOf snapshots the flags of a tenant's subjects.
func (e *Engine) flagsOf(ctx context.Context, t custos.TenantID) (map[custos.SubjectID]custos.SubjectFlags, error) {
	flags := map[custos.SubjectID]custos.SubjectFlags{}
	err := e.d.Store.EachFlags(ctx, func(id custos.TenantID, r custos.FlagsRecord) error {
		if id == t {
			flags[r.Subject] = r.Flags
		}
		return nil
	})
	return flags, err
}
