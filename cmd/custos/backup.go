package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"time"

	"github.com/custos-dev/custos/internal/backup"
	"github.com/custos-dev/custos/internal/pebble"
	"github.com/custos-dev/custos/internal/postgres"
)

// runBackup asks a running server for an online backup of its data store
// into a directory on the server's machine, printing its progress.
func runBackup(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("custos backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	to := fs.String("to", "", "directory to write the backup into, on the server's machine; must not exist or be empty")
	client := newOperatorClient(fs, getenv)
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if *to == "" {
		return errors.New("--to is required")
	}
	dir, err := filepath.Abs(*to)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	c, err := client()
	if err != nil {
		return err
	}
	body, _ := json.Marshal(map[string]string{"to": dir})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.server+"/admin/v1/backup", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	// A large store takes a while: no overall timeout, the server streams.
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		return fmt.Errorf("reach server: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var e struct {
			Error struct{ Message string } `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
			return fmt.Errorf("server answered %s: %s", resp.Status, e.Error.Message)
		}
		return fmt.Errorf("server answered %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var line struct {
			Progress string `json:"progress"`
			Error    string `json:"error"`
			Done     bool   `json:"done"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return fmt.Errorf("backup progress: %w", err)
		}
		switch {
		case line.Error != "":
			return fmt.Errorf("backup failed: %s", line.Error)
		case line.Done:
			fmt.Fprintf(stdout, "backup written to %s\n", dir)
			return nil
		default:
			fmt.Fprintf(stdout, "%s %s\n", time.Now().Format("15:04:05"), line.Progress)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("backup progress: %w", err)
	}
	return errors.New("the server ended the backup without saying it was done: the backup is incomplete")
}

// runRestore brings a backup's data store into a stopped node's data
// directory, to run with the node's current key store.
func runRestore(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("custos restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "backup directory written by custos backup")
	data := fs.String("data", env(getenv, "CUSTOS_DATA", "./custos-data"), "data directory of the node, server stopped (CUSTOS_DATA)")
	store := fs.String("store", env(getenv, "CUSTOS_STORE", ""), "the node's data store directory, which the backup replaces (CUSTOS_STORE; default <data>/store)")
	keys := fs.String("keys", env(getenv, "CUSTOS_KEYS", ""), "the node's current key store (CUSTOS_KEYS; default <data>/keys)")
	force := fs.Bool("force", false, "replace a data store that is not empty")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if *from == "" {
		return errors.New("--from is required")
	}
	if postgres.IsURL(*store) {
		return fmt.Errorf("--store is a PostgreSQL database (%s): custos restore brings back the embedded store only; restore PostgreSQL with its own tools (pg_restore, or a base backup with WAL replay), keeping the current key database, see docs/security.md", postgres.Redact(*store))
	}
	if *keys == "" {
		*keys = filepath.Join(*data, "keys")
	}
	if postgres.IsURL(*keys) {
		*keys = "" // a database: the server checks it when it starts
	}
	_, err := backup.Restore(ctx, backup.RestoreOptions{From: *from, DataDir: *data, Store: *store, KeysDir: *keys, Force: *force,
		Lock: pebble.LockDir,
		Progress: func(s string) {
			fmt.Fprintf(stdout, "%s %s\n", time.Now().Format("15:04:05"), s)
		}})
	return err
}
