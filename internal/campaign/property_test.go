package campaign_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"pgregory.net/rapid"

	"github.com/custos-dev/custos"
)

// model is what the test believes about each user, kept beside the real
// ledger, flags and store.
type model struct {
	records map[[3]string]modelRecord // user, purpose, channel → latest
	order   int
	flags   map[string]custos.SubjectFlags
	erased  map[string]bool
	sent    map[string]int // campaign messages received (the cap counts them)
}

type modelRecord struct {
	granted bool
	order   int
}

const propCap = 2

// mayReceive is the rule the product promises, restated: not erased, not
// suppressed, restricted or objecting, the latest record deciding
// (marketing, webhook) — the exact channel's or every channel's — is a
// grant, and the daily cap is not reached.
func (m *model) mayReceive(user string) bool {
	f := m.flags[user]
	if m.erased[user] || f.Suppressed || f.Restricted || !f.ObjectedAt.IsZero() {
		return false
	}
	exact, okE := m.records[[3]string{user, "marketing", custos.ChannelWebhook}]
	all, okA := m.records[[3]string{user, "marketing", ""}]
	var decide modelRecord
	switch {
	case okE && okA:
		decide = exact
		if all.order > exact.order {
			decide = all
		}
	case okE:
		decide = exact
	case okA:
		decide = all
	default:
		return false
	}
	return decide.granted && m.sent[user] < propCap
}

// op is one change to a user's consent or standing.
type op struct {
	kind    string
	user    string
	purpose string
	channel string
}

func (o op) String() string { return fmt.Sprintf("%s(%s %s/%s)", o.kind, o.user, o.purpose, o.channel) }

var propUsers = []string{"u0", "u1", "u2"}

func drawOp(t *rapid.T, label string) op {
	return op{
		kind:    rapid.SampledFrom([]string{"grant", "withdraw", "suppress", "unsuppress", "restrict", "unrestrict", "object", "erase"}).Draw(t, label+"-kind"),
		user:    rapid.SampledFrom(propUsers).Draw(t, label+"-user"),
		purpose: rapid.SampledFrom([]string{"marketing", "marketing", "analytics"}).Draw(t, label+"-purpose"),
		channel: rapid.SampledFrom([]string{custos.ChannelWebhook, "", custos.ChannelEmail}).Draw(t, label+"-channel"),
	}
}

// apply makes the change for real and in the model.
func (e *env) apply(t tb, m *model, tn custos.TenantID, o op) {
	t.Helper()
	if m.erased[o.user] {
		return // an erased person is gone; the test does not bring them back
	}
	ctx := context.Background()
	id := custos.Identifier{Type: custos.UserID, Value: o.user}
	setFlags := func(change func(*custos.SubjectFlags)) {
		if _, err := e.pipe.SetFlags(ctx, tn, id, change); err != nil {
			t.Fatal(err)
		}
		f := m.flags[o.user]
		change(&f)
		m.flags[o.user] = f
	}
	switch o.kind {
	case "grant", "withdraw":
		e.consent(t, tn, o.user, o.purpose, o.channel, o.kind == "grant")
		m.order++
		m.records[[3]string{o.user, o.purpose, o.channel}] = modelRecord{granted: o.kind == "grant", order: m.order}
	case "suppress":
		setFlags(func(f *custos.SubjectFlags) { f.Suppressed = true })
	case "unsuppress":
		setFlags(func(f *custos.SubjectFlags) { f.Suppressed = false })
	case "restrict":
		setFlags(func(f *custos.SubjectFlags) { f.Restricted = true })
	case "unrestrict":
		setFlags(func(f *custos.SubjectFlags) { f.Restricted = false })
	case "object":
		now := e.clock.Now()
		setFlags(func(f *custos.SubjectFlags) { f.ObjectedAt = now })
	case "erase":
		// What an erasure does to the data: the key is shredded, then
		// every record deleted.
		s, err := e.reader.Find(ctx, tn, id)
		if err != nil {
			t.Fatal(err)
		}
		var hashes []custos.IdentifierHash
		for _, x := range []custos.Identifier{id, {Type: custos.Email, Value: o.user + "@example.com"}} {
			h, err := e.ring.HashIdentifier(tn, x)
			if err != nil {
				t.Fatal(err)
			}
			hashes = append(hashes, h)
		}
		if err := e.ring.Shred(ctx, tn, s); err != nil {
			t.Fatal(err)
		}
		if _, err := e.pipe.DeleteSubject(ctx, tn, s, hashes); err != nil {
			t.Fatal(err)
		}
		m.erased[o.user] = true
	}
}

