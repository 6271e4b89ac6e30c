package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
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
	ingestSlots, chunk      int
	maxConns                int
	maxHeaderBytes          int
	readHeaderTimeout       time.Duration
	readTimeout             time.Duration
	idleTimeout             time.Duration
}

func (f *limitFlags) register(fs *flag.FlagSet, getenv func(string) string) {
	def := admission.DefaultLimits()
	num := func(name string, def float64) float64 {
		if v, err := strconv.ParseFloat(getenv(name), 64); err == nil {
			return v
		}
		return def
	}
	dur := func(name string, def time.Duration) time.Duration {
		if v, err := time.ParseDuration(getenv(name)); err == nil {
			return v
		}
		return def
	}
	fs.Float64Var(&f.ingestRate, "rate-ingest", num("CUSTOS_RATE_INGEST", def[admission.Ingest].Tenant.PerSecond), "messages per second each tenant, and each write key, may ingest; 0: no limit (CUSTOS_RATE_INGEST)")
	fs.Float64Var(&f.ingestBurst, "rate-ingest-burst", num("CUSTOS_RATE_INGEST_BURST", def[admission.Ingest].Tenant.Burst), "messages a tenant may ingest at once above --rate-ingest (CUSTOS_RATE_INGEST_BURST)")
	fs.Float64Var(&f.apiRate, "rate-api", num("CUSTOS_RATE_API", def[admission.API].Tenant.PerSecond), "management API requests per second per tenant, and per secret key; 0: no limit (CUSTOS_RATE_API)")
	fs.Float64Var(&f.apiBurst, "rate-api-burst", num("CUSTOS_RATE_API_BURST", def[admission.API].Tenant.Burst), "management API requests a tenant may make at once above --rate-api (CUSTOS_RATE_API_BURST)")
	fs.IntVar(&f.ingestSlots, "ingest-slots", 4, "chunks of messages admitted into the ingest writer at once, shared round-robin between tenants")
	fs.IntVar(&f.chunk, "ingest-chunk", 32, "messages of a batch admitted into the writer at a time, so large batches interleave with other tenants' small ones")
	fs.IntVar(&f.maxConns, "max-connections", int(num("CUSTOS_MAX_CONNECTIONS", 10000)), "connections served at once; more wait in the listen backlog (CUSTOS_MAX_CONNECTIONS)")
	fs.IntVar(&f.maxHeaderBytes, "max-header-bytes", 64<<10, "largest request header block, in bytes")
	fs.DurationVar(&f.readHeaderTimeout, "read-header-timeout", dur("CUSTOS_READ_HEADER_TIMEOUT", 10*time.Second), "time a client has to send a request's headers (CUSTOS_READ_HEADER_TIMEOUT)")
	fs.DurationVar(&f.readTimeout, "read-timeout", dur("CUSTOS_READ_TIMEOUT", 60*time.Second), "time a client has to send a whole request, body included (CUSTOS_READ_TIMEOUT)")
	fs.DurationVar(&f.idleTimeout, "idle-timeout", dur("CUSTOS_IDLE_TIMEOUT", 120*time.Second), "how long an idle keep-alive connection is kept (CUSTOS_IDLE_TIMEOUT)")
}

func (f *limitFlags) check() error {
	switch {
	case f.ingestRate < 0 || f.ingestBurst < 0 || f.apiRate < 0 || f.apiBurst < 0:
		return fmt.Errorf("rate limits cannot be negative")
	case f.ingestSlots < 1 || f.chunk < 1:
		return fmt.Errorf("--ingest-slots and --ingest-chunk must be at least 1")
	case f.readHeaderTimeout <= 0 || f.readTimeout <= 0 || f.idleTimeout <= 0:
		return fmt.Errorf("--read-header-timeout, --read-timeout and --idle-timeout must be positive")
	}
	return nil
}

// admission returns the server's admission control, counting 429s in m.
func (f *limitFlags) admission(m *metrics.Metrics) *server.Admission {
	limits := map[admission.Scope]admission.Limits{}
	if f.ingestRate > 0 {
		r := admission.Rate{PerSecond: f.ingestRate, Burst: f.ingestBurst}
		limits[admission.Ingest] = admission.Limits{Tenant: r, Key: r}
	}
	if f.apiRate > 0 {
		r := admission.Rate{PerSecond: f.apiRate, Burst: f.apiBurst}
		limits[admission.API] = admission.Limits{Tenant: r, Key: r}
	}
	return &server.Admission{
		Limiter: admission.NewLimiter(limits, time.Now),
		Gate:    admission.NewGate(f.ingestSlots),
		Chunk:   f.chunk,
		OnLimited: func(t custos.TenantID, s admission.Scope) {
			m.RateLimited.WithLabelValues(t.String(), string(s)).Inc()
		},
	}
}

// harden sets the server's timeouts and header limit.
func (f *limitFlags) harden(srv *http.Server) {
	srv.ReadHeaderTimeout = f.readHeaderTimeout
	srv.ReadTimeout = f.readTimeout
	srv.IdleTimeout = f.idleTimeout
	srv.MaxHeaderBytes = f.maxHeaderBytes
}

// listener bounds the connections served at once.
func (f *limitFlags) listener(ln net.Listener) net.Listener {
	return admission.LimitListener(ln, f.maxConns)
}
