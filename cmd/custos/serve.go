package main

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
	"github.com/custos-dev/custos/internal/backup"
	"github.com/custos-dev/custos/internal/campaign"
	"github.com/custos-dev/custos/internal/consent"
	"github.com/custos-dev/custos/internal/console"
	"github.com/custos-dev/custos/internal/forward"
	"github.com/custos-dev/custos/internal/incident"
	"github.com/custos-dev/custos/internal/keyring"
	"github.com/custos-dev/custos/internal/lease"
	"github.com/custos-dev/custos/internal/metrics"
	"github.com/custos-dev/custos/internal/opendsr"
	"github.com/custos-dev/custos/internal/pebble"
	"github.com/custos-dev/custos/internal/postgres"
	"github.com/custos-dev/custos/internal/processing"
	"github.com/custos-dev/custos/internal/retention"
	"github.com/custos-dev/custos/internal/rights"
	"github.com/custos-dev/custos/internal/segment"
	"github.com/custos-dev/custos/internal/server"
	"github.com/custos-dev/custos/internal/subjects"
	"github.com/custos-dev/custos/internal/supervise"
	"github.com/custos-dev/custos/internal/tenants"
	"github.com/custos-dev/custos/internal/tlsconfig"
	"github.com/custos-dev/custos/internal/webhook"
)

type serveConfig struct {
	addr, data, keysDir, region string
	storeLoc                    string
	logFormat, logLevel         string
	masterKeyFile               string
	pprofAddr                   string
	metricsAddr, metricsToken   string
	tlsCert, tlsKey             string
	tlsSelfSigned               bool
	opendsrDomain               string
	opendsrCert, opendsrKey     string
	opendsrHTTPCallbacks        bool
	publicURL                   string
	opendsrPoll                 time.Duration
	shutdownTimeout             time.Duration
	smtp                        smtpFlags
	processorName               string
	processorContact            string
	retentionInterval           time.Duration
	keyEpoch                    time.Duration
	leaseTTL                    time.Duration
	purgeInterval               time.Duration
	walSyncInterval             time.Duration
	outbound                    outboundFlags
	limits                      limitFlags
	// envErrs are environment variables that did not parse.
	envErrs []error
}

// parseServeFlags reads the flags of custos serve; every flag takes its
// default from its environment variable, named in its usage text.
func parseServeFlags(args []string, getenv func(string) string, stderr io.Writer) (c serveConfig, help bool, err error) {
	fs := serveFlags(&c, getenv)
	fs.SetOutput(stderr)
	if help, err := parseFlags(fs, args); help || err != nil {
		return c, help, err
	}
	if len(c.envErrs) > 0 {
		return c, false, errors.Join(c.envErrs...)
	}
	return c, false, nil
}

