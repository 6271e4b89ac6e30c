// Package metrics defines the Prometheus metrics Custos exposes at
// /metrics. Labels never carry personal data.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds every collector, registered on its own registry.
type Metrics struct {
	Registry *prometheus.Registry
	// Accepted counts messages stored as new events.
	Accepted prometheus.Counter
	// Rejected counts messages refused, by reason (e.g. missing_identity).
	Rejected *prometheus.CounterVec
	// Dropped counts messages answered 200 but not stored, by reason
	// (duplicate, later suppressed).
	Dropped *prometheus.CounterVec
	// ConsentRecorded counts consent records taken from ingested messages;
	// ConsentUnmapped counts SDK consent categories that map to no purpose
	// (ignored; see the consent_categories setting).
	ConsentRecorded prometheus.Counter
	ConsentUnmapped prometheus.Counter
	// Requests observes HTTP request latency by route pattern and status.
	Requests *prometheus.HistogramVec
	// StoreCommit observes how long a group commit took to become durable.
	StoreCommit prometheus.Histogram
	// CommitMessages observes how many messages shared one commit.
	CommitMessages prometheus.Histogram
	// StaleRetries counts groups of messages composed again because a
	// shared store refused them as stale (another node had changed what
	// they were composed on).
	StaleRetries prometheus.Counter
	// RetentionEvents and RetentionProfiles count what retention sweeps
	// removed.
	RetentionEvents   prometheus.Counter
	RetentionProfiles prometheus.Counter
	// StoreQueries observes PostgreSQL statement and batch latency, by
	// outcome (ok, error); empty on the embedded store.
	StoreQueries *prometheus.HistogramVec
	// OutboxGivenUp counts deliveries given up because they stayed
	// undelivered past the outbox's maximum age, by kind.
	OutboxGivenUp *prometheus.CounterVec
	// RateLimited counts requests answered 429 by a rate limit, by tenant
	// and scope (ingest, api).
	RateLimited *prometheus.CounterVec
}

// New returns a fresh set of metrics, with Go and process collectors.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "custos_messages_accepted_total", Help: "Messages stored as new events.",
		}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "custos_messages_rejected_total", Help: "Messages refused, by reason.",
		}, []string{"reason"}),
		Dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "custos_messages_dropped_total", Help: "Messages acknowledged but not stored, by reason.",
		}, []string{"reason"}),
		ConsentRecorded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "custos_consent_records_from_sdk_total", Help: "Consent records taken from ingested messages (changes only).",
		}),
		ConsentUnmapped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "custos_consent_categories_unmapped_total", Help: "SDK consent categories that map to no declared purpose, ignored.",
		}),
		Requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "custos_http_request_duration_seconds",
			Help:    "HTTP request latency by route and status code.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"route", "code"}),
		StoreCommit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "custos_store_commit_seconds",
			Help:    "Time from the start of a group commit until it is durable.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		CommitMessages: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "custos_store_commit_messages",
			Help:    "Messages per group commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 15),
		}),
		StaleRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "custos_ingest_stale_retries_total", Help: "Groups of messages composed again after a shared store refused them as stale.",
		}),
		RetentionEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "custos_retention_events_removed_total", Help: "Events deleted by retention sweeps.",
		}),
		RetentionProfiles: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "custos_retention_profiles_removed_total", Help: "Profiles of subjects left with nothing, deleted by retention sweeps.",
		}),
	}
	m.StoreQueries = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "custos_store_query_seconds",
		Help:    "PostgreSQL statement and batch latency, by outcome.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
	}, []string{"outcome"})
	m.OutboxGivenUp = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "custos_outbox_given_up_total", Help: "Deliveries given up after the outbox's maximum age, by kind.",
	}, []string{"kind"})
	m.RateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "custos_rate_limited_total", Help: "Requests answered 429 by a rate limit, by tenant and scope.",
	}, []string{"tenant", "scope"})
	m.Registry.MustRegister(m.StaleRetries, m.RetentionEvents, m.RetentionProfiles, m.StoreQueries, m.OutboxGivenUp, m.RateLimited)
	m.Registry.MustRegister(m.Accepted, m.Rejected, m.Dropped, m.ConsentRecorded, m.ConsentUnmapped, m.Requests, m.StoreCommit, m.CommitMessages,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
