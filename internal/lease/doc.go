// Package lease runs background work on one node of a cluster at a time:
// the outbox, campaign runs, an erasure's steps. Work is done while its
// node holds a lease in the shared store (custos.LeaseStore), renewed
// while the work goes on; a node that dies stops renewing, and another
// node takes the work over once the lease expires.
//
// On a store one process owns (the embedded store) the leases are kept in
// that process's memory (Local): the node holds every lease that no work
// of its own holds, so single-node behaviour is unchanged.
package lease