// serveFlags defines the flags of custos serve on c.
func serveFlags(c *serveConfig, getenv func(string) string) *flag.FlagSet {
	fs := flag.NewFlagSet("custos serve", flag.ContinueOnError)
	duration := func(name string, def time.Duration) time.Duration {
		v := getenv(name)
		if v == "" {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			c.envErrs = append(c.envErrs, fmt.Errorf("%s=%q: want a positive duration such as 30s or 1h", name, v))
			return def
		}
		return d
	}
	fs.StringVar(&c.addr, "addr", env(getenv, "CUSTOS_ADDR", "127.0.0.1:8080"), "address to listen on (CUSTOS_ADDR)")
	fs.StringVar(&c.data, "data", env(getenv, "CUSTOS_DATA", "./custos-data"), "data directory (CUSTOS_DATA)")
	fs.StringVar(&c.storeLoc, "store", env(getenv, "CUSTOS_STORE", ""), "data store: a directory (embedded store) or a postgres:// URL, which several nodes may share (CUSTOS_STORE; default <data>/store)")
	fs.StringVar(&c.keysDir, "keys", env(getenv, "CUSTOS_KEYS", ""), "key store, backed up apart from the data: a directory or a postgres:// URL of a database separate from the data's (CUSTOS_KEYS; default <data>/keys)")
	fs.StringVar(&c.region, "region", env(getenv, "CUSTOS_REGION", "eu"), "the region this node serves (CUSTOS_REGION)")
	fs.StringVar(&c.masterKeyFile, "master-key-file", env(getenv, "CUSTOS_MASTER_KEY_FILE", ""), "file holding the base64 master key (CUSTOS_MASTER_KEY_FILE; or CUSTOS_MASTER_KEY itself)")
	fs.StringVar(&c.logFormat, "log-format", env(getenv, "CUSTOS_LOG_FORMAT", "text"), "log format: text or json (CUSTOS_LOG_FORMAT)")
	fs.StringVar(&c.logLevel, "log-level", env(getenv, "CUSTOS_LOG_LEVEL", "info"), "log level: debug, info, warn, error (CUSTOS_LOG_LEVEL)")
	fs.StringVar(&c.tlsCert, "tls-cert", env(getenv, "CUSTOS_TLS_CERT", ""), "TLS certificate file (PEM); reloaded when it changes (CUSTOS_TLS_CERT)")
	fs.StringVar(&c.tlsKey, "tls-key", env(getenv, "CUSTOS_TLS_KEY", ""), "TLS private key file (PEM) (CUSTOS_TLS_KEY)")
	fs.BoolVar(&c.tlsSelfSigned, "tls-self-signed", env(getenv, "CUSTOS_TLS_SELF_SIGNED", "") == "true", "serve TLS with a generated development certificate in <data>/tls (CUSTOS_TLS_SELF_SIGNED=true)")
	fs.StringVar(&c.opendsrDomain, "opendsr-domain", env(getenv, "CUSTOS_OPENDSR_DOMAIN", "localhost"), "the domain the OpenDSR processor certificate is issued for (CUSTOS_OPENDSR_DOMAIN)")
	fs.StringVar(&c.opendsrCert, "opendsr-cert", env(getenv, "CUSTOS_OPENDSR_CERT", ""), "OpenDSR processor certificate (PEM) whose key signs OpenDSR answers (CUSTOS_OPENDSR_CERT; default a development certificate in <data>/opendsr)")
	fs.StringVar(&c.opendsrKey, "opendsr-key", env(getenv, "CUSTOS_OPENDSR_KEY", ""), "OpenDSR processor private key (PEM: PKCS #8, SEC 1 or PKCS #1) (CUSTOS_OPENDSR_KEY)")
	fs.BoolVar(&c.opendsrHTTPCallbacks, "opendsr-allow-http-callbacks", env(getenv, "CUSTOS_OPENDSR_ALLOW_HTTP_CALLBACKS", "") == "true", "accept http:// OpenDSR status_callback_urls; for development and tests only (CUSTOS_OPENDSR_ALLOW_HTTP_CALLBACKS=true)")
	fs.StringVar(&c.publicURL, "public-url", env(getenv, "CUSTOS_PUBLIC_URL", ""), "the base URL at which people and other systems reach this node, e.g. https://custos.example: unsubscribe links in campaign messages and OpenDSR callback URLs use it (CUSTOS_PUBLIC_URL; default http(s)://<listen address>)")
	fs.DurationVar(&c.opendsrPoll, "opendsr-poll-interval", duration("CUSTOS_OPENDSR_POLL_INTERVAL", 30*time.Second), "first wait before polling an OpenDSR recipient for a forwarded request's status, and before retrying a failed call; doubles up to an hour (CUSTOS_OPENDSR_POLL_INTERVAL)")
	fs.StringVar(&c.pprofAddr, "pprof-addr", env(getenv, "CUSTOS_PPROF_ADDR", ""), "if set, serve Go profiling (net/http/pprof) on this separate address, e.g. 127.0.0.1:6060 (CUSTOS_PPROF_ADDR)")
	fs.StringVar(&c.metricsAddr, "metrics-addr", env(getenv, "CUSTOS_METRICS_ADDR", ""), "if set, serve /metrics without authentication on this separate address, e.g. 127.0.0.1:9090 (CUSTOS_METRICS_ADDR); on the API listener /metrics always needs the metrics or the operator token")
	fs.StringVar(&c.metricsToken, "metrics-token", env(getenv, "CUSTOS_METRICS_TOKEN", ""), "a Bearer token that reads /metrics on the API listener (CUSTOS_METRICS_TOKEN; the operator token always can)")
	c.smtp.register(fs, getenv)
	c.outbound.register(fs, envDefaults{getenv, &c.envErrs})
	c.limits.register(fs, envDefaults{getenv, &c.envErrs})
	fs.StringVar(&c.processorName, "processor-name", env(getenv, "CUSTOS_PROCESSOR_NAME", ""), "the processor (the organisation running this node) named in records of processing (CUSTOS_PROCESSOR_NAME)")
	fs.StringVar(&c.processorContact, "processor-contact", env(getenv, "CUSTOS_PROCESSOR_CONTACT", ""), "the processor's contact (e-mail or address) in records of processing (CUSTOS_PROCESSOR_CONTACT)")
	fs.DurationVar(&c.leaseTTL, "lease-ttl", duration("CUSTOS_LEASE_TTL", lease.DefaultTTL), "with several nodes on PostgreSQL: how long a dead node's background work (outbox, campaign run, erasure) waits before another node takes it over (CUSTOS_LEASE_TTL)")
	fs.DurationVar(&c.retentionInterval, "retention-interval", duration("CUSTOS_RETENTION_INTERVAL", time.Hour), "how often the retention sweep runs, at most 1h (CUSTOS_RETENTION_INTERVAL)")
	fs.DurationVar(&c.keyEpoch, "key-epoch", duration("CUSTOS_KEY_EPOCH", 24*time.Hour), "with --keys on PostgreSQL: how long a key epoch lasts; at its end live subject keys are re-sealed under a new epoch key and the old one is destroyed, which bounds how long a shredded key survives in the key database's dead rows and WAL (CUSTOS_KEY_EPOCH; see docs/postgres.md)")
	fs.DurationVar(&c.purgeInterval, "purge-interval", duration("CUSTOS_PURGE_INTERVAL", pebble.DefaultPurgeInterval), "longest wait between an erasure and the pass that purges its bytes from the store's files (embedded store) or tables (PostgreSQL: passes at every multiple of it on the clock) (CUSTOS_PURGE_INTERVAL)")
	fs.DurationVar(&c.walSyncInterval, "wal-sync-interval", duration("CUSTOS_WAL_SYNC_INTERVAL", pebble.DefaultWALSyncInterval), "embedded store: the least time between two syncs of its write-ahead log, so that more writes share one (acknowledgements stay durable); 0: sync at once (CUSTOS_WAL_SYNC_INTERVAL)")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", duration("CUSTOS_SHUTDOWN_TIMEOUT", 20*time.Second), "how long to wait for in-flight requests on shutdown (CUSTOS_SHUTDOWN_TIMEOUT)")
	return fs
}

