package main

import (
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/admission"
	"github.com/custos-dev/custos/internal/metrics"
	"github.com/custos-dev/custos/internal/server"
)

// limitFlags configure rate limits, fair sharing of the writer, and the
// HTTP server's defences against slow and idle clients.
type limitFlags struct {
	ingestRate, ingestBurst float64
	apiRate, apiBurst       float64
	ingestWindow, chunk     int
	maxConns                int
	maxHeaderBytes          int
	readHeaderTimeout       time.Duration
	readTimeout             time.Duration
	idleTimeout             time.Duration
}

// envDefaults reads flag defaults from environment variables, collecting
// the values that do not parse.
type envDefaults struct {
	getenv func(string) string
	errs   *[]error
}

func (e envDefaults) number(name string, def float64) float64 {
	v := e.getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.ParseFloat(v, 64)
	if err != nil || n < 0 {
		*e.errs = append(*e.errs, fmt.Errorf("%s=%q: want a number, 0 or more", name, v))
		return def
	}
	return n
}

func (e envDefaults) integer(name string, def int) int {
	v := e.getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		*e.errs = append(*e.errs, fmt.Errorf("%s=%q: want a whole number, 0 or more", name, v))
		return def
	}
	return n
}

func (e envDefaults) duration(name string, def time.Duration) time.Duration {
	v := e.getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		*e.errs = append(*e.errs, fmt.Errorf("%s=%q: want a positive duration such as 30s or 1h", name, v))
		return def
	}
	return d
}

func (f *limitFlags) register(fs *flag.FlagSet, env envDefaults) {
	def := admission.DefaultLimits()
	fs.Float64Var(&f.ingestRate, "rate-ingest", env.number("CUSTOS_RATE_INGEST", def[admission.Ingest].Tenant.PerSecond), "messages per second each tenant, and each write key, may ingest; 0: no limit (CUSTOS_RATE_INGEST)")
	fs.Float64Var(&f.ingestBurst, "rate-ingest-burst", env.number("CUSTOS_RATE_INGEST_BURST", def[admission.Ingest].Tenant.Burst), "messages a tenant may ingest at once above --rate-ingest (CUSTOS_RATE_INGEST_BURST)")
	fs.Float64Var(&f.apiRate, "rate-api", env.number("CUSTOS_RATE_API", def[admission.API].Tenant.PerSecond), "management API requests per second per tenant, and per secret key; device requests on /v1/privacy have a bucket of the same size per tenant and per write key; 0: no limit (CUSTOS_RATE_API)")
	fs.Float64Var(&f.apiBurst, "rate-api-burst", env.number("CUSTOS_RATE_API_BURST", def[admission.API].Tenant.Burst), "management API requests a tenant may make at once above --rate-api (CUSTOS_RATE_API_BURST)")
	fs.IntVar(&f.ingestWindow, "ingest-window", env.integer("CUSTOS_INGEST_WINDOW", 0), "messages queued in the ingest writer or being applied at once (not those only waiting for durability); when more wait, the room is shared round-robin between tenants; 0: 128 on the embedded store, 1024 on PostgreSQL (CUSTOS_INGEST_WINDOW)")
	fs.IntVar(&f.chunk, "ingest-chunk", env.integer("CUSTOS_INGEST_CHUNK", 32), "messages of a batch admitted into the writer at a time, so large batches interleave with other tenants' small ones (CUSTOS_INGEST_CHUNK)")
	fs.IntVar(&f.maxConns, "max-connections", env.integer("CUSTOS_MAX_CONNECTIONS", 10000), "connections served at once; more wait in the listen backlog; 0: no limit (CUSTOS_MAX_CONNECTIONS)")
	fs.IntVar(&f.maxHeaderBytes, "max-header-bytes", env.integer("CUSTOS_MAX_HEADER_BYTES", 64<<10), "largest request header block, in bytes (CUSTOS_MAX_HEADER_BYTES)")
	fs.DurationVar(&f.readHeaderTimeout, "read-header-timeout", env.duration("CUSTOS_READ_HEADER_TIMEOUT", 10*time.Second), "time a client has to send a request's headers (CUSTOS_READ_HEADER_TIMEOUT)")
	fs.DurationVar(&f.readTimeout, "read-timeout", env.duration("CUSTOS_READ_TIMEOUT", 60*time.Second), "time a client has to send a whole request, body included (CUSTOS_READ_TIMEOUT)")
	fs.DurationVar(&f.idleTimeout, "idle-timeout", env.duration("CUSTOS_IDLE_TIMEOUT", 120*time.Second), "how long an idle keep-alive connection is kept (CUSTOS_IDLE_TIMEOUT)")
}

