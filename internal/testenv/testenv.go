// Package testenv opens the storage Custos tests run on — a Pebble data
// store, the key store beside it and a keyring over both — in a directory
// of the test's, and closes it again, so a test can stop and restart a
// node's storage without repeating the steps; and it gives tests a
// settable clock to inject. It is for tests only.
package testenv

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/custos-dev/custos/internal/keyring"
	"github.com/custos-dev/custos/internal/pebble"
)

// Clock is a settable clock, safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock standing at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// Add moves the clock on by d.
func (c *Clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// Set sets the clock to t.
func (c *Clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// Master returns a new random master key.
func Master() []byte {
	m := make([]byte, 32)
	rand.Read(m)
	return m
}

// Storage is an open data store, key store and keyring.
type Storage struct {
	Store *pebble.Store
	Keys  *pebble.KeyStore
	Ring  *keyring.Ring
}

// Open opens, creating them if need be, the data store in dir/store and
// the key store in dir/keys, and a keyring over the key store with
// master; it fails t on any error. The caller closes what it opened with
// Close (after whatever writes through it, such as an ingest pipeline).
func Open(t testing.TB, dir string, master []byte, opts pebble.Options) *Storage {
	t.Helper()
	var s Storage
	var err error
	if s.Keys, err = pebble.OpenKeyStore(filepath.Join(dir, "keys")); err != nil {
		t.Fatalf("open key store: %v", err)
	}
	if s.Ring, err = keyring.New(context.Background(), s.Keys, master, keyring.Options{}); err != nil {
		s.Keys.Close()
		t.Fatalf("open keyring: %v", err)
	}
	if s.Store, err = pebble.Open(filepath.Join(dir, "store"), opts); err != nil {
		s.Keys.Close()
		t.Fatalf("open store: %v", err)
	}
	return &s
}

// Close closes the data store and the key store, reporting errors to t.
func (s *Storage) Close(t testing.TB) {
	t.Helper()
	if err := s.Store.Close(); err != nil {
		t.Errorf("close store: %v", err)
	}
	if err := s.Keys.Close(); err != nil {
		t.Errorf("close key store: %v", err)
	}
}