// pebbleOptions are the embedded store's options the flags set.
func (c serveConfig) pebbleOptions() pebble.Options {
	o := pebble.Options{PurgeInterval: c.purgeInterval, WALSyncInterval: c.walSyncInterval}
	if c.walSyncInterval == 0 {
		o.WALSyncInterval = -1 // pebble.Options' zero is its default
	}
	return o
}

// The stages of a node, in the order they stop: stop accepting HTTP and
// drain the requests in flight; stop the parts that write through the
// writer (each after the work in hand); drain the writer, so every
// accepted message is durable; stop the other background parts (the
// tally records the last counts); close the stores.
const (
	stageHTTP       = "http"
	stageSenders    = "senders"
	stageWriter     = "writer"
	stageBackground = "background"
	stageStores     = "stores"
)

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c, help, err := parseServeFlags(args, getenv, stderr)
	if help || err != nil {
		return err
	}
	if err := c.limits.check(); err != nil {
		return err
	}
	if c.leaseTTL < 300*time.Millisecond {
		return fmt.Errorf("--lease-ttl %v: want at least 300ms (a lease is renewed every third of it)", c.leaseTTL)
	}
	if c.walSyncInterval < 0 || c.walSyncInterval > 10*time.Millisecond {
		return fmt.Errorf("--wal-sync-interval %v: want 0 (sync at once) to 10ms (every acknowledgement may wait this long)", c.walSyncInterval)
	}
	if c.publicURL != "" {
		if u, err := url.Parse(c.publicURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("--public-url %q: want an absolute http or https URL", c.publicURL)
		}
	}
	log, err := newLogger(stderr, c.logFormat, c.logLevel)
	if err != nil {
		return err
	}
	mailCfg, err := c.smtp.config()
	if err != nil {
		return err
	}
	// Every outbound connection a tenant can direct goes through guard.
	guard, err := c.outbound.guard()
	if err != nil {
		return err
	}
	if err := guardOperatorMail(guard, mailCfg); err != nil {
		return err
	}
	if err := os.MkdirAll(c.data, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	dataAbs, _ := filepath.Abs(c.data)

	token, tokenPath, err := operatorToken(getenv, c.data)
	if err != nil {
		return err
	}
	if tokenPath != "" {
		log.Info("operator token", "path", tokenPath)
	}

	sup := supervise.New(log, stageHTTP, stageSenders, stageWriter, stageBackground, stageStores)
	// Every return, early or orderly, stops what was started, in order.
	defer sup.Stop()

	master, _, err := keyring.LoadMasterKey(getenv, c.masterKeyFile, c.data, log)
	if err != nil {
		return err
	}
	m := metrics.New()
	sts, err := openStores(ctx, c.storeLoc, c.keysDir, c.data, master, c.pebbleOptions(), log, m)
	if err != nil {
		return err
	}
	sup.OnStop(stageStores, "stores", func() error { sts.Close(log); return nil })
	log.Info("stores open", "engine", sts.engine, "store", sts.dataDesc, "keys", sts.keysDesc)
	if pk, ok := sts.keys.(*postgres.KeyStore); ok {
		log.Info("key epochs", "epoch", pk.Epoch(), "length", c.keyEpoch)
		sup.Go(stageBackground, "key epochs", postgres.EpochRotator{Keys: pk, Period: c.keyEpoch, Log: log}.Run)
	}
	store := sts.data
	ring, err := keyring.New(ctx, sts.keys, master, keyring.Options{})
	if err != nil {
		return wrongMasterKey(err, sts.keysDesc)
	}

	signingKey, err := audit.LoadSigningKey(c.data)
	if err != nil {
		return err
	}
	auditLog := audit.New(store, time.Now)
	// Background work runs on one node at a time: on a shared database
	// under leases there, on the embedded store under this process's own.
	leaseStore, shared := store.(custos.LeaseStore)
	leases := lease.New(leaseStore, lease.Options{TTL: c.leaseTTL, Log: log})
	// resumeEvery is how often a node looks for work a dead node left
	// (zero: only at start, when this process is the only one).
	var resumeEvery time.Duration
	if shared {
		resumeEvery = c.leaseTTL
	}
	tally := audit.NewTally(auditLog, audit.TallyOptions{Every: time.Minute,
		OnError: func(err error) { log.Error("audit ingest summary", "err", err) }})
	// Stopped after the writer: the last counts are recorded once no
	// request is left.
	sup.Go(stageBackground, "audit tally", tally.Run)

	window, err := c.limits.window(sts.engine == "postgres")
	if err != nil {
		return err
	}
	log.Info("opening the ingest pipeline", "ingest_window", window)
	rebuildStart := time.Now()
	pipe, err := subjects.New(ctx, store, ring, subjects.Options{
		// Saved at an orderly stop, so a restart needs not read every record.
		FilterFile: filterFile(c.data),
		OnRebuild: func(n int, done bool) {
			if done {
				log.Info("duplicate filter rebuilt", "records", n, "took", time.Since(rebuildStart).Round(time.Millisecond).String())
			} else {
				log.Info("rebuilding the duplicate filter", "records_read", n)
			}
		},
		OnCommit: func(n int, d time.Duration) {
			m.StoreCommit.Observe(d.Seconds())
			m.CommitMessages.Observe(float64(n))
		},
		OnStaleRetry: m.StaleRetries.Inc,
		// Tenants share the writer round-robin, chunk by chunk.
		FairWindow: window,
		FairChunk:  c.limits.chunk,
	})
	if err != nil {
		return err
	}
	sup.Go(stageWriter, "ingest writer", pipe.Run)
	reg, err := tenants.Load(ctx, store, ring, c.region, time.Now, tenants.URLHost(guard.CheckHost))
	if err != nil {
		return err
	}
	// This region's tenants: those of other regions are another node's to
	// touch.
	localTenants := func() []*custos.Tenant {
		var out []*custos.Tenant
		for _, t := range reg.List() {
			if reg.Misdirected(t) == nil {
				out = append(out, t)
			}
		}
		return out
	}
	localTenantIDs := func() []custos.TenantID {
		var ids []custos.TenantID
		for _, t := range localTenants() {
			ids = append(ids, t.ID)
		}
		return ids
	}

	var tlsReloader *tlsconfig.Reloader
	if c.tlsCert != "" || c.tlsKey != "" || c.tlsSelfSigned {
		tlsReloader, err = tlsconfig.Load(tlsconfig.Options{CertFile: c.tlsCert, KeyFile: c.tlsKey, SelfSigned: c.tlsSelfSigned, DataDir: c.data, Log: log})
		if err != nil {
			return err
		}
		sup.OnStop(stageStores, "tls reloader", func() error { tlsReloader.Close(); return nil })
	}

	dsrSigner, dsrCert, err := loadOpenDSRKey(c, log)
	if err != nil {
		return err
	}

	reader := subjects.NewReader(store, ring)
	// The register records each incident webhook attempt the outbox makes.
	var incidents *incident.Register
	outbox := webhook.New(store, ring, webhook.Options{Log: log, Client: guard.HTTPClient(10 * time.Second),
		MaxAge: c.outbound.maxAge, OnGiveUp: func(d custos.Delivery) { m.OutboxGivenUp.WithLabelValues(d.Kind).Inc() },
		OnResult: func(d custos.Delivery) { incidents.RecordAttempt(d) },
		Signers: map[string]webhook.Signer{
			opendsr.SigningV2: opendsr.HeaderSigner{Key: dsrSigner, Domain: c.opendsrDomain},
			opendsr.SigningV1: opendsr.HeaderSigner{Key: dsrSigner, Domain: c.opendsrDomain, V1: true},
		}})
	// On a shared database, what other nodes change is seen here at once:
	// new, changed and deleted tenants, gate changes (the writer
	// refreshes before the next message instead of being refused once),
	// and deliveries queued (the outbox, if this node sends it, looks at
	// once instead of at its next poll).
	if feed, ok := store.(custos.ChangeFeed); ok {
		sup.Go(stageSenders, "change feed", func(ctx context.Context) error {
			return feed.ListenChanges(ctx, func(c custos.Change) { onChange(ctx, log, c, ring, reg, pipe, outbox) })
		})
	}
	incidents = incident.New(incident.Deps{Store: store, Tenants: reg, Outbox: outbox, Profiles: reader, Audit: auditLog,
		Mail: mailCfg, Now: time.Now, Log: log, Leases: leases})
	// Notifications a crash interrupted are finished before the outbox runs.
	if err := incidents.Resume(ctx); err != nil {
		return fmt.Errorf("resume incident notifications: %w", err)
	}
	sup.Go(stageBackground, "webhook outbox", leased(leases, "outbox", outbox.Run))
	sup.Go(stageBackground, "incident mail", leased(leases, "incident-mail", incidents.Run))
	if shared {
		sup.Go(stageBackground, "incident resumption", leased(leases, "incident-resume", every(resumeEvery, func(ctx context.Context) {
			if err := incidents.Resume(ctx); err != nil && ctx.Err() == nil {
				log.Error("resume incident notifications", "err", err)
			}
		})))
	}

	// The listener comes first: unsubscribe links and OpenDSR callback
	// URLs default to the address it got.
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", c.addr, err)
	}
	// Closed by the HTTP server's shutdown; this covers the returns before.
	sup.OnStop(stageHTTP, "listener", func() error { ln.Close(); return nil })
	scheme := "http"
	if tlsReloader != nil {
		scheme = "https"
	}
	publicURL, err := publicURLOf(c.publicURL, scheme, ln.Addr())
	if err != nil {
		return err
	}
	mailCAs, err := loadCAs(c.smtp.caFile)
	if err != nil {
		return err
	}
	ledger := consent.New(pipe, store, ring, time.Now)
	campaigns := campaign.New(campaign.Deps{Store: store, Profiles: reader, Gate: pipe, Consents: ledger, Keys: ring, Tenants: reg,
		Outbox: outbox, Audit: auditLog, PublicURL: publicURL, Now: time.Now, Log: log, MailRootCAs: mailCAs, MailDial: guard.DialContext,
		Resume: localTenantIDs, ResumeEvery: resumeEvery, Leases: leases})
	engine := rights.New(rights.Deps{Store: store, Gate: pipe, Subjects: reader, Keys: ring, Audit: auditLog,
		SigningKey: signingKey, Region: c.region, Now: time.Now, Consents: ledger, Tenant: reg.Get,
		Forward: forward.Options{Client: opendsr.NewClient(opendsr.ClientOptions{HTTP: guard.HTTPClient(10 * time.Second)}),
			PublicURL: func() string { return publicURL }, PollInterval: c.opendsrPoll},
		ForwardTenants: localTenantIDs, Leases: leases,
		URLHost:    guard.CheckHost,
		Recipients: store, Outbox: outbox, Deliveries: store, Sends: campaigns,
		CallbackSecret: func(id custos.TenantID) ([]byte, error) {
			t, ok := reg.Get(id)
			if !ok {
				return nil, custos.Errorf(custos.NotFound, "no tenant %s", id)
			}
			s, err := reg.CallbackSecret(t)
			return []byte(s), err
		}})
	// Erasures a crash interrupted finish before the node takes traffic.
	if n, err := engine.Resume(ctx, localTenantIDs()); err != nil {
		return fmt.Errorf("resume interrupted erasures: %w", err)
	} else if n > 0 {
		log.Info("resumed interrupted erasures", "count", n)
	}
	if shared {
		// Erasures whose node died are taken over once their lease expired.
		sup.Go(stageSenders, "erasure resumption", leased(leases, "request-resume", every(resumeEvery, func(ctx context.Context) {
			if n, err := engine.Resume(ctx, localTenantIDs()); err != nil && ctx.Err() == nil {
				log.Error("resume interrupted erasures", "err", err)
			} else if n > 0 {
				log.Info("resumed interrupted erasures", "count", n)
			}
		})))
	}
	// Campaign runs a stop interrupted resume; each stops at shutdown after
	// the recipient in hand, with its progress stored.
	sup.Go(stageSenders, "campaigns", campaigns.Run)
	// Retention: a sweep now and every --retention-interval, of this
	// region's tenants only; its deletions go through the writer.
	sweeper := retention.New(retention.Options{Store: store, Expirer: pipe, Audit: auditLog, Log: log,
		Interval: c.retentionInterval, Activity: []retention.Activity{retention.RequestActivity(store), ledger.LastActivity},
		Tenants: localTenants,
		OnSweep: func(_ custos.TenantID, r retention.Result) {
			m.RetentionEvents.Add(float64(r.Events))
			m.RetentionProfiles.Add(float64(r.Profiles))
		}})
	sup.Go(stageSenders, "retention", leased(leases, "retention", sweeper.Run))
	// Requests forwarded to OpenDSR recipients, those a restart
	// interrupted first. A failure to load them is logged, as before.
	sup.Go(stageBackground, "opendsr forwarding", leased(leases, "opendsr-forward", func(ctx context.Context) error {
		if err := engine.Forwarder().Run(ctx); err != nil {
			log.Error("opendsr forwarding stopped", "err", err)
		}
		return nil
	}))
	if pg, ok := sts.data.(*postgres.Store); ok {
		// The dead rows of erased (and merged-away) subjects leave the
		// tables by the pass at the next multiple of --purge-interval,
		// one node running the passes for the cluster.
		sup.Go(stageBackground, "purge passes", leased(leases, "purge", postgres.Purger{Store: pg, Report: func(took time.Duration, err error) {
			if err != nil {
				log.Error("purge pass", "err", err)
				return
			}
			log.Info("purge pass", "took", took)
		}}.Run))
	}
	if sts.pebble != nil {
		// The bytes of erased (and merged-away) subjects leave the
		// embedded store's files within --purge-interval of their
		// deletion.
		sup.Go(stageBackground, "purge passes", pebble.Purger{Store: sts.pebble, Report: func(n int, took time.Duration, err error) {
			if err != nil {
				log.Error("purge pass", "err", err)
				return
			}
			log.Info("purge pass", "subjects", n, "took", took)
		}}.Run)
	}
	if c.pprofAddr != "" {
		sup.Go(stageBackground, "pprof", pprofServer{addr: c.pprofAddr, store: sts.pebble, log: log}.Run)
	}

	security := processing.Security{}
	if tlsReloader != nil {
		security = processing.Security{TLS: true, TLSMinVersion: tls.VersionName(tlsReloader.Config().MinVersion)}
	}
	var ready atomic.Bool
	pages, err := console.New(console.Deps{Log: log, Sessions: store, Hasher: ring, Tenants: reg, Requests: engine, Subjects: reader, Consents: ledger,
		Recorder:   consent.NewRecorder(ledger, reader, auditLog, time.Now),
		Recipients: store, Flags: pipe, Audit: auditLog, AuditStore: store, SigningKey: signingKey.Public().(ed25519.PublicKey), PublicURL: publicURL,
		MailRootCAs: mailCAs, SecureCookies: tlsReloader != nil || strings.HasPrefix(publicURL, "https:"), Now: time.Now,
		Changes: tenants.NewAudited(reg, auditLog, log), Incidents: incidents, Campaigns: campaigns, Profiles: store,
		RecipientAdder: engine, ProcessingRecord: consoleProcessingRecord(reader, store, processing.Processor{Name: c.processorName, Contact: c.processorContact}, security), OperatorToken: token,
		Ready: func() bool { return ready.Load() && sts.Ready() }, Region: c.region})
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	// Sign-in e-mails being sent finish once HTTP has stopped.
	sup.OnStop(stageSenders, "console mail", func() error { pages.Wait(); return nil })
	handler := server.New(server.Deps{
		Log:           log,
		Tenants:       reg,
		Ingest:        pipe,
		Reader:        reader,
		Rights:        engine,
		Consent:       ledger,
		Recipients:    store,
		Campaigns:     campaigns,
		Metrics:       m,
		Audit:         auditLog,
		AuditStore:    store,
		Tally:         tally,
		Incidents:     incidents,
		SigningKey:    signingKey,
		OperatorToken: token,
		MetricsToken:  c.metricsToken,
		Now:           time.Now,
		Ready:         func() bool { return ready.Load() && sts.Ready() },
		HSTS:          tlsReloader != nil,

		Processor: processing.Processor{Name: c.processorName, Contact: c.processorContact},
		Security:  security,

		OpenDSRSigner:  dsrSigner,
		OpenDSRCertPEM: dsrCert,
		OpenDSRDomain:  c.opendsrDomain,
		OpenDSRParse:   opendsr.Options{AllowInsecureCallbacks: c.opendsrHTTPCallbacks, CallbackHost: guard.CheckHost},

		Admission: c.limits.admission(m),
		Backup:    backupFunc(sts, c.region),
		Console:   pages,
	})
	if c.metricsAddr != "" {
		ms, err := metricsServer(log, c.metricsAddr, server.MetricsHandler(m), c.limits)
		if err != nil {
			return err
		}
		sup.Go(stageHTTP, "metrics", ms.Run)
	}
	api := httpServer{ln: ln, handler: handler, log: log, shutdownTimeout: c.shutdownTimeout, limits: c.limits}
	if tlsReloader != nil {
		api.tls = tlsReloader.Config()
	}
	sup.Go(stageHTTP, "http", api.Run)
	ready.Store(true)
	log.Info("custos listening", "addr", ln.Addr().String(), "scheme", scheme, "public_url", publicURL, "data", dataAbs, "engine", sts.engine, "store", sts.dataDesc, "keys", sts.keysDesc, "region", c.region, "tenants", len(reg.List()))

	select {
	case <-ctx.Done():
	case err := <-sup.Failed():
		ready.Store(false)
		return err
	}
	ready.Store(false)
	log.Info("shutting down: draining in-flight requests")
	sup.Stop()
	log.Info("stopped: every accepted message is durable; the store is closed")
	return nil
}

