package lease_test

import (
	"testing"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/lease"
	"github.com/custos-dev/custos/internal/storetest"
)

// TestLocal runs the lease conformance cases on the in-memory leases of
// a store one process owns.
func TestLocal(t *testing.T) {
	storetest.RunLeases(t, func(t *testing.T) (custos.LeaseStore, custos.LeaseStore) {
		l := &lease.Local{}
		return l, l
	})
}
