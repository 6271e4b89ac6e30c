package postgres_test

import (
	"context"
	"testing"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/pgtest"
	"github.com/custos-dev/custos/internal/postgres"
	"github.com/custos-dev/custos/internal/storetest"
)

// openStore opens a store on the database at url and closes it when the
// test ends.
func openStore(tb testing.TB, url string) *postgres.Store {
	tb.Helper()
	st, err := postgres.Open(context.Background(), url, postgres.Options{})
	if err != nil {
		tb.Fatalf("Open(%s) = %v, want nil", url, err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) custos.Store { return openStore(t, pgtest.NewDatabase(t)) })
}

// TestKeyStore runs the key store conformance suite on a key store in a
// database of its own.
func TestKeyStore(t *testing.T) {
	storetest.RunKeyStore(t, func(t *testing.T) custos.KeyStore { return openKeyStore(t, pgtest.NewDatabase(t)) })
}

// TestStoreShared runs the two-handle cases with two pools on one
// database, as two nodes hold them.
func TestStoreShared(t *testing.T) {
	storetest.RunShared(t, func(t *testing.T) (custos.Store, custos.Store) {
		url := pgtest.NewDatabase(t)
		return openStore(t, url), openStore(t, url)
	})
}

// TestLeases runs the lease conformance cases with two pools on one
// database, as two nodes hold them.
func TestLeases(t *testing.T) {
	storetest.RunLeases(t, func(t *testing.T) (custos.LeaseStore, custos.LeaseStore) {
		url := pgtest.NewDatabase(t)
		return openStore(t, url), openStore(t, url)
	})
}

// TestFencing runs the fencing cases with two pools on one database, as
// two nodes hold them.
func TestFencing(t *testing.T) {
	storetest.RunFencing(t, func(t *testing.T) (storetest.SharedStore, storetest.SharedStore) {
		url := pgtest.NewDatabase(t)
		return openStore(t, url), openStore(t, url)
	})
}
