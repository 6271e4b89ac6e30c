package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/custos-dev/custos/internal/pebble"
	"github.com/custos-dev/custos/internal/postgres"
)

// runMigrate brings the stores of a stopped node to what this build
// expects, whichever engine each is: a data directory (the embedded
// store) is rewritten to this build's key layout; a postgres:// URL, for
// --store or --keys, gets the schema migrations it lacks. A key directory
// needs none.
func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("custos migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", env(getenv, "CUSTOS_DATA", "./custos-data"), "data directory of the stopped server (CUSTOS_DATA); the embedded store is <data>/store unless --store names another")
	store := fs.String("store", env(getenv, "CUSTOS_STORE", ""), "data store: a directory (embedded store; default <data>/store) or a postgres:// URL of the data database (CUSTOS_STORE)")
	keys := fs.String("keys", env(getenv, "CUSTOS_KEYS", ""), "key store: a postgres:// URL of the key database, separate from the data database, is migrated too; a directory needs nothing (CUSTOS_KEYS)")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	keysURL := ""
	if postgres.IsURL(*keys) {
		keysURL = *keys
	}
	if !postgres.IsURL(*store) {
		dir := *store
		if dir == "" {
			dir = filepath.Join(*data, "store")
		}
		if err := pebble.Migrate(dir, pebble.Options{}, stdout); err != nil {
			return err
		}
		if keysURL == "" {
			return nil
		}
		_, kv, err := postgres.Migrate(ctx, "", keysURL)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "key database %s: %s\n", postgres.Redact(keysURL), appliedText(kv))
		return nil
	}
	if keysURL != "" && sameDatabase(*store, keysURL) {
		return fmt.Errorf("--store and --keys name the same database (%s): the keys need a separate database", postgres.Redact(*store))
	}
	db, kv, err := postgres.Migrate(ctx, *store, keysURL)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "data database %s: %s\n", postgres.Redact(*store), appliedText(db))
	if keysURL != "" {
		fmt.Fprintf(stdout, "key database %s: %s\n", postgres.Redact(keysURL), appliedText(kv))
	}
	return nil
}
