package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
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
	// Log, if set, receives one line per database at open saying what a
	// commit waits for (see checkDurable).
	Log *slog.Logger
	// MasterKey is the deployment's master key: the key store seals its
	// epoch keys under a key derived from it (required by OpenKeyStore).
	MasterKey []byte
	// Holdoff is how long, after every host of the URL failed to give a
	// writable connection, new connections are refused at once (as
	// custos.Unavailable) instead of dialled again (default
	// defaultHoldoff). It keeps a node answering 503 quickly while its
	// primary is down, rather than queueing requests behind connection
	// attempts.
	Holdoff time.Duration
	// PurgeInterval, if not zero, makes the data store purge deleted
	// subjects in passes that start on every multiple of it on the clock
	// (UTC), the same instants on every node, run by a Purger: an erasure
	// then names the next pass (custos.PurgeScheduler) instead of waiting
	// for a VACUUM of the event tables, which takes seconds to minutes
	// with millions of events stored. Zero: an erasure vacuums at once.
	PurgeInterval time.Duration
}

// defaultHoldoff is Options.Holdoff's default: short enough that a node
// is back within half a second of a standby being promoted.
const defaultHoldoff = 250 * time.Millisecond

// defaultConnectTimeout bounds a connection attempt when the URL sets no
// connect_timeout: a primary whose host vanished without refusing
// connections must not stall the single writer.
const defaultConnectTimeout = 5 * time.Second

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
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	tr := &tracer{fn: o.OnQuery}
	cfg.ConnConfig.Tracer = tr
	cfg.AfterRelease = tr.keep
	b := &breaker{holdoff: o.Holdoff}
	if b.holdoff <= 0 {
		b.holdoff = defaultHoldoff
	}
	cfg.BeforeConnect = b.beforeConnect
	cfg.AfterConnect = b.afterConnect
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open %s database %s: %w", role, Redact(rawURL), err)
	}
	if err := checkDurable(ctx, pool, role, rawURL, o.Log); err != nil {
		pool.Close()
		return nil, err
	}
	if _, err := migrate(ctx, pool, role); err != nil {
		pool.Close()
		return nil, fmt.Errorf("%s database %s: %w", role, Redact(rawURL), err)
	}
	return pool, nil
}

// checkDurable makes sure that a commit on pool returns only once it is
// flushed to disk: synchronous_commit is on in the session (connect sets
// it; a server or role setting cannot lower it) and the server has fsync
// on. A server with fsync off is refused: a 2xx must survive a crash. It
// logs what a commit waits for, including the synchronous standbys.
func checkDurable(ctx context.Context, pool *pgxpool.Pool, role, rawURL string, log *slog.Logger) error {
	var syncCommit, fsync, standbys string
	err := pool.QueryRow(ctx, `SELECT current_setting('synchronous_commit'), current_setting('fsync'),
		current_setting('synchronous_standby_names')`).Scan(&syncCommit, &fsync, &standbys)
	if err != nil {
		return fmt.Errorf("%s database %s: read its durability settings: %w", role, Redact(rawURL), dbError("durability settings", err))
	}
	if syncCommit != "on" && syncCommit != "remote_apply" {
		return fmt.Errorf("%s database %s: synchronous_commit is %q in Custos's sessions although Custos sets it on: a 2xx must mean committed and flushed", role, Redact(rawURL), syncCommit)
	}
	if fsync != "on" {
		return fmt.Errorf("%s database %s: the server runs with fsync = %s: a commit would not survive a crash, so Custos refuses to acknowledge writes on it (set fsync = on)", role, Redact(rawURL), fsync)
	}
	if log != nil {
		waits := "flush on the primary (no synchronous standby: a fail-over may lose the last acknowledged commits)"
		if standbys != "" {
			waits = "flush on the primary and on the synchronous standbys " + standbys
		}
		log.Info("durable acks", "database", role, "url", Redact(rawURL), "synchronous_commit", syncCommit,
			"synchronous_standby_names", standbys, "a commit waits for", waits)
	}
	return nil
}

// breaker refuses new connections at once for a short holdoff after an
// attempt in which every host failed (refused, unreachable, or not
// writable), so that while the primary is down each request costs no
// connection attempt and is answered 503 quickly; the first attempt after
// the holdoff tries again, and one success closes the breaker.
type breaker struct {
	holdoff   time.Duration
	downUntil atomic.Int64 // unix nanoseconds
}

func (b *breaker) beforeConnect(_ context.Context, cc *pgx.ConnConfig) error {
	if until := b.downUntil.Load(); until != 0 && time.Now().UnixNano() < until {
		return &custos.Error{Code: custos.Unavailable, Message: "the database is unreachable, retry",
			Err: errors.New("no host of the database URL gave a writable connection moments ago")}
	}
	// cc is this attempt's own copy: count the hosts that fail in it.
	hosts := int32(1 + len(cc.Fallbacks))
	var failed atomic.Int32
	fail := func() {
		if failed.Add(1) >= hosts {
			b.downUntil.Store(time.Now().Add(b.holdoff).UnixNano())
		}
	}
	if dial := cc.DialFunc; dial != nil {
		cc.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dial(ctx, network, addr)
			if err != nil {
				fail()
			}
			return c, err
		}
	}
	if validate := cc.ValidateConnect; validate != nil {
		cc.ValidateConnect = func(ctx context.Context, pc *pgconn.PgConn) error {
			err := validate(ctx, pc)
			if err != nil {
				fail()
			}
			return err
		}
	}
	return nil
}

func (b *breaker) afterConnect(context.Context, *pgx.Conn) error {
	b.downUntil.Store(0)
	return nil
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
