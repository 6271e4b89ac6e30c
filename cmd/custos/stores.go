package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/keyring"
	"github.com/custos-dev/custos/internal/metrics"
	"github.com/custos-dev/custos/internal/pebble"
	"github.com/custos-dev/custos/internal/postgres"
)

// stores are the data and key stores a node runs on, whichever engine
// each is.
type stores struct {
	data custos.Store
	keys custos.KeyStore
	// dataDesc and keysDesc say where each is, fit for a log line
	// (directory or URL without password).
	dataDesc, keysDesc string
	// engine is "pebble" or "postgres" (the data store's).
	engine string
	// pebble is the embedded data store, nil on PostgreSQL.
	pebble *pebble.Store
	// shared is true when the data store may be shared with other nodes.
	shared bool
	pings  []func(context.Context) error
}

// Close closes both stores.
func (s *stores) Close(log *slog.Logger) {
	if s.data != nil {
		if err := s.data.Close(); err != nil {
			log.Error("close store", "err", err)
		}
	}
	if s.keys != nil {
		s.keys.Close()
	}
}

// Ready reports whether every database answers within a second (the
// embedded store always does).
func (s *stores) Ready() bool {
	for _, ping := range s.pings {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := ping(ctx)
		cancel()
		if err != nil {
			return false
		}
	}
	return true
}

// sameDatabase reports whether two PostgreSQL URLs name the same database
// on the same server, as far as the URLs tell (the databases themselves
// also refuse to play both roles).
func sameDatabase(a, b string) bool {
	ua, errA := url.Parse(a)
	ub, errB := url.Parse(b)
	if errA != nil || errB != nil {
		return a == b
	}
	host := func(u *url.URL) string {
		h := u.Host
		if q := u.Query().Get("host"); q != "" {
			h = q
		}
		if h == "" {
			h = "localhost"
		}
		if !strings.Contains(h, ":") && !strings.HasPrefix(h, "/") {
			h += ":5432"
		}
		return h
	}
	return host(ua) == host(ub) && strings.TrimPrefix(ua.Path, "/") == strings.TrimPrefix(ub.Path, "/")
}

// openStores opens the data store named by store (a directory, or a
// postgres:// URL; empty: <data>/store) and the key store named by keys
// (a directory or a postgres:// URL of a separate database; empty:
// <data>/keys; a PostgreSQL key store seals its epoch keys under a key
// derived from master), with query metrics on m when it is not nil. An embedded
// data store is opened with po (its Log set to log).
func openStores(ctx context.Context, store, keys, data string, master []byte, po pebble.Options, log *slog.Logger, m *metrics.Metrics) (*stores, error) {
	if store == "" {
		store = filepath.Join(data, "store")
	}
	if keys == "" {
		keys = filepath.Join(data, "keys")
	}
	if postgres.IsURL(store) && postgres.IsURL(keys) && sameDatabase(store, keys) {
		return nil, fmt.Errorf("--store and --keys name the same database (%s): the keys need a separate database, backed up and retained apart from the data", postgres.Redact(store))
	}
	if !postgres.IsURL(store) && !postgres.IsURL(keys) {
		if sa, _ := filepath.Abs(store); sa != "" {
			if ka, _ := filepath.Abs(keys); ka == sa {
				return nil, fmt.Errorf("--store and --keys name the same directory %s: the keys need a directory of their own", sa)
			}
		}
	}
	opts := postgres.Options{Log: log, MasterKey: master, PurgeInterval: po.PurgeInterval}
	if m != nil {
		opts.OnQuery = func(d time.Duration, err error) { m.ObserveStoreQuery(d, err) }
	}
	s := &stores{}
	if postgres.IsURL(keys) {
		ks, err := postgres.OpenKeyStore(ctx, keys, opts)
		if errors.Is(err, postgres.ErrEpochMaster) {
			return nil, fmt.Errorf("the key store %s was written with another master key than the one given (CUSTOS_MASTER_KEY / --master-key-file): every node of a deployment needs the same master key: %w", postgres.Redact(keys), err)
		}
		if err != nil {
			return nil, err
		}
		s.keys, s.keysDesc = ks, postgres.Redact(keys)
		s.pings = append(s.pings, ks.Ping)
		if m != nil {
			m.WatchPool("keys", func() metrics.PoolStats { return metrics.PoolStats(ks.Stats()) })
		}
	} else {
		ks, err := pebble.OpenKeyStore(keys)
		if err != nil {
			return nil, err
		}
		s.keys, s.keysDesc = ks, absPath(keys)
	}
	if postgres.IsURL(store) {
		st, err := postgres.Open(ctx, store, opts)
		if err != nil {
			s.Close(log)
			return nil, err
		}
		s.data, s.dataDesc, s.engine, s.shared = st, postgres.Redact(store), "postgres", true
		s.pings = append(s.pings, st.Ping)
		if m != nil {
			m.WatchPool("data", func() metrics.PoolStats { return metrics.PoolStats(st.Stats()) })
		}
	} else {
		po.Log = log
		st, err := pebble.Open(store, po)
		if err != nil {
			s.Close(log)
			return nil, err
		}
		s.data, s.dataDesc, s.engine, s.pebble = st, absPath(store), "pebble", st
	}
	return s, nil
}

// wrongMasterKey explains keyring.ErrWrongMasterKey for the key store at desc.
func wrongMasterKey(err error, desc string) error {
	if errors.Is(err, keyring.ErrWrongMasterKey) {
		return fmt.Errorf("the key store %s was written with another master key than the one given (CUSTOS_MASTER_KEY / --master-key-file): every node of a deployment needs the same master key: %w", desc, err)
	}
	return err
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func appliedText(vs []int) string {
	if len(vs) == 0 {
		return "up to date"
	}
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = fmt.Sprintf("%04d", v)
	}
	return "applied migrations " + strings.Join(parts, ", ")
}

// filterFile is where the duplicate filter is saved at an orderly stop,
// in the data directory. On a shared database other nodes store messages
// while this one is stopped, and the loaded filter lacks them; that is
// safe there, because a message stored as new inserts its deduplication
// record without ON CONFLICT: the database refuses the one another node
// stored, and the writer composes the group again, finding it stored.
func filterFile(data string) string {
	return filepath.Join(data, "dedupe.filter")
}
