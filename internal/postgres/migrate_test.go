package postgres_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/custos-dev/custos/internal/pgtest"
	"github.com/custos-dev/custos/internal/postgres"
	"github.com/jackc/pgx/v5"
)

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// TestMigrateConcurrently starts several nodes on one new database at
// once: every Open succeeds and each migration is applied exactly once.
func TestMigrateConcurrently(t *testing.T) {
	url := pgtest.NewDatabase(t)
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			st, err := postgres.Open(t.Context(), url, postgres.Options{})
			if err != nil {
				t.Errorf("node %d: Open = %v, want nil", i, err)
				return
			}
			st.Close()
		})
	}
	wg.Wait()
	rows, _ := connect(t, url).Query(t.Context(), "SELECT version FROM schema_migrations ORDER BY version")
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil || !slices.Equal(versions, []int32{1, 2, 3, 4, 5, 6}) {
		t.Errorf("schema_migrations after 6 concurrent opens = %v, %v; want [1 2 3 4 5 6]", versions, err)
	}
}

// TestMigrate checks the operator's command: the first run applies every
// migration to both databases, a second run nothing.
func TestMigrate(t *testing.T) {
	data, keys := pgtest.NewDatabase(t), pgtest.NewDatabase(t)
	d, k, err := postgres.Migrate(t.Context(), data, keys)
	if err != nil || !slices.Equal(d, []int{1, 2, 3, 4, 5, 6}) || !slices.Equal(k, []int{1, 2}) {
		t.Errorf("first Migrate = %v, %v, %v; want [1 2 3 4 5 6], [1 2], nil", d, k, err)
	}
	d, k, err = postgres.Migrate(t.Context(), data, keys)
	if err != nil || len(d) != 0 || len(k) != 0 {
		t.Errorf("second Migrate = %v, %v, %v; want nothing applied", d, k, err)
	}
	if _, _, err := postgres.Migrate(t.Context(), keys, ""); err == nil {
		t.Error("Migrate of the key database as data = nil, want an error")
	}
}

// TestSchemaIsDistributable checks what Citus distribution by tenant
// needs: every table (but the documented operator-wide ones) has
// tenant_id first in its primary key, and no table has a foreign key.
func TestSchemaIsDistributable(t *testing.T) {
	data, keys := pgtest.NewDatabase(t), pgtest.NewDatabase(t)
	if _, _, err := postgres.Migrate(t.Context(), data, keys); err != nil {
		t.Fatal(err)
	}
	// Tables that belong to no tenant: reference tables on Citus.
	global := map[string]bool{"incidents": true, "meta": true, "key_epochs": true, "schema_migrations": true, "custos_database": true}
	for _, url := range []string{data, keys} {
		conn := connect(t, url)
		rows, err := conn.Query(t.Context(), `
			SELECT c.relname, a.attname
			FROM pg_class c
			JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
			JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
			JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0]
			WHERE c.relkind = 'r'`)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			var table, first string
			if err := rows.Scan(&table, &first); err != nil {
				t.Fatal(err)
			}
			n++
			if !global[table] && first != "tenant_id" {
				t.Errorf("table %s: primary key starts with %s, want tenant_id", table, first)
			}
		}
		rows.Close()
		if n < 3 {
			t.Errorf("found %d tables with a primary key in %s; the catalog query is wrong", n, url)
		}
		var fks int
		if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_constraint WHERE contype = 'f'").Scan(&fks); err != nil || fks != 0 {
			t.Errorf("foreign keys = %d, %v; want 0", fks, err)
		}
		var noPK []string
		rows, _ = conn.Query(t.Context(), `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
			WHERE c.relkind = 'r' AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)`)
		noPK, _ = pgx.CollectRows(rows, pgx.RowTo[string])
		if len(noPK) > 0 {
			t.Errorf("tables without a primary key: %v", noPK)
		}
	}
}

// TestRetentionQueriesUseTheTimeIndex: the retention sweep's drop of a
// tenant's expired events and its listing of them are answered from
// events_by_time, not by reading every event of the tenant. (Sequential
// scans are disabled so that the planner's choice on a small table does
// not hide a missing or unusable index.)
func TestRetentionQueriesUseTheTimeIndex(t *testing.T) {
	url := pgtest.NewDatabase(t)
	st, err := postgres.Open(t.Context(), url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	conn := connect(t, url)
	if _, err := conn.Exec(t.Context(), "SET enable_seqscan = off"); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"DELETE FROM events WHERE tenant_id = $1 AND at < $2",
		"SELECT subject_id, at, msg FROM events WHERE tenant_id = $1 AND at < $2 ORDER BY at",
	} {
		rows, err := conn.Query(t.Context(), "EXPLAIN "+q, make([]byte, 16), int64(1))
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		if all := strings.Join(lines, "\n"); !strings.Contains(all, "events_by_time") {
			t.Errorf("%s is planned without events_by_time:\n%s", q, all)
		}
	}
}
