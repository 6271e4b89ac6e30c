package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// metricsServer listens on its own address for h (the Prometheus
// metrics, without authentication); the supervisor runs it beside the
// API listener. Listening here, before anything runs, makes a bad
// address fail the start.
func metricsServer(log *slog.Logger, addr string, h http.Handler, limits limitFlags) (httpServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return httpServer{}, fmt.Errorf("metrics address %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	log.Info("metrics listening", "addr", ln.Addr().String())
	return httpServer{ln: ln, handler: mux, log: log, shutdownTimeout: 5 * time.Second, limits: limits}, nil
}
