package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/custos-dev/custos/internal/loadgen"
)

func runBench(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "rights" {
		return runBenchRights(ctx, args[1:], getenv, stdout, stderr)
	}
	if len(args) > 0 && args[0] == "campaign" {
		return runBenchCampaign(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "fill" {
		return runBenchFill(ctx, args[1:], getenv, stdout, stderr)
	}
	if len(args) == 0 || args[0] != "ingest" {
		return errors.New("usage: custos bench ingest|fill|rights|campaign [flags]")
	}
	var c loadgen.Config
	fs := flag.NewFlagSet("custos bench ingest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Server, "server", env(getenv, "CUSTOS_SERVER", "http://127.0.0.1:8080"), "server URL (CUSTOS_SERVER)")
	fs.StringVar(&c.WriteKey, "write-key", getenv("CUSTOS_WRITE_KEY"), "tenant write key (CUSTOS_WRITE_KEY)")
	fs.IntVar(&c.Events, "events", 1_000_000, "events to send")
	fs.DurationVar(&c.Duration, "duration", 0, "run for this long instead of a fixed number of events")
	fs.IntVar(&c.Batch, "batch", 100, "events per request (1 sends POST /v1/track)")
	fs.IntVar(&c.Concurrency, "concurrency", 16, "concurrent senders")
	fs.IntVar(&c.Users, "users", 10_000, "distinct users")
	fs.BoolVar(&c.Gzip, "gzip", false, "gzip request bodies")
	fs.Int64Var(&c.Seed, "seed", time.Now().UnixNano(), "payload seed")
	if help, err := parseFlags(fs, args[1:]); help || err != nil {
		return err
	}
	if c.WriteKey == "" {
		return errors.New("--write-key is required (create a tenant with: custos tenant create --name bench)")
	}
	if c.Duration > 0 && !isFlagSet(fs, "events") {
		c.Events = 0
	}
	fmt.Fprintf(stdout, "custos bench ingest: %s, batch %d, concurrency %d, users %d\n", c.Server, c.Batch, c.Concurrency, c.Users)
	res, err := loadgen.Run(ctx, c, stdout)
	res.Format(stdout)
	return err
}

func isFlagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func runBenchRights(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c loadgen.RightsConfig
	fs := flag.NewFlagSet("custos bench rights", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Server, "server", env(getenv, "CUSTOS_SERVER", "http://127.0.0.1:8080"), "server URL (CUSTOS_SERVER)")
	fs.StringVar(&c.WriteKey, "write-key", getenv("CUSTOS_WRITE_KEY"), "tenant write key (CUSTOS_WRITE_KEY)")
	fs.StringVar(&c.SecretKey, "secret-key", getenv("CUSTOS_SECRET_KEY"), "tenant secret key (CUSTOS_SECRET_KEY)")
	fs.IntVar(&c.EraseEvents, "erase-events", 10_000, "events of each subject erased")
	fs.IntVar(&c.Erasures, "erasures", 5, "subjects erased")
	fs.IntVar(&c.ExportEvents, "export-events", 1_000, "events of the subject exported")
	fs.IntVar(&c.Exports, "exports", 20, "exports timed")
	fs.IntVar(&c.LargeExport, "large-export", 100_000, "events of one large subject exported once (0 skips)")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if c.WriteKey == "" || c.SecretKey == "" {
		return errors.New("--write-key and --secret-key are required")
	}
	res, err := loadgen.Rights(ctx, c, stdout)
	if err != nil {
		return err
	}
	res.Format(stdout)
	return nil
}
