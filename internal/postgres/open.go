package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/custos-dev/custos"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/puddle/v2"
)

// Options configures a Store or KeyStore. The zero value is usable.
type Options struct {
	// MaxConns bounds the connection pool (default: pgxpool's, the
	// larger of 4 and the number of CPUs; or pool_max_conns in the URL).
	MaxConns int32
	// OnQuery, if set, is called after every statement and batch with
	// how long it took and its error (for latency metrics).
	OnQuery func(d time.Duration, err error)
}

// PoolStats is a snapshot of a connection pool, for metrics.
type PoolStats struct {
	// Acquired connections are in use, Idle ones wait, Total is both
	// plus those being opened; Max is the pool's bound.
	Acquired, Idle, Total, Max int32
	// AcquireWait is the total time spent waiting for a connection.
	AcquireWait time.Duration
	// Acquires counts connections handed out.
	Acquires int64
}

// IsURL reports whether s names a PostgreSQL database (a postgres:// or
// postgresql:// URL) rather than a directory.
func IsURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// Redact returns the URL with its password replaced, fit for a log line.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "postgres://(unparseable URL)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// connect opens a pool on the database at rawURL, with synchronous_commit
// forced on (a commit returns once durable), and applies the role's
// migrations.
func connect(ctx context.Context, rawURL, role string, o Options) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%s database URL %s: %w", role, Redact(rawURL), err)
	}
	if o.MaxConns > 0 {
		cfg.MaxConns = o.MaxConns
	}
	rp := cfg.ConnConfig.RuntimeParams
	rp["synchronous_commit"] = "on"
	if rp["application_name"] == "" {
		rp["application_name"] = "custos"
	}
	if !strings.Contains(rawURL, "target_session_attrs") {
		// Custos writes: a session on a standby (or a primary fenced read-only)
		// is of no use, so every host of a multi-host URL is tried until one
		// accepts writes, as with target_session_attrs=read-write.
		cfg.ConnConfig.ValidateConnect = pgconn.ValidateConnectTargetSessionAttrsReadWrite
	}
	tr := &tracer{fn: o.OnQuery}
	cfg.ConnConfig.Tracer = tr
	cfg.AfterRelease = tr.keep
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open %s database %s: %w", role, Redact(rawURL), err)
	}
	if _, err := migrate(ctx, pool, role); err != nil {
		pool.Close()
		return nil, fmt.Errorf("%s database %s: %w", role, Redact(rawURL), err)
	}
	return pool, nil
}

// Migrate applies the migrations the data database at dataURL lacks and,
// if keysURL is not empty, those the key database lacks, and returns the
// versions applied to each. Open does the same; Migrate is for operators
// who upgrade the schema as a step of its own (custos migrate).
func Migrate(ctx context.Context, dataURL, keysURL string) (data, keys []int, err error) {
	for _, db := range []struct {
		url, role string
		out       *[]int
	}{{dataURL, roleData, &data}, {keysURL, roleKeys, &keys}} {
		if db.url == "" {
			continue
		}
		cfg, err := pgxpool.ParseConfig(db.url)
		if err != nil {
			return data, keys, fmt.Errorf("%s database URL %s: %w", db.role, Redact(db.url), err)
		}
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			return data, keys, fmt.Errorf("open %s database %s: %w", db.role, Redact(db.url), err)
		}
		*db.out, err = migrate(ctx, pool, db.role)
		pool.Close()
		if err != nil {
			return data, keys, fmt.Errorf("%s database %s: %w", db.role, Redact(db.url), err)
		}
	}
	return data, keys, nil
}

func poolStats(p *pgxpool.Pool) PoolStats {
	s := p.Stat()
	return PoolStats{Acquired: s.AcquiredConns(), Idle: s.IdleConns(), Total: s.TotalConns(), Max: s.MaxConns(),
		AcquireWait: s.AcquireDuration(), Acquires: s.AcquireCount()}
}

