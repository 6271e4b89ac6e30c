package main

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/custos-dev/custos/internal/pebble"
)

// TestIngestWindowDefaults: without --ingest-window the window follows the
// data store (128 on the embedded store, 1024 on PostgreSQL); one that is
// set is kept on both; a chunk larger than the window in force is refused
// with both figures named.
func TestIngestWindowDefaults(t *testing.T) {
	parse := func(args ...string) *limitFlags {
		t.Helper()
		var errs []error
		f := &limitFlags{}
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		f.register(fs, envDefaults{getenv: func(string) string { return "" }, errs: &errs})
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		if err := f.check(); err != nil {
			t.Fatalf("check %v: %v", args, err)
		}
		return f
	}
	for _, c := range []struct {
		args     []string
		postgres bool
		want     int
	}{
		{nil, false, 128},
		{nil, true, 1024},
		{[]string{"--ingest-window", "256"}, false, 256},
		{[]string{"--ingest-window", "256"}, true, 256},
	} {
		if got, err := parse(c.args...).window(c.postgres); err != nil || got != c.want {
			t.Errorf("window of %v, postgres %v = %d, %v; want %d", c.args, c.postgres, got, err, c.want)
		}
	}
	_, err := parse("--ingest-chunk", "200").window(false)
	if err == nil || !strings.Contains(err.Error(), "(200)") || !strings.Contains(err.Error(), "(128)") {
		t.Errorf("a chunk of 200 with the embedded store's window: %v, want an error naming 200 and 128", err)
	}
	if _, err := parse("--ingest-chunk", "200").window(true); err != nil {
		t.Errorf("a chunk of 200 with PostgreSQL's window of 1024: %v, want nil", err)
	}
}

// TestWALSyncInterval: the embedded store's sync interval defaults to
// pebble's default, 0 means no wait (Pebble's option set to none, not
// left at its default), the environment sets it, and a value outside 0 to
// 10ms is refused naming the flag.
func TestWALSyncInterval(t *testing.T) {
	parse := func(env map[string]string, args ...string) serveConfig {
		t.Helper()
		c, _, err := parseServeFlags(args, func(k string) string { return env[k] }, io.Discard)
		if err != nil {
			t.Fatalf("parse %v: %v", args, err)
		}
		return c
	}
	if got := parse(nil).pebbleOptions().WALSyncInterval; got != pebble.DefaultWALSyncInterval {
		t.Errorf("default: %v, want %v", got, pebble.DefaultWALSyncInterval)
	}
	if got := parse(nil, "--wal-sync-interval", "0").pebbleOptions().WALSyncInterval; got >= 0 {
		t.Errorf("--wal-sync-interval 0: pebble option %v, want negative (none)", got)
	}
	if got := parse(map[string]string{"CUSTOS_WAL_SYNC_INTERVAL": "1ms"}).pebbleOptions().WALSyncInterval; got != time.Millisecond {
		t.Errorf("CUSTOS_WAL_SYNC_INTERVAL=1ms: %v", got)
	}
	for _, v := range []string{"20ms", "-1ms"} {
		err := runServe(t.Context(), []string{"--data", t.TempDir(), "--wal-sync-interval", v}, func(string) string { return "" }, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "--wal-sync-interval") {
			t.Errorf("--wal-sync-interval %s: %v, want a refusal naming the flag", v, err)
		}
	}
}
