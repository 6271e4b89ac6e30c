package main

import (
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestServeFlagsHaveEnvironment checks that every flag of custos serve
// names its environment variable in its usage text, and that a table row
// of the manual (docs/*.md) lists the flag with that variable.
func TestServeFlagsHaveEnvironment(t *testing.T) {
	var rows []string
	docs, err := filepath.Glob(filepath.Join("..", "..", "docs", "*.md"))
	if err != nil || len(docs) == 0 {
		t.Fatalf("no docs/*.md found (err %v)", err)
	}
	for _, f := range docs {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "|") {
				rows = append(rows, l)
			}
		}
	}
	envName := regexp.MustCompile(`\(CUSTOS_[A-Z0-9_]+`)
	var c serveConfig
	serveFlags(&c, func(string) string { return "" }).VisitAll(func(f *flag.Flag) {
		m := envName.FindString(f.Usage)
		if m == "" {
			t.Errorf("flag --%s: usage %q names no CUSTOS_ environment variable", f.Name, f.Usage)
			return
		}
		env := m[1:]
		for _, r := range rows {
			if strings.Contains(r, "`--"+f.Name+"`") && strings.Contains(r, "`"+env) {
				return
			}
		}
		t.Errorf("flag --%s: no table row in docs/*.md lists it with %s", f.Name, env)
	})
}

func TestServeFlagsFromEnvironment(t *testing.T) {
	vars := map[string]string{
		"CUSTOS_OPENDSR_POLL_INTERVAL": "7s",
		"CUSTOS_RETENTION_INTERVAL":    "5m",
		"CUSTOS_SHUTDOWN_TIMEOUT":      "3s",
		"CUSTOS_ADDR":                  "127.0.0.1:0",
	}
	c, help, err := parseServeFlags(nil, func(k string) string { return vars[k] }, io.Discard)
	if help || err != nil {
		t.Fatalf("parseServeFlags: help %v, err %v", help, err)
	}
	if c.opendsrPoll != 7*time.Second || c.retentionInterval != 5*time.Minute || c.shutdownTimeout != 3*time.Second || c.addr != "127.0.0.1:0" {
		t.Errorf("got poll %v, retention %v, shutdown %v, addr %q; want 7s, 5m, 3s, 127.0.0.1:0",
			c.opendsrPoll, c.retentionInterval, c.shutdownTimeout, c.addr)
	}
	// A flag overrides its environment variable.
	c, _, err = parseServeFlags([]string{"--shutdown-timeout", "9s"}, func(k string) string { return vars[k] }, io.Discard)
	if err != nil || c.shutdownTimeout != 9*time.Second {
		t.Errorf("--shutdown-timeout 9s over CUSTOS_SHUTDOWN_TIMEOUT=3s: got %v, err %v; want 9s", c.shutdownTimeout, err)
	}
	for _, bad := range []string{"soon", "-1s", "0"} {
		_, _, err := parseServeFlags(nil, func(k string) string {
			if k == "CUSTOS_RETENTION_INTERVAL" {
				return bad
			}
			return ""
		}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "CUSTOS_RETENTION_INTERVAL") {
			t.Errorf("CUSTOS_RETENTION_INTERVAL=%q: err %v; want an error naming the variable", bad, err)
		}
	}
}

// TestUsageListsBenchCommands checks that the top-level usage names every
// bench subcommand the bench command accepts.
func TestUsageListsBenchCommands(t *testing.T) {
	err := run(context.Background(), []string{"bench"}, func(string) string { return "" }, nil, io.Discard, io.Discard)
	m := regexp.MustCompile(`custos bench (\S+)`).FindStringSubmatch(err.Error())
	if m == nil {
		t.Fatalf("custos bench without a subcommand: err %v; want its usage", err)
	}
	if !strings.Contains(usage, "custos bench "+m[1]) {
		t.Errorf("usage does not list %q:\n%s", "custos bench "+m[1], usage)
	}
}
