package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/keyring"
	"github.com/custos-dev/custos/internal/pebble"
	"github.com/custos-dev/custos/internal/postgres"
)

// benchFillConfig is what `custos bench fill` writes.
type benchFillConfig struct {
	data, store, keys, masterKeyFile string

	tenant      string
	events      int
	subjects    int
	days        int
	valueBytes  int
	batch       int
	writers     int
	seed        uint64
	random      bool
	subjectKeys bool
}

// runBenchFill prefills a stopped server's store with synthetic sealed
// events, so that `custos bench ingest` can be measured with millions of
// events stored without sending them all over HTTP first.
func runBenchFill(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c benchFillConfig
	fs := flag.NewFlagSet("custos bench fill", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.data, "data", env(getenv, "CUSTOS_DATA", "./custos-data"), "data directory of a stopped server (CUSTOS_DATA)")
	fs.StringVar(&c.store, "store", env(getenv, "CUSTOS_STORE", ""), "data store of the stopped server(s): a directory or a postgres:// URL, as serve's (CUSTOS_STORE; default <data>/store)")
	fs.StringVar(&c.keys, "keys", env(getenv, "CUSTOS_KEYS", ""), "key store, as serve's: a directory or a postgres:// URL (CUSTOS_KEYS; default <data>/keys)")
	fs.StringVar(&c.masterKeyFile, "master-key-file", env(getenv, "CUSTOS_MASTER_KEY_FILE", ""), "file holding the base64 master key, as serve's; needed only for a PostgreSQL key store (CUSTOS_MASTER_KEY_FILE; or CUSTOS_MASTER_KEY itself)")
	fs.StringVar(&c.tenant, "tenant", "", "tenant id to fill (default: the only tenant of the store)")
	fs.IntVar(&c.events, "events", 10_000_000, "events to write")
	fs.IntVar(&c.subjects, "subjects", 0, "distinct subjects the events are spread over (default: events/10)")
	fs.IntVar(&c.days, "days", 30, "the events' times are spread over this many days before now")
	fs.IntVar(&c.valueBytes, "value-bytes", 600, "bytes of each event's (random, incompressible) sealed value")
	fs.IntVar(&c.batch, "batch", 5_000, "events per store write")
	fs.IntVar(&c.writers, "writers", 2, "store writes in flight at once")
	fs.Uint64Var(&c.seed, "seed", 1, "seed of the subjects, times and values")
	fs.BoolVar(&c.random, "random-times", false, "spread the events' times at random over the days, instead of in the order they would have arrived (oldest first, an hour of jitter)")
	fs.BoolVar(&c.subjectKeys, "subject-keys", true, "also store a (random) wrapped key for each subject in the key store, as ingestion does")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if c.events <= 0 || c.days <= 0 || c.valueBytes <= 0 || c.batch <= 0 || c.writers <= 0 || c.subjects < 0 {
		return errors.New("--events, --days, --value-bytes, --batch and --writers must be positive, --subjects not negative")
	}
	if c.subjects == 0 {
		c.subjects = max(1, c.events/10)
	}
	var master []byte
	if postgres.IsURL(c.keys) {
		// A PostgreSQL key store seals its epoch keys under the master key.
		m, _, err := keyring.LoadMasterKey(getenv, c.masterKeyFile, c.data, nil)
		if err != nil {
			return err
		}
		master = m
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	sts, err := openStores(ctx, c.store, c.keys, c.data, master, pebble.Options{}, log, nil)
	if err != nil {
		return err
	}
	defer sts.Close(log)
	return benchFill(ctx, c, sts, stdout)
}

// fillLinkHash is the identifier hash the fill links to subject s: a
// function of s, so that a test can look it up.
func fillLinkHash(s custos.SubjectID) custos.IdentifierHash {
	return sha256.Sum256(append([]byte("custos bench fill "), s[:]...))
}

// benchFill writes c.events events through the store's Apply, in big
// batches (c.writers at once), as the ingest writer would store them: the
// sealed event, its deduplication record, and for each subject the first
// time it appears a profile and the link of one identifier; then, with
// c.subjectKeys, a wrapped key per subject in the key store. Events come
// oldest first unless c.random. The values and keys are random bytes,
// which stand for ciphertext, so nothing of it can be read back through
// the API, but every byte of it is where ingestion writes, in either
// store.
func benchFill(ctx context.Context, c benchFillConfig, sts *stores, out io.Writer) error {
	st := sts.data
	tn, err := fillTenant(ctx, st, c.tenant)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(c.seed, 0x5eed))
	bytesRng := rand.NewChaCha8([32]byte{byte(c.seed), byte(c.seed >> 8), byte(c.seed >> 16), byte(c.seed >> 24), byte(c.seed >> 32), byte(c.seed >> 40), byte(c.seed >> 48), byte(c.seed >> 56)})
	subjects := make([]custos.SubjectID, c.subjects)
	for i := range subjects {
		bytesRng.Read(subjects[i][:])
	}
	profiled := make([]bool, c.subjects)
	now := time.Now().UTC()
	span := int64(c.days) * int64(24*time.Hour)
	start := time.Now()
	fmt.Fprintf(out, "custos bench fill: %d events over %d subjects and %d days into tenant %s (%s store %s)\n", c.events, c.subjects, c.days, tn, sts.engine, sts.dataDesc)

	// One goroutine makes the batches in order (the seed fixes them);
	// c.writers apply them.
	var written atomic.Int64
	writes := make(chan *custos.Write, c.writers)
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for range c.writers {
		wg.Go(func() {
			for w := range writes {
				wait, err := st.Apply(wctx, []*custos.Write{w})
				if err == nil {
					err = wait()
				}
				if err != nil {
					cancel(fmt.Errorf("fill: %w", err))
					return
				}
				written.Add(int64(len(w.Events)))
			}
		})
	}
	stopProgress := fillProgress(out, "events", start, &written, func() string {
		if sts.pebble != nil {
			return fmt.Sprintf(", write amplification %.2f", writeAmp(sts.pebble))
		}
		return ""
	})
	for done := 0; done < c.events && wctx.Err() == nil; {
		n := min(c.batch, c.events-done)
		value := make([]byte, n*c.valueBytes)
		bytesRng.Read(value)
		w := &custos.Write{Tenant: tn, Events: make([]custos.StoredEvent, 0, n), Seen: make([]custos.Seen, 0, n)}
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
			bytesRng.Read(id[:])
			v := value[i*c.valueBytes : (i+1)*c.valueBytes]
			w.Events = append(w.Events, custos.StoredEvent{Subject: s, Time: at, ID: id, Value: v})
			w.Seen = append(w.Seen, custos.Seen{ID: id, Subject: s, Time: at})
			if !profiled[k] {
				profiled[k] = true
				w.Profiles = append(w.Profiles, custos.StoredProfile{Subject: s, Value: v[:min(len(v), 200)]})
				w.Links = append(w.Links, custos.Link{Hash: fillLinkHash(s), Subject: s})
			}
		}
		select {
		case writes <- w:
			done += n
		case <-wctx.Done():
		}
	}
	close(writes)
	wg.Wait()
	stopProgress()
	if err := context.Cause(wctx); err != nil {
		return err
	}
	if c.subjectKeys {
		var keyed []custos.SubjectID
		for k, ok := range profiled {
			if ok {
				keyed = append(keyed, subjects[k])
			}
		}
		if err := fillSubjectKeys(ctx, sts.keys, tn, keyed, bytesRng, out); err != nil {
			return err
		}
	}
	if sts.pebble != nil {
		// The measurement that follows should start from a settled LSM,
		// not pay the fill's compaction debt; three minutes at most.
		fmt.Fprintln(out, "  waiting for compactions to settle")
		p := sts.pebble
		for settle := time.Now(); time.Since(settle) < 3*time.Minute && (p.Metrics().Compact.NumInProgress > 0 || p.Metrics().Compact.EstimatedDebt > 0); {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
		}
		el := time.Since(start)
		fmt.Fprintf(out, "filled %d events in %s (%.0f/s), write amplification %.2f, disk %d MiB\n",
			c.events, el.Round(time.Second), float64(c.events)/el.Seconds(), writeAmp(p), p.Metrics().DiskSpaceUsage()>>20)
		return nil
	}
	el := time.Since(start)
	fmt.Fprintf(out, "filled %d events in %s (%.0f/s)\n", c.events, el.Round(time.Second), float64(c.events)/el.Seconds())
	return nil
}

