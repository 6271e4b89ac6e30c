// Package pgtest gives tests a fresh PostgreSQL database of their own:
// NewDatabase creates custos_test_<random> on the server named by
// CUSTOS_TEST_POSTGRES (default: the local server, through its socket in
// /var/run/postgresql, then 127.0.0.1:5432, as the OS user) and drops it
// when the test ends.
//
// Outside CI a missing server skips the test; in CI (CI=true) it fails it.
package pgtest

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// adminURLs are tried in turn when CUSTOS_TEST_POSTGRES is not set.
var adminURLs = []string{
	"postgres:///postgres?host=/var/run/postgresql",
	"postgres://127.0.0.1:5432/postgres",
}

// connectAdmin connects to the server's postgres database.
func connectAdmin(ctx context.Context) (*pgx.Conn, string, error) {
	urls := adminURLs
	if u := os.Getenv("CUSTOS_TEST_POSTGRES"); u != "" {
		urls = []string{u}
	}
	var errs []string
	for _, u := range urls {
		conn, err := pgx.Connect(ctx, u)
		if err == nil {
			return conn, u, nil
		}
		errs = append(errs, fmt.Sprintf("%s: %v", u, err))
	}
	return nil, "", fmt.Errorf("no PostgreSQL server for tests (set CUSTOS_TEST_POSTGRES to an admin URL): %s", strings.Join(errs, "; "))
}

// NewDatabase creates an empty database with a unique name, returns its
// URL, and drops it (closing every connection left on it) when the test
// ends.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, adminURL, err := connectAdmin(ctx)
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatal(err)
		}
		tb.Skip(err)
	}
	defer admin.Close(context.Background())
	name := "custos_test_" + strings.ToLower(rand.Text()[:16])
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("create test database %s: %v", name, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin, _, err := connectAdmin(ctx)
		if err != nil {
			tb.Errorf("drop test database %s: %v", name, err)
			return
		}
		defer admin.Close(context.Background())
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(adminURL)
	if err != nil {
		tb.Fatalf("parse %s: %v", adminURL, err)
	}
	u.Path = "/" + name
	return u.String()
}

// Admin runs statements on the server's postgres database as the test
// administrator (e.g. to cut a test database off).
func Admin(tb testing.TB, sql ...string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, _, err := connectAdmin(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	defer admin.Close(context.Background())
	for _, q := range sql {
		if _, err := admin.Exec(ctx, q); err != nil {
			tb.Fatalf("%s: %v", q, err)
		}
	}
}

// Name returns the database name of a URL NewDatabase returned.
func Name(tb testing.TB, dbURL string) string {
	tb.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		tb.Fatalf("parse %s: %v", dbURL, err)
	}
	return strings.TrimPrefix(u.Path, "/")
}
