package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custos-dev/custos/internal/pebble"
)

// TestMigrateEmbeddedStore runs `custos migrate` on a data directory: a
// store already in this build's layout is left alone, a missing one is
// an error naming it. (The rewrite from layout 1 is tested in
// internal/pebble, TestMigrateFromSubjectOrderedLayout; PostgreSQL in
// TestMigrateCommand.)
func TestMigrateEmbeddedStore(t *testing.T) {
	data := t.TempDir()
	st, err := pebble.Open(filepath.Join(data, "store"), pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"--data", data}, {"--store", filepath.Join(data, "store")}} {
		var out strings.Builder
		if err := run(context.Background(), append([]string{"migrate"}, args...), func(string) string { return "" }, strings.NewReader(""), &out, &out); err != nil {
			t.Fatalf("custos migrate %v = %v; output %s", args, err, out.String())
		}
		if got := out.String(); !strings.Contains(got, "already has key layout version 2") {
			t.Errorf("custos migrate %v said %q, want the store already at layout 2", args, got)
		}
	}
	missing := filepath.Join(data, "nowhere")
	err = run(context.Background(), []string{"migrate", "--store", missing}, func(string) string { return "" }, strings.NewReader(""), &strings.Builder{}, &strings.Builder{})
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("custos migrate --store %s = %v, want an error naming the directory", missing, err)
	}
}
