package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations
var migrationFiles embed.FS

// Roles a database plays; recorded in custos_database by the first Open.
const (
	roleData = "data"
	roleKeys = "keys"
)

// migrationLock is the advisory lock key held while migrating, the same
// for both roles, so a refused second role never races a migration.
const migrationLock int64 = 0x637573746f73 // "custos"

// migration is one versioned SQL file.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations of a role, in version order.
func migrations(role string) ([]migration, error) {
	dir := path.Join("migrations", role)
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(name, ".sql") {
			return nil, fmt.Errorf("embedded migration %s: want NNNN_name.sql", name)
		}
		b, err := migrationFiles.ReadFile(path.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", name, err)
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("embedded migrations %s and %s share version %d", ms[i-1].name, ms[i].name, ms[i].version)
		}
	}
	return ms, nil
}

// migrate checks that the database plays role (claiming it for role if
// it is new) and applies the migrations it lacks, each in a transaction
// of its own, under an advisory lock so that nodes starting at once apply
// each one once. It returns the versions it applied.
func migrate(ctx context.Context, pool *pgxpool.Pool, role string) (applied []int, err error) {
	ms, err := migrations(role)
	if err != nil {
		return nil, err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLock); err != nil {
		return nil, fmt.Errorf("take the migration lock: %w", err)
	}
	defer func() {
		if _, uerr := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLock); uerr != nil && err == nil {
			err = fmt.Errorf("release the migration lock: %w", uerr)
		}
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS custos_database (
		role       text COLLATE "C" PRIMARY KEY,
		created_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return nil, fmt.Errorf("create custos_database: %w", err)
	}
	var have []string
	rows, err := conn.Query(ctx, "SELECT role FROM custos_database")
	if err != nil {
		return nil, fmt.Errorf("read the database's role: %w", err)
	}
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read the database's role: %w", err)
		}
		have = append(have, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the database's role: %w", err)
	}
	switch {
	case len(have) == 0:
		if _, err := conn.Exec(ctx, "INSERT INTO custos_database (role) VALUES ($1)", role); err != nil {
			return nil, fmt.Errorf("record the database's role: %w", err)
		}
	case len(have) > 1 || have[0] != role:
		return nil, fmt.Errorf("this database is Custos's %s database, not a %s database: the data and the keys need two separate databases (backed up and retained apart)",
			strings.Join(have, "+"), role)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return nil, fmt.Errorf("create schema_migrations: %w", err)
	}
	done := map[int]bool{}
	rows, err = conn.Query(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("read applied migrations: %w", err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read applied migrations: %w", err)
		}
		done[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read applied migrations: %w", err)
	}
	if latest := ms[len(ms)-1].version; len(done) > 0 && slices.Max(mapsKeys(done)) > latest {
		return nil, fmt.Errorf("the %s database has schema version %d, newer than this binary knows (%d): upgrade custos", role, slices.Max(mapsKeys(done)), latest)
	}
	for _, m := range ms {
		if done[m.version] {
			continue
		}
		tx, err := conn.Begin(ctx)
		if err != nil {
			return applied, fmt.Errorf("migration %s: %w", m.name, err)
		}
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			tx.Rollback(ctx)
			return applied, fmt.Errorf("migration %s: %w", m.name, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name); err != nil {
			tx.Rollback(ctx)
			return applied, fmt.Errorf("migration %s: %w", m.name, err)
		}
		if err := tx.Commit(ctx); err != nil {
			return applied, fmt.Errorf("migration %s: commit: %w", m.name, err)
		}
		applied = append(applied, m.version)
	}
	return applied, nil
}

func mapsKeys(m map[int]bool) []int {
	ks := make([]int, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}
