package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// PoolStats is a database connection pool's state.
type PoolStats struct {
	// Acquired connections are in use, Idle ones wait, Total is both
	// plus those being opened; Max is the pool's bound.
	Acquired, Idle, Total, Max int32
	// AcquireWait is the total time spent waiting for a connection.
	AcquireWait time.Duration
	// Acquires counts connections handed out.
	Acquires int64
}

// ObserveStoreQuery records the latency of one database statement or batch.
func (m *Metrics) ObserveStoreQuery(d time.Duration, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	m.StoreQueries.WithLabelValues(outcome).Observe(d.Seconds())
}

// WatchPool exposes a connection pool's state, read from stat at each
// scrape, labelled with the database's role (data or keys).
func (m *Metrics) WatchPool(role string, stat func() PoolStats) {
	labels := prometheus.Labels{"database": role}
	gauge := func(name, help string, v func(PoolStats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels}, func() float64 { return v(stat()) })
	}
	m.Registry.MustRegister(
		gauge("custos_db_pool_acquired_connections", "Connections in use.", func(s PoolStats) float64 { return float64(s.Acquired) }),
		gauge("custos_db_pool_idle_connections", "Idle connections.", func(s PoolStats) float64 { return float64(s.Idle) }),
		gauge("custos_db_pool_total_connections", "Open connections, in use, idle or being opened.", func(s PoolStats) float64 { return float64(s.Total) }),
		gauge("custos_db_pool_max_connections", "The pool's bound.", func(s PoolStats) float64 { return float64(s.Max) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "custos_db_pool_acquire_wait_seconds_total", Help: "Time spent waiting for a connection.", ConstLabels: labels},
			func() float64 { return stat().AcquireWait.Seconds() }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "custos_db_pool_acquires_total", Help: "Connections handed out.", ConstLabels: labels},
			func() float64 { return float64(stat().Acquires) }),
	)
}
