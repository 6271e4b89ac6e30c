package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

const usage = `custos — a GDPR-first customer data platform

Usage:
  custos serve [flags]                           run the server
  custos tenant create|list|rotate-keys|delete   manage tenants on a running server
  custos incident open|update|close|list|show    register breaches and notify tenants (Art. 33)
  custos keys rotate-master|new-master-key       rotate the master key (server stopped)
  custos migrate [--store DIR|URL] [--keys URL]  rewrite a stopped server's embedded store to this build's layout, or apply the PostgreSQL schema migrations
  custos audit verify [--tenant ID]              download and verify audit chains against a signed checkpoint
  custos certificate verify FILE                 verify an erasure certificate offline
  custos bench ingest|fill|rights|campaign       load-test ingestion (fill: prefill a stopped store), erasure and access, or a campaign audience
  custos help                                    this text

Run "custos COMMAND -h" for the flags of a command.
`

// run is the whole program; main only supplies the process's context,
// arguments, environment and streams, so tests can call it too.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], getenv, stdout, stderr)
	case "tenant":
		return runTenant(ctx, args[1:], getenv, stdout, stderr)
	case "incident":
		return runIncident(ctx, args[1:], getenv, stdout, stderr)
	case "keys":
		return runKeys(ctx, args[1:], getenv, stdout, stderr)
	case "migrate":
		return runMigrate(ctx, args[1:], getenv, stdout, stderr)
	case "bench":
		return runBench(ctx, args[1:], getenv, stdout, stderr)
	case "audit":
		return runAudit(ctx, args[1:], getenv, stdout, stderr)
	case "certificate":
		return runCertificate(ctx, args[1:], getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// env returns the environment variable if set, else def: every flag
// takes its default from the environment.
func env(getenv func(string) string, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}

// parseFlags parses args, treating -h as success after printing usage.
func parseFlags(fs *flag.FlagSet, args []string) (help bool, err error) {
	err = fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return true, nil
	}
	if err == nil && fs.NArg() > 0 {
		return false, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	return false, err
}