// onChange refreshes what this node caches of what another node changed.
func onChange(ctx context.Context, log *slog.Logger, c custos.Change, ring *keyring.Ring, reg *tenants.Registry, pipe *subjects.Pipeline, outbox *webhook.Outbox) {
	switch c.Topic {
	case custos.ChangeOutbox:
		outbox.Kick()
		return
	case custos.ChangeSubject:
		ring.Forget(c.Tenant, c.Subject)
		return
	case custos.ChangeGate:
		if err := pipe.Refresh(ctx, c.Tenant); err != nil && ctx.Err() == nil {
			// The next guarded write is refused and refreshes then.
			log.Warn("refresh a tenant's gate after a change by another node", "tenant", c.Tenant.String(), "err", err)
		}
		return
	}
	if c.Topic == custos.ChangeAll {
		// Notifications were missed: a subject key another node shredded
		// meanwhile must not live on in this node's memory, and a delivery
		// queued meanwhile is looked for now.
		ring.ForgetAll()
		outbox.Kick()
	}
	// Keys first: a tenant is usable once its key is here.
	if err := ring.Refresh(ctx); err != nil && ctx.Err() == nil {
		log.Error("reload tenant keys after a change by another node", "err", err)
		return
	}
	if err := reg.Reload(ctx); err != nil && ctx.Err() == nil {
		log.Error("reload tenants after a change by another node", "err", err)
		return
	}
	if c.Topic == custos.ChangeAll {
		for _, ten := range reg.List() {
			if err := pipe.Refresh(ctx, ten.ID); err != nil && ctx.Err() == nil {
				log.Warn("refresh a tenant's gate", "tenant", ten.ID.String(), "err", err)
			}
		}
	}
}

