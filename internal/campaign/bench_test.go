package campaign_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/campaign"
	"github.com/custos-dev/custos/internal/consent"
)

// BenchmarkGate is the decision per recipient once its inputs are read:
// consent (a realistic ledger state), suppression, restriction,
// objection, erasure and the daily cap, over 4,096 varied recipients.
func BenchmarkGate(b *testing.B) {
	type input struct {
		st     consent.State
		flags  custos.SubjectFlags
		erased bool
		today  int
	}
	rng := rand.New(rand.NewPCG(1, 2))
	channels := []string{"email", "webhook", ""}
	in := make([]input, 4096)
	for i := range in {
		var recs []custos.ConsentRecord
		for j := range rng.IntN(4) {
			recs = append(recs, custos.ConsentRecord{Purpose: "marketing", Channel: channels[rng.IntN(3)], Granted: rng.IntN(3) > 0,
				Time: time.Unix(int64(j), 0), Seq: uint64(j)})
		}
		in[i] = input{st: consent.NewState(recs), erased: rng.IntN(100) == 0, today: rng.IntN(4)}
		switch rng.IntN(50) {
		case 0:
			in[i].flags.Suppressed = true
		case 1:
			in[i].flags.Restricted = true
		case 2:
			in[i].flags.ObjectedAt = time.Unix(1, 0)
		}
	}
	b.ReportAllocs()
	n, sent := 0, 0
	for b.Loop() {
		x := &in[n&4095]
		if campaign.Decide(x.st, x.flags, x.erased, "marketing", "email", x.today, 3) == "" {
			sent++
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "recipients/s")
	_ = sent
}

// BenchmarkEvaluate resolves an audience and gates every member with the
// reads a real run makes, on a real store: each profile opened with its
// subject's key and matched, its consent ledger and send records read,
// then the decision. 20,000 profiles, 10% with an e-mail grant.
// Run with -cpu 1 for the figure per core.
func BenchmarkEvaluate(b *testing.B) {
	e := newEnv(&testing.T{}, nil)
	b.Cleanup(func() { e.close(&testing.T{}) })
	tn := e.tenant(&testing.T{}, `{"smtp":{"host":"localhost","port":25,"from":"a@b.c","region":"eu"}}`)
	const n = 20_000
	ctx := context.Background()
	now := e.clock.Now()
	batch := make([]custos.Message, 0, 500)
	for i := range n {
		traits := fmt.Sprintf(`{"email":"p%d@example.com","plan":"pro","MSG-email":%t}`, i, i%10 == 0)
		batch = append(batch, custos.Message{Type: custos.Identify, MessageID: fmt.Sprint("m", i), UserID: fmt.Sprint("u", i),
			Email: fmt.Sprintf("p%d@example.com", i), Traits: []byte(traits), Timestamp: now, ReceivedAt: now})
		if len(batch) == cap(batch) {
			if _, err := e.pipe.IngestWith(ctx, tn.ID, batch, consent.NewPolicy(&tn.Settings)); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	c, err := e.engine.Create(ctx, e.current(&testing.T{}, tn.ID), campaign.Input{Name: "bench", Purpose: "marketing", Channel: "email",
		Audience: custos.Audience{Traits: []custos.TraitCondition{{Key: "plan", Op: "eq", Value: []byte(`"pro"`)}}},
		Message:  custos.CampaignMessage{Subject: "Hi", Body: "<p>Hi {{.traits.first_name}}</p>"}})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	total := 0
	for b.Loop() {
		pv, err := e.engine.Evaluate(ctx, e.current(&testing.T{}, tn.ID), c, nil)
		if err != nil {
			b.Fatal(err)
		}
		if pv.Audience != n || pv.Eligible != n/10 {
			b.Fatalf("audience %d eligible %d, want %d and %d", pv.Audience, pv.Eligible, n, n/10)
		}
		total += pv.Audience
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "recipients/s")
}
