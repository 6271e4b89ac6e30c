package main

import (
	"context"
	crand "crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/campaign"
	"github.com/custos-dev/custos/internal/consent"
	"github.com/custos-dev/custos/internal/keyring"
	"github.com/custos-dev/custos/internal/pebble"
	"github.com/custos-dev/custos/internal/subjects"
	"github.com/custos-dev/custos/internal/tenants"
)

type benchCampaignConfig struct {
	profiles   int
	consent    float64
	suppressed float64
	dir        string
	keep       bool
	seed       uint64
	cpuProfile string
}

// runBenchCampaign builds an audience on a store of its own (no server),
// then resolves and gates it as a campaign preview or send does.
func runBenchCampaign(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c benchCampaignConfig
	fs := flag.NewFlagSet("custos bench campaign", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.profiles, "profiles", 1_000_000, "profiles to build")
	fs.Float64Var(&c.consent, "consent", 0.1, "fraction of profiles granting marketing by e-mail (MSG-email: true); a third of the rest withdraw (false), the others never answered")
	fs.Float64Var(&c.suppressed, "suppressed", 0.01, "fraction of profiles suppressed")
	fs.StringVar(&c.dir, "dir", "", "where to build the store (default: a temporary directory, removed afterwards)")
	fs.BoolVar(&c.keep, "keep", false, "keep the store in --dir for another run (a second run with the same --dir skips the build)")
	fs.Uint64Var(&c.seed, "seed", 1, "seed of the profiles' traits and choices")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the resolve-and-gate phase to this file")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if c.profiles <= 0 || c.consent < 0 || c.consent > 1 || c.suppressed < 0 || c.suppressed > 1 {
		return errors.New("--profiles must be positive; --consent and --suppressed between 0 and 1")
	}
	if c.dir == "" {
		dir, err := os.MkdirTemp("", "custos-bench-campaign-")
		if err != nil {
			return err
		}
		c.dir = dir
	}
	if !c.keep {
		defer os.RemoveAll(c.dir)
	}
	return benchCampaign(ctx, c, stdout)
}

func benchCampaign(ctx context.Context, c benchCampaignConfig, out io.Writer) error {
	master := make([]byte, 32)
	masterFile := filepath.Join(c.dir, "bench-master.key")
	if b, err := os.ReadFile(masterFile); err == nil && len(b) == 32 {
		master = b
	} else {
		crand.Read(master)
		if err := os.MkdirAll(c.dir, 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(masterFile, master, 0o600); err != nil {
			return err
		}
	}
	ks, err := pebble.OpenKeyStore(filepath.Join(c.dir, "keys"))
	if err != nil {
		return err
	}
	defer ks.Close()
	ring, err := keyring.New(ctx, ks, master, keyring.Options{})
	if err != nil {
		return err
	}
	store, err := pebble.Open(filepath.Join(c.dir, "store"), pebble.Options{})
	if err != nil {
		return err
	}
	defer store.Close()
	pipe, err := subjects.New(ctx, store, ring, subjects.Options{DedupeCapacity: 2 * c.profiles})
	if err != nil {
		return err
	}
	defer pipe.Close()
	reg, err := tenants.Load(ctx, store, ring, "eu", time.Now)
	if err != nil {
		return err
	}
	ledger := consent.New(pipe, store, ring, time.Now)
	engine := campaign.New(campaign.Deps{Store: store, Profiles: subjects.NewReader(store, ring), Gate: pipe, Consents: ledger,
		Keys: ring, Tenants: reg, PublicURL: "https://custos.example", Now: time.Now})

	var tn *custos.Tenant
	if list := reg.List(); len(list) > 0 {
		tn = list[0]
		fmt.Fprintf(out, "custos bench campaign: reusing the audience built in %s\n", c.dir)
	} else {
		if tn, err = buildAudience(ctx, c, reg, pipe, store, out); err != nil {
			return err
		}
	}

	cmp, err := engine.Create(ctx, tn, campaign.Input{Name: "bench", Purpose: "marketing", Channel: custos.ChannelEmail,
		Audience: custos.Audience{Traits: []custos.TraitCondition{{Key: "plan", Op: "exists"}}},
		Message:  custos.CampaignMessage{Subject: "Hello {{.traits.first_name}}", Body: "<p>Hi {{.traits.first_name}}</p>"}})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "resolving and gating the audience (all %d profiles; %d workers)…\n", c.profiles, runtimeProcs())
	if c.cpuProfile != "" {
		f, err := os.Create(c.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var eligible atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				fmt.Fprintf(out, "  %4.0fs  %d eligible so far\n", time.Since(start).Seconds(), eligible.Load())
			}
		}
	}()
	pv, err := engine.Evaluate(ctx, tn, cmp, func(*custos.Profile) { eligible.Add(1) })
	close(done)
	wg.Wait()
	if err != nil {
		return err
	}
	took := time.Since(start)
	fmt.Fprintf(out, "\naudience    %d\neligible    %d\n", pv.Audience, pv.Eligible)
	for _, r := range slices.Sorted(maps.Keys(pv.Excluded)) {
		if pv.Excluded[r] > 0 {
			fmt.Fprintf(out, "excluded    %-14s %d\n", r, pv.Excluded[r])
		}
	}
	verdict := "within"
	if took > 10*time.Second {
		verdict = "OVER"
	}
	fmt.Fprintf(out, "took        %s (%.0f recipients/s) — %s the 10 s target\n", took.Round(time.Millisecond), float64(pv.Audience)/took.Seconds(), verdict)
	return nil
}