// leased returns a Run that runs run only while this node holds the
// cluster-wide lease name (always, on a store this process alone opens).
func leased(l *lease.Leases, name string, run func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error { return l.Run(ctx, name, run) }
}

// every returns a Run that calls fn now and then every d until ctx ends.
func every(d time.Duration, fn func(context.Context)) func(context.Context) error {
	return func(ctx context.Context) error {
		tick := time.NewTicker(d)
		defer tick.Stop()
		for {
			fn(ctx)
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
			}
		}
	}
}

// publicURLOf returns the base URL of links to this server: the flag's
// value, or the scheme and listen address (a wildcard address becomes
// localhost).
func publicURLOf(flagValue, scheme string, addr net.Addr) (string, error) {
	if flagValue != "" {
		u, err := url.Parse(flagValue)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return "", fmt.Errorf("--public-url %q must be an absolute http or https URL without query or fragment", flagValue)
		}
		return strings.TrimRight(flagValue, "/"), nil
	}
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "", fmt.Errorf("listen address %s: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return scheme + "://" + net.JoinHostPort(host, port), nil
}

// loadCAs returns the system pool plus the certificates of a PEM file
// ("" : nil, the system pool alone).
func loadCAs(file string) (*x509.CertPool, error) {
	if file == "" {
		return nil, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--smtp-ca-file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("--smtp-ca-file %s holds no PEM certificate", file)
	}
	return pool, nil
}