// fillProgress prints how many of what are written every ten seconds
// and once more when stopped.
func fillProgress(out io.Writer, what string, start time.Time, written *atomic.Int64, extra func() string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	line := func() {
		n := written.Load()
		el := time.Since(start)
		fmt.Fprintf(out, "  %d %s in %s (%.0f/s)%s\n", n, what, el.Round(time.Second), float64(n)/el.Seconds(), extra())
	}
	wg.Go(func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				line()
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
		line()
	}
}

// fillSubjectKeys stores a random 61-byte wrapped key (the length of a
// real one) for each subject, sixteen puts at a time: a key store commits
// each put, as ingestion's first event of a subject does.
func fillSubjectKeys(ctx context.Context, ks custos.KeyStore, t custos.TenantID, ss []custos.SubjectID, r *rand.ChaCha8, out io.Writer) error {
	fmt.Fprintf(out, "  %d subject keys\n", len(ss))
	start := time.Now()
	keys := make([]byte, 61*len(ss))
	r.Read(keys)
	var next, put atomic.Int64
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(ss) || ctx.Err() != nil {
					return
				}
				wait, err := ks.PutSubjectKey(ctx, t, ss[i], keys[i*61:(i+1)*61])
				if err == nil {
					err = wait()
				}
				if err != nil {
					cancel(fmt.Errorf("fill subject keys: %w", err))
					return
				}
				put.Add(1)
			}
		})
	}
	stop := fillProgress(out, "subject keys", start, &put, func() string { return "" })
	wg.Wait()
	stop()
	return context.Cause(ctx)
}

// writeAmp is Pebble's write amplification since the store was opened:
// bytes written to the WAL, flushed and compacted over bytes written to
// the WAL.
func writeAmp(st *pebble.Store) float64 {
	tot := st.Metrics().Total()
	return tot.WriteAmp()
}

// fillTenant returns the tenant to fill: the one named, or the only one.
func fillTenant(ctx context.Context, st custos.TenantStore, id string) (custos.TenantID, error) {
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