func (f *limitFlags) check() error {
	switch {
	case f.ingestRate < 0 || f.ingestBurst < 0 || f.apiRate < 0 || f.apiBurst < 0:
		return fmt.Errorf("rate limits cannot be negative")
	case f.ingestWindow < 0:
		return fmt.Errorf("--ingest-window cannot be negative")
	case f.chunk < 1:
		return fmt.Errorf("--ingest-chunk must be at least 1")
	case f.ingestWindow > 0 && f.chunk > f.ingestWindow:
		return fmt.Errorf("--ingest-chunk (%d) cannot be larger than --ingest-window (%d)", f.chunk, f.ingestWindow)
	case f.maxConns < 0:
		return fmt.Errorf("--max-connections cannot be negative")
	case f.maxHeaderBytes < 1024:
		return fmt.Errorf("--max-header-bytes must be at least 1024")
	case f.readHeaderTimeout <= 0 || f.readTimeout <= 0 || f.idleTimeout <= 0:
		return fmt.Errorf("--read-header-timeout, --read-timeout and --idle-timeout must be positive")
	}
	return nil
}

// The ingest window when none is set. On PostgreSQL a group of messages
// is committed in one round trip that the writer waits for, so a larger
// window, hence larger groups, pays it less often: 1024 took 10,300 –
// 12,000 events/s in 100-event batches with 10 M stored where 128 took
// 8,400 – 8,600 (docs/postgres.md). On the embedded store the commit is
// waited for outside the writer, and 128 keeps a flooding tenant's lead
// over another within TestFairnessUnderFlood's bound.
const (
	defaultIngestWindow         = 128
	defaultIngestWindowPostgres = 1024
)

// window returns the ingest window for a data store on PostgreSQL or not.
func (f *limitFlags) window(postgres bool) (int, error) {
	w := f.ingestWindow
	switch {
	case w > 0:
	case postgres:
		w = defaultIngestWindowPostgres
	default:
		w = defaultIngestWindow
	}
	if f.chunk > w {
		return 0, fmt.Errorf("--ingest-chunk (%d) cannot be larger than --ingest-window (%d)", f.chunk, w)
	}
	return w, nil
}

// admission returns the server's rate limits, counting 429s in m.
func (f *limitFlags) admission(m *metrics.Metrics) *server.Admission {
	limits := map[admission.Scope]admission.Limits{}
	if f.ingestRate > 0 {
		r := admission.Rate{PerSecond: f.ingestRate, Burst: f.ingestBurst}
		limits[admission.Ingest] = admission.Limits{Tenant: r, Key: r}
	}
	if f.apiRate > 0 {
		r := admission.Rate{PerSecond: f.apiRate, Burst: f.apiBurst}
		limits[admission.API] = admission.Limits{Tenant: r, Key: r}
		limits[admission.Privacy] = admission.Limits{Tenant: r, Key: r}
	}
	return &server.Admission{
		Limiter: admission.NewLimiter(limits, time.Now),
		OnLimited: func(t custos.TenantID, s admission.Scope) {
			m.RateLimited.WithLabelValues(t.String(), string(s)).Inc()
		},
	}
}