// loadOpenDSRKey returns the key that signs OpenDSR answers and its
// certificate: the configured pair, or a development certificate.
func loadOpenDSRKey(c serveConfig, log *slog.Logger) (crypto.Signer, []byte, error) {
	var certPEM, keyPEM []byte
	switch {
	case c.opendsrCert != "" && c.opendsrKey != "":
		var err error
		if certPEM, err = os.ReadFile(c.opendsrCert); err != nil {
			return nil, nil, fmt.Errorf("opendsr certificate: %w", err)
		}
		if keyPEM, err = os.ReadFile(c.opendsrKey); err != nil {
			return nil, nil, fmt.Errorf("opendsr key: %w", err)
		}
	case c.opendsrCert != "" || c.opendsrKey != "":
		return nil, nil, errors.New("--opendsr-cert and --opendsr-key go together: give both, or neither for a development certificate")
	default:
		var err error
		if certPEM, keyPEM, err = opendsr.SelfSigned(c.opendsrDomain, filepath.Join(c.data, "opendsr")); err != nil {
			return nil, nil, err
		}
		log.Warn("OpenDSR answers are signed with a self-signed development certificate; "+
			"it is for development only and must be replaced (--opendsr-cert, --opendsr-key) by a CA-issued certificate whose SAN matches the domain",
			"domain", c.opendsrDomain)
	}
	// X509KeyPair parses EC and RSA keys in PKCS #8, SEC 1 and PKCS #1
	// form and checks that the key belongs to the certificate.
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("opendsr certificate and key: %w", err)
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("opendsr key: %T cannot sign", pair.PrivateKey)
	}
	if _, err := opendsr.Sign(signer, nil); err != nil {
		return nil, nil, fmt.Errorf("opendsr key: %w", err)
	}
	if pair.Leaf == nil {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, nil, fmt.Errorf("opendsr certificate: %w", err)
		}
	}
	if err := opendsr.CheckDomain(pair.Leaf, c.opendsrDomain); err != nil {
		return nil, nil, fmt.Errorf("opendsr certificate does not match --opendsr-domain: %s", custos.ErrorMessage(err))
	}
	return signer, certPEM, nil
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// operatorToken returns the operator token from CUSTOS_OPERATOR_TOKEN, or
// from <data>/operator.token, generating that file on first start.
func operatorToken(getenv func(string) string, data string) (token, path string, err error) {
	if t := getenv("CUSTOS_OPERATOR_TOKEN"); t != "" {
		return t, "", nil
	}
	path = filepath.Join(data, "operator.token")
	if b, err := os.ReadFile(path); err == nil {
		t := strings.TrimSpace(string(b))
		if t == "" {
			return "", "", fmt.Errorf("%s is empty: delete it to generate a new token", path)
		}
		return t, path, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", "", fmt.Errorf("read operator token: %w", err)
	}
	b := make([]byte, 32)
	rand.Read(b)
	t := "op_" + base64.RawURLEncoding.EncodeToString(b)
	if err := os.WriteFile(path, []byte(t+"\n"), 0o600); err != nil {
		return "", "", fmt.Errorf("write operator token: %w", err)
	}
	return t, path, nil
}