// buildAudience creates a tenant and its profiles through the ingest
// pipeline, with consent carried by the MSG-email trait, and suppresses a
// fraction.
func buildAudience(ctx context.Context, c benchCampaignConfig, reg *tenants.Registry, pipe *subjects.Pipeline, store *pebble.Store, out io.Writer) (*custos.Tenant, error) {
	tn, _, err := reg.Create(ctx, "bench", "eu")
	if err != nil {
		return nil, err
	}
	if tn, _, err = reg.UpdateSettings(ctx, tn.ID, []byte(`{"smtp":{"host":"mail.example","port":587,"from":"news@example.com","region":"eu"}}`)); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "custos bench campaign: building %d profiles in %s (%.0f%% granting marketing e-mail, %.0f%% suppressed)\n",
		c.profiles, c.dir, 100*c.consent, 100*c.suppressed)
	start := time.Now()
	pol := consent.NewPolicy(&tn.Settings)
	const batch, senders = 1000, 4
	var next, built atomic.Int64
	errs := make(chan error, senders)
	var wg sync.WaitGroup
	for w := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(c.seed, uint64(w)))
			msgs := make([]custos.Message, 0, batch)
			for {
				from := int(next.Add(batch)) - batch
				if from >= c.profiles {
					return
				}
				msgs = msgs[:0]
				now := time.Now()
				for i := from; i < min(from+batch, c.profiles); i++ {
					plan := []string{"free", "pro", "team"}[rng.IntN(3)]
					email := fmt.Sprintf("person%d@example.com", i)
					// Some grant, some said no, the rest never answered.
					choice := ""
					switch x := rng.Float64(); {
					case x < c.consent:
						choice = `,"MSG-email":true`
					case x < c.consent+(1-c.consent)/3:
						choice = `,"MSG-email":false`
					}
					traits := fmt.Sprintf(`{"email":%q,"first_name":"P%d","plan":%q%s}`, email, i, plan, choice)
					msgs = append(msgs, custos.Message{Type: custos.Identify, MessageID: fmt.Sprint("bench-", i), UserID: fmt.Sprint("user-", i),
						Email: email, Traits: []byte(traits), Timestamp: now, ReceivedAt: now})
				}
				if _, err := pipe.IngestWith(ctx, tn.ID, msgs, pol); err != nil {
					errs <- err
					return
				}
				if n := built.Add(int64(len(msgs))); n%100_000 < batch {
					fmt.Fprintf(out, "  %7d profiles  %5.1fs\n", n, time.Since(start).Seconds())
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	nSup := int(c.suppressed * float64(c.profiles))
	rng := rand.New(rand.NewPCG(c.seed, 99))
	for range nSup {
		id := custos.Identifier{Type: custos.UserID, Value: fmt.Sprint("user-", rng.IntN(c.profiles))}
		if _, err := pipe.SetFlags(ctx, tn.ID, id, func(f *custos.SubjectFlags) { f.Suppressed = true }); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(out, "built in %s; flushing and compacting the store…\n", time.Since(start).Round(time.Second))
	cstart := time.Now()
	if err := store.CompactAll(ctx); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "compacted in %s\n", time.Since(cstart).Round(time.Second))
	return tn, nil
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }
