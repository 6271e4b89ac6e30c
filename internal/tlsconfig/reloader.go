package tlsconfig

import (
	"crypto/tls"
	"sync"
	"sync/atomic"
	"time"
)

// Reloader holds the server certificate and replaces it when its files
// change on disk. Its methods are safe for concurrent use.
type Reloader struct {
	opts Options // defaults filled in; in self-signed mode CertFile and KeyFile point into DataDir
	cert atomic.Pointer[tls.Certificate]

	mu   sync.Mutex // serialises check
	seen stamp      // of the files last loaded, or last found broken

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// Load loads the certificate pair described by opts, generating the
// self-signed one first if asked to, and starts watching the files for
// changes. Errors name the file at fault. Call Close to stop watching.
func Load(opts Options) (*Reloader, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if o.SelfSigned {
		o.CertFile, o.KeyFile, err = prepareSelfSigned(o)
		if err != nil {
			return nil, err
		}
		o.Log.Warn("WARNING: serving a self-signed TLS certificate, for development only. "+
			"Clients will not trust it; replace it with a certificate issued by a CA before production use",
			"cert", o.CertFile, "key", o.KeyFile)
	}
	r := &Reloader{opts: o, stop: make(chan struct{}), done: make(chan struct{})}
	r.seen = statPair(o.CertFile, o.KeyFile)
	cert, err := loadPair(o.CertFile, o.KeyFile)
	if err != nil {
		return nil, err
	}
	r.cert.Store(cert)
	logLoaded(o.Log, "TLS certificate loaded", o.CertFile, cert, o.Now())
	go r.watch()
	return r, nil
}

// Config returns a server configuration that presents the Reloader's
// current certificate on every handshake. Each call returns a new Config
// the caller may change. Leave its Certificates empty: crypto/tls serves
// Certificates[0] instead of asking GetCertificate when a client sends no
// server name (httptest.Server.StartTLS fills it in that way).
func (r *Reloader) Config() *tls.Config {
	return serverConfig(func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		return r.cert.Load(), nil
	})
}

// Close stops watching the files and waits for the watcher to finish.
// Configs already handed out keep serving the last certificate loaded.
// Close may be called more than once.
func (r *Reloader) Close() {
	r.closeOnce.Do(func() { close(r.stop) })
	<-r.done
}

func (r *Reloader) watch() {
	defer close(r.done)
	t := time.NewTicker(r.opts.interval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			r.check()
		}
	}
}

// check reloads the pair if its files changed since the last look. A pair
// that does not load is logged once and the current certificate kept; it
// is tried again when the files change again, as they do when the second
// file of a renewal lands.
func (r *Reloader) check() {
	r.mu.Lock()
	defer r.mu.Unlock()
	log, now := r.opts.Log, r.opts.Now()
	if r.opts.SelfSigned && !usable(r.cert.Load().Leaf, r.opts.Hosts, now) {
		if err := generateSelfSigned(r.opts.CertFile, r.opts.KeyFile, r.opts.Hosts, now); err != nil {
			log.Error("renew the self-signed TLS certificate", "err", err)
		}
	}
	s := statPair(r.opts.CertFile, r.opts.KeyFile)
	if s == r.seen {
		return
	}
	r.seen = s
	cert, err := loadPair(r.opts.CertFile, r.opts.KeyFile)
	if err != nil {
		log.Error("TLS certificate files changed but do not load; still serving the previous certificate", "err", err)
		return
	}
	r.cert.Store(cert)
	logLoaded(log, "TLS certificate reloaded", r.opts.CertFile, cert, now)
}
