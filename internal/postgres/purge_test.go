package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/pgtest"
	"github.com/custos-dev/custos/internal/postgres"
	"github.com/jackc/pgx/v5"
)

// TestPurgePasses: without a purge interval a store schedules no passes
// (an erasure vacuums at once); with one, the pass a deletion waits for
// starts on the next multiple of the interval, and a Purger runs a pass
// when it starts and then on each such instant, removing the deleted
// rows' dead tuples.
func TestPurgePasses(t *testing.T) {
	url := pgtest.NewDatabase(t)
	if due := openStore(t, url).PurgeDueAt(); !due.IsZero() {
		t.Errorf("PurgeDueAt without a purge interval = %v, want zero", due)
	}
	const every = 2 * time.Second
	st, err := postgres.Open(t.Context(), url, postgres.Options{PurgeInterval: every})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	before := time.Now()
	due := st.PurgeDueAt()
	if !due.After(before) || due.Sub(before) > every || due.UnixNano()%int64(every) != 0 {
		t.Errorf("PurgeDueAt at %v = %v, want the next multiple of %v", before, due, every)
	}

	ten := custos.NewTenantID()
	s := custos.NewSubjectID()
	w := &custos.Write{Tenant: ten, Events: []custos.StoredEvent{{Subject: s, Time: time.Unix(100, 0), ID: custos.MessageHash{1}, Value: []byte("sealed")}}}
	if err := apply(st, t, w); err != nil {
		t.Fatal(err)
	}
	if err := apply(st, t, &custos.Write{Tenant: ten, DeleteSubjects: []custos.SubjectID{s}}); err != nil {
		t.Fatal(err)
	}

	passes := make(chan time.Time, 10)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() {
		done <- postgres.Purger{Store: st, Report: func(_ time.Duration, err error) {
			if err != nil {
				t.Errorf("purge pass: %v", err)
			}
			passes <- time.Now()
		}}.Run(ctx)
	}()
	first := <-passes
	if n := vacuums(t, url); n != 1 {
		t.Errorf("vacuums of the events table after the first pass = %d, want 1", n)
	}
	second := <-passes
	if n := vacuums(t, url); n != 2 {
		t.Errorf("vacuums of the events table after the second pass = %d, want 2", n)
	}
	if second.Sub(first) > every+time.Second || second.Sub(second.Truncate(every)) > time.Second {
		t.Errorf("passes at %v then %v, want the second within a second of a multiple of %v", first, second, every)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Purger.Run = %v, want nil once its context ends", err)
	}
}

// vacuums is how many times the events table was vacuumed.
func vacuums(t *testing.T, url string) int64 {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int64
	if err := conn.QueryRow(t.Context(), "SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'events'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