// backupFunc takes online backups of the embedded data store; on
// PostgreSQL it refuses, naming the database's own tools.
func backupFunc(sts *stores, region string) server.BackupFunc {
	if sts.pebble == nil {
		return func(context.Context, string, func(string)) error {
			return custos.Errorf(custos.NotImplemented, "this node's data store is PostgreSQL (%s): custos backup copies the embedded store only; back up PostgreSQL with its own tools (pg_basebackup with WAL archiving for point-in-time recovery, or pg_dump), and the key database apart, see docs/security.md", sts.dataDesc)
		}
	}
	return func(ctx context.Context, dir string, progress func(string)) error {
		_, err := backup.Take(ctx, sts.pebble, dir, region, time.Now, progress)
		return err
	}
}

// consoleProcessingRecord builds a tenant's record of processing for the console,
// as GET /api/v1/processing-record does.
func consoleProcessingRecord(reader *subjects.Reader, recipients custos.RecipientStore, p processing.Processor, sec processing.Security) console.ProcessingRecordFunc {
	return func(ctx context.Context, t *custos.Tenant) (*processing.Record, error) {
		observed, err := reader.Observed(ctx, t.ID)
		if err != nil {
			return nil, err
		}
		in := processing.Inputs{Tenant: t, Processor: p, Security: sec, Now: time.Now(),
			IPv4Prefix: segment.IPv4Bits, IPv6Prefix: segment.IPv6Bits}
		for _, c := range observed {
			in.Observed = append(in.Observed, processing.Category{Name: c.Name, FirstSeen: c.FirstSeen})
		}
		if in.Recipients, err = recipients.Recipients(ctx, t.ID); err != nil {
			return nil, err
		}
		return processing.Build(in), nil
	}
}
