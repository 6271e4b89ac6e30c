package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/pebble"
)

// benchFillConfig is what `custos bench fill` writes.
type benchFillConfig struct {
	data       string
	tenant     string
	events     int
	subjects   int
	days       int
	valueBytes int
	batch      int
	seed       uint64
	random     bool
}

// runBenchFill prefills a stopped server's store with synthetic sealed
// events, so that `custos bench ingest` can be measured with millions of
// events stored without sending them all over HTTP first.
func runBenchFill(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c benchFillConfig
	fs := flag.NewFlagSet("custos bench fill", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.data, "data", env(getenv, "CUSTOS_DATA", "./custos-data"), "data directory of a stopped server (CUSTOS_DATA)")
	fs.StringVar(&c.tenant, "tenant", "", "tenant id to fill (default: the only tenant of the store)")
	fs.IntVar(&c.events, "events", 10_000_000, "events to write")
	fs.IntVar(&c.subjects, "subjects", 0, "distinct subjects the events are spread over (default: events/10)")
	fs.IntVar(&c.days, "days", 30, "the events' times are spread over this many days before now")
	fs.IntVar(&c.valueBytes, "value-bytes", 600, "bytes of each event's (random, incompressible) sealed value")
	fs.IntVar(&c.batch, "batch", 5_000, "events per store write")
	fs.Uint64Var(&c.seed, "seed", 1, "seed of the subjects, times and values")
	fs.BoolVar(&c.random, "random-times", false, "spread the events' times at random over the days, instead of in the order they would have arrived (oldest first, an hour of jitter)")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if c.events <= 0 || c.days <= 0 || c.valueBytes <= 0 || c.batch <= 0 || c.subjects < 0 {
		return errors.New("--events, --days, --value-bytes and --batch must be positive, --subjects not negative")
	}
	if c.subjects == 0 {
		c.subjects = max(1, c.events/10)
	}
	return benchFill(ctx, c, stdout)
}

// benchFill writes c.events events through the store's Apply, in big
// batches, as the ingest writer would store them: the sealed event, its
// deduplication record, and a profile for each subject the first time it
// appears, oldest events first unless c.random. The values are random bytes, which stand for ciphertext; no
// subject key is made, so nothing of it can be read back through the API,
// but every byte of it is in the store's key space where ingestion writes.
func benchFill(ctx context.Context, c benchFillConfig, out io.Writer) error {
	st, err := pebble.Open(filepath.Join(c.data, "store"), pebble.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	tn, err := fillTenant(ctx, st, c.tenant)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(c.seed, 0x5eed))
	subjects := make([]custos.SubjectID, c.subjects)
	for i := range subjects {
		for j := range subjects[i] {
			subjects[i][j] = byte(rng.Uint32())
		}
	}
	profiled := make([]bool, c.subjects)
	now := time.Now().UTC()
	span := int64(c.days) * int64(24*time.Hour)
	value := make([]byte, c.valueBytes*c.batch)
	start, last := time.Now(), time.Now()
	fmt.Fprintf(out, "custos bench fill: %d events over %d subjects and %d days into tenant %s\n", c.events, c.subjects, c.days, tn)
	for done := 0; done < c.events; {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(c.batch, c.events-done)
		for i := range value[:n*c.valueBytes] {
			value[i] = byte(rng.Uint32())
		}
		w := &custos.Write{Tenant: tn}
		for i := range n {
			k := rng.IntN(c.subjects)
			s := subjects[k]
			// As history accrues: the events of the first day first.
			// (In floating point: span times millions of events overflows
			// an int64, which put every event on the oldest instant.)
			age := span - int64(float64(span)*float64(done+i)/float64(c.events)) + rng.Int64N(int64(time.Hour))
			if c.random {
				age = rng.Int64N(span)
			}
			at := now.Add(-time.Duration(min(age, span)))
			var id custos.MessageHash
			for j := range id {
				id[j] = byte(rng.Uint32())
			}
			v := value[i*c.valueBytes : (i+1)*c.valueBytes]
			w.Events = append(w.Events, custos.StoredEvent{Subject: s, Time: at, ID: id, Value: v})
			w.Seen = append(w.Seen, custos.Seen{ID: id, Subject: s, Time: at})
			if !profiled[k] {
				profiled[k] = true
				w.Profiles = append(w.Profiles, custos.StoredProfile{Subject: s, Value: v[:min(len(v), 200)]})
			}
		}
		wait, err := st.Apply(ctx, []*custos.Write{w})
		if err != nil {
			return fmt.Errorf("fill: %w", err)
		}
		if err := wait(); err != nil {
			return fmt.Errorf("fill: %w", err)
		}
		done += n
		if time.Since(last) >= 10*time.Second || done == c.events {
			last = time.Now()
			el := time.Since(start)
			fmt.Fprintf(out, "  %d events in %s (%.0f/s), write amplification %.2f\n", done, el.Round(time.Second), float64(done)/el.Seconds(), writeAmp(st))
		}
	}
	// The measurement that follows should start from a settled LSM, not
	// pay the fill's compaction debt; three minutes at most.
	fmt.Fprintln(out, "  waiting for compactions to settle")
	for settle := time.Now(); time.Since(settle) < 3*time.Minute && (st.Metrics().Compact.NumInProgress > 0 || st.Metrics().Compact.EstimatedDebt > 0); {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	el := time.Since(start)
	fmt.Fprintf(out, "filled %d events in %s (%.0f/s), write amplification %.2f, disk %d MiB\n",
		c.events, el.Round(time.Second), float64(c.events)/el.Seconds(), writeAmp(st), st.Metrics().DiskSpaceUsage()>>20)
	return nil
}

// writeAmp is Pebble's write amplification since the store was opened:
// bytes written to the WAL, flushed and compacted over bytes written to
// the WAL.
func writeAmp(st *pebble.Store) float64 {
	tot := st.Metrics().Total()
	return tot.WriteAmp()
}

// fillTenant returns the tenant to fill: the one named, or the only one.
func fillTenant(ctx context.Context, st *pebble.Store, id string) (custos.TenantID, error) {
	if id != "" {
		t, err := custos.ParseTenantID(id)
		if err != nil {
			return t, fmt.Errorf("--tenant: %w", err)
		}
		if _, err := st.Tenant(ctx, t); err != nil {
			return t, fmt.Errorf("--tenant %s: %w", id, err)
		}
		return t, nil
	}
	ts, err := st.Tenants(ctx)
	if err != nil {
		return custos.TenantID{}, err
	}
	if len(ts) != 1 {
		return custos.TenantID{}, fmt.Errorf("the store has %d tenants: name one with --tenant", len(ts))
	}
	return ts[0].ID, nil
}
