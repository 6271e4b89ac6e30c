package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/custos-dev/custos/internal/pebble"
)

// httpServer is the API listener as a supervised part.
type httpServer struct {
	ln              net.Listener
	handler         http.Handler
	tls             *tls.Config // nil: plain HTTP
	log             *slog.Logger
	shutdownTimeout time.Duration
}

// Run serves until ctx ends, then stops accepting connections and waits
// up to the shutdown timeout for the requests in flight.
func (h httpServer) Run(ctx context.Context) error {
	srv := &http.Server{
		Handler:           h.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(h.log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() {
		if h.tls != nil {
			// Certificates stays empty so every handshake asks the reloader.
			srv.TLSConfig = h.tls
			serveErr <- srv.ServeTLS(h.ln, "", "")
		} else {
			serveErr <- srv.Serve(h.ln)
		}
	}()
	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), h.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		h.log.Warn("shutdown did not drain every request", "err", err)
		srv.Close()
	}
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// pprofServer serves the profiling endpoints, and the embedded store's
// LSM metrics at /debug/pebble, on their own listener, never on the public one.
type pprofServer struct {
	addr  string
	store *pebble.Store
	log   *slog.Logger
}

// Run serves until ctx ends. A listener that cannot be opened is logged,
// and the node runs on without profiling.
func (p pprofServer) Run(ctx context.Context) error {
	mux := http.NewServeMux()
	if p.store != nil { // the embedded store's LSM; none on PostgreSQL
		mux.HandleFunc("/debug/pebble", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, p.store.Metrics().String())
		})
		// The raw byte counters behind the write amplification, so that a
		// benchmark can take it over just its own run (see
		// docs/benchmarks-storage.md).
		mux.HandleFunc("/debug/pebble/total", func(w http.ResponseWriter, r *http.Request) {
			tot := p.store.Metrics().Total()
			fmt.Fprintf(w, "{\"bytes_in\":%d,\"bytes_flushed\":%d,\"bytes_compacted\":%d,\"write_amp\":%.3f}\n",
				tot.TableBytesIn, tot.TableBytesFlushed, tot.TableBytesCompacted, tot.WriteAmp())
		})
	}
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.log.Error("pprof listener", "err", err)
		return nil
	}
	p.log.Info("profiling enabled", "addr", ln.Addr().String())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		p.log.Error("pprof listener", "err", err)
		return nil
	case <-ctx.Done():
	}
	srv.Close()
	<-done
	return nil
}