// tracer reports the duration of statements and batches to fn (if set),
// and notes the connections that found their server read-only, so that
// the pool drops them (keep) instead of handing them out again: after a
// fail-over the pool must reach the new primary, not stay on a demoted
// or fenced one.
type tracer struct {
	fn       func(time.Duration, error)
	readOnly sync.Map // *pgx.Conn → struct{}
}

type traceStart struct{}

func (t *tracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	if t.fn == nil {
		return ctx
	}
	return context.WithValue(ctx, traceStart{}, time.Now())
}

func (t *tracer) TraceQueryEnd(ctx context.Context, c *pgx.Conn, d pgx.TraceQueryEndData) {
	t.note(c, d.Err)
	if start, ok := ctx.Value(traceStart{}).(time.Time); ok {
		t.fn(time.Since(start), d.Err)
	}
}

func (t *tracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	if t.fn == nil {
		return ctx
	}
	return context.WithValue(ctx, traceStart{}, time.Now())
}

func (t *tracer) TraceBatchQuery(_ context.Context, c *pgx.Conn, d pgx.TraceBatchQueryData) {
	t.note(c, d.Err)
}

func (t *tracer) TraceBatchEnd(ctx context.Context, c *pgx.Conn, d pgx.TraceBatchEndData) {
	t.note(c, d.Err)
	if start, ok := ctx.Value(traceStart{}).(time.Time); ok {
		t.fn(time.Since(start), d.Err)
	}
}

// TraceRelease forgets a closed connection, which the pool destroys
// without asking keep.
func (t *tracer) TraceRelease(_ *pgxpool.Pool, d pgxpool.TraceReleaseData) {
	if d.Conn.IsClosed() {
		t.readOnly.Delete(d.Conn)
	}
}

// note remembers c if err says its server refuses writes (SQLSTATE 25006,
// read_only_sql_transaction).
func (t *tracer) note(c *pgx.Conn, err error) {
	var pe *pgconn.PgError
	if c != nil && errors.As(err, &pe) && pe.Code == sqlReadOnly {
		t.readOnly.Store(c, struct{}{})
	}
}

// keep is the pool's AfterRelease: false destroys the connection. A
// connection is dropped once a write on it was refused as read-only, or
// once its server reports that it is a standby or read-only by default
// (PostgreSQL 14 and later report both parameters as they change).
func (t *tracer) keep(c *pgx.Conn) bool {
	if _, bad := t.readOnly.LoadAndDelete(c); bad {
		return false
	}
	pc := c.PgConn()
	return pc.ParameterStatus("in_hot_standby") != "on" && pc.ParameterStatus("default_transaction_read_only") != "on"
}

// sqlReadOnly is the SQLSTATE of a write refused by a read-only server.
const sqlReadOnly = "25006"

// dbError wraps err with what was being done; a connection failure or a
// server shutting down becomes custos.Unavailable, so clients are told to
// retry (5xx), never that their request was wrong.
func dbError(what string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", what, err)
	}
	var ce *custos.Error
	if errors.As(err, &ce) {
		return err
	}
	if errors.Is(err, puddle.ErrClosedPool) {
		return &custos.Error{Code: custos.Unavailable, Message: "the store is closed", Err: fmt.Errorf("%s: %w", what, err)}
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), strings.HasPrefix(pe.Code, "57P"), pe.Code == "53300", pe.Code == "40001", pe.Code == "40P01", pe.Code == "25006":
			// connection exceptions, admin shutdown, too many connections,
			// serialization failure, deadlock, read-only transaction (a
			// standby): transient.
			return &custos.Error{Code: custos.Unavailable, Message: "the database is unavailable, retry", Err: fmt.Errorf("%s: %w", what, err)}
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	if pgconn.SafeToRetry(err) || pgconn.Timeout(err) || isNetError(err) {
		return &custos.Error{Code: custos.Unavailable, Message: "the database is unreachable, retry", Err: fmt.Errorf("%s: %w", what, err)}
	}
	return fmt.Errorf("%s: %w", what, err)
}

func isNetError(err error) bool {
	var ne net.Error
	var ce *pgconn.ConnectError
	return errors.As(err, &ne) || errors.As(err, &ce)
}
