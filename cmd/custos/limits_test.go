package main

import (
	"flag"
	"strings"
	"testing"
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
