package main

import (
	"context"
	"flag"
	"io"
	"path/filepath"

	"github.com/custos-dev/custos/internal/pebble"
)

// runMigrate rewrites the embedded store of a stopped server to the key
// layout of this build, printing its progress.
func runMigrate(_ context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("custos migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", env(getenv, "CUSTOS_DATA", "./custos-data"), "data directory of the stopped server (CUSTOS_DATA)")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	return pebble.Migrate(filepath.Join(*data, "store"), pebble.Options{}, stdout)
}