// TestNoMessageWithoutCurrentGrant: over random interleavings of grants,
// withdrawals, suppressions, restrictions, objections, erasures and
// sends — some of them landing in the middle of a run, just before a
// recipient's gate — the messages that reach the webhook are exactly
// those of subjects the model says may receive one at that moment.
func TestNoMessageWithoutCurrentGrant(t *testing.T) {
	e := newEnv(t, nil)
	rapid.Check(t, func(rt *rapid.T) {
		r := newReceiver(rt, e.clock.Now)
		tn := e.webhookTenant(rt, r, fmt.Sprintf(`,"marketing_daily_cap":%d`, propCap))
		m := &model{records: map[[3]string]modelRecord{}, flags: map[string]custos.SubjectFlags{}, erased: map[string]bool{}, sent: map[string]int{}}
		subjects := map[custos.SubjectID]string{}
		for _, u := range propUsers {
			subjects[e.identify(rt, tn.ID, u, u+"@example.com", map[string]any{"first_name": u})] = u
		}
		steps := rapid.IntRange(1, 12).Draw(rt, "steps")
		for i := range steps {
			if !rapid.Bool().Draw(rt, fmt.Sprintf("send-%d", i)) {
				e.apply(rt, m, tn.ID, drawOp(rt, fmt.Sprintf("op-%d", i)))
				continue
			}
			// A send, with changes landing just before the gate of one
			// of its recipients.
			during := rapid.SliceOfN(rapid.Custom(func(t *rapid.T) op { return drawOp(t, "during") }), 0, 3).Draw(rt, fmt.Sprintf("during-%d", i))
			at := rapid.IntRange(0, len(propUsers)-1).Draw(rt, fmt.Sprintf("at-%d", i))
			expected := map[string]bool{}
			n := 0
			// The gate runs on the campaign's goroutine: failures there are
			// kept and reported from the test's.
			var inRun runFailures
			e.engine.SetBeforeGate(func(s custos.SubjectID) {
				if n == at {
					for _, o := range during {
						e.apply(&inRun, m, tn.ID, o)
					}
				}
				n++
				u := subjects[s]
				expected[u] = m.mayReceive(u)
			})
			before := len(r.messages())
			c := e.create(rt, tn, webhookCampaign(custos.Audience{}))
			done := e.sendAndWait(rt, tn, c.ID)
			e.engine.SetBeforeGate(nil)
			if msg := inRun.first(); msg != "" {
				rt.Fatalf("step %d: a change made during the run failed: %s", i, msg)
			}
			e.deliver(rt)
			got := map[string]bool{}
			for _, msg := range r.messages()[before:] {
				s, _ := custos.ParseSubjectID(msg.SubjectID)
				u := subjects[s]
				if got[u] {
					rt.Fatalf("step %d: %s received campaign %s twice", i, u, c.ID)
				}
				got[u] = true
				m.sent[u]++
				if !expected[u] {
					rt.Fatalf("step %d: %s received a message it may not receive (during %v at %d)", i, u, during, at)
				}
			}
			for u, ok := range expected {
				if ok && !got[u] {
					rt.Fatalf("step %d: %s may receive but got nothing; progress %+v", i, u, done.Progress)
				}
			}
			if done.Progress.Sent != len(got) {
				rt.Fatalf("step %d: progress says %d sent, receiver got %d", i, done.Progress.Sent, len(got))
			}
		}
		if len(r.bad) != 0 {
			rt.Fatalf("receiver refused: %v", r.bad)
		}
	})
}

// runFailures is a tb for code running on another goroutine than the
// test's: it keeps the failures for the test to report.
type runFailures struct {
	mu   sync.Mutex
	msgs []string
}

func (f *runFailures) Helper()                   {}
func (f *runFailures) Cleanup(func())            {}
func (f *runFailures) Fatal(args ...any)         { f.add(fmt.Sprint(args...)) }
func (f *runFailures) Fatalf(s string, a ...any) { f.add(fmt.Sprintf(s, a...)) }
func (f *runFailures) Errorf(s string, a ...any) { f.add(fmt.Sprintf(s, a...)) }
func (f *runFailures) add(msg string)            { f.mu.Lock(); f.msgs = append(f.msgs, msg); f.mu.Unlock() }

// first returns the first failure kept, or "".
func (f *runFailures) first() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.msgs) == 0 {
		return ""
	}
	return f.msgs[0]
}
