package custos

import (
	"context"
	"fmt"
)

// Guard states what the author of a Write believed about a tenant's
// shared state when it composed the Write, from its in-memory caches.
// Several processes may write one store (several nodes on one
// PostgreSQL database); a store shared that way checks the guard in the
// transaction of the write and refuses the whole Apply with a
// *StaleError when it no longer holds, so that a node's memory can be
// wrong only in the safe direction: the write is refused and retried
// after the caches are refreshed, never admitted on stale beliefs. A
// store only one process writes (the embedded store) may ignore it.
type Guard struct {
	// Generation is the tenant's gate generation (GateStore.Generation)
	// the author's caches of the ingestion gate reflect: flags,
	// tombstones, consent records, merges and the identifier index.
	Generation uint64
	// Advance says that the Write changes what the gate admits (flags,
	// tombstones, consents, merges, unlinks, subject deletions): the
	// store moves the generation to Generation+1 with it, so every other
	// writer's next guarded Write is refused until it has refreshed.
	Advance bool
	// NewSeen are message hashes the author believes were never stored:
	// the Write is refused if any of them has a deduplication record.
	NewSeen []MessageHash
	// NewLinks are identifier hashes the author believes point at no
	// subject: the Write is refused if any of them does (another writer
	// linked it first), so two writers never split one person in two.
	NewLinks []IdentifierHash
	// Profiles are the stored profiles the Write replaces or deletes, as
	// the author read them: the SHA-256 of the sealed bytes, or zero for
	// none. The Write is refused if any changed meanwhile, so a profile
	// (its identifiers, traits) or a merged subject's events written by
	// another writer in between are never overwritten or deleted unseen.
	Profiles map[SubjectID][32]byte
	// Events are the subjects whose events the Write deletes after
	// copying them (a merge), with how many the author read: the Write is
	// refused if another writer stored or deleted one meanwhile.
	Events map[SubjectID]int
	// Observed, if not nil, is the tenant's stored record of observed
	// data categories (Write.Observed) the Write replaces, as the author
	// read it: the SHA-256 of the sealed bytes, or zero for none. The
	// Write is refused if it changed meanwhile, so the categories another
	// writer noted are never overwritten unseen.
	Observed *[32]byte
}

// StaleError is the refusal of a guarded Write whose guard no longer
// held. It names what was stale, so the writer refreshes just that; the
// store changed nothing.
type StaleError struct {
	Tenant TenantID
	// Generation is the tenant's current gate generation, when the
	// generation was what differed (else zero and GenerationStale false).
	Generation      uint64
	GenerationStale bool
	// Seen are the hashes of Guard.NewSeen that were stored meanwhile.
	Seen []MessageHash
	// Links is true when one of Guard.NewLinks was linked meanwhile.
	Links bool
	// Profiles is true when one of Guard.Profiles or Guard.Events
	// changed meanwhile.
	Profiles bool
	// Observed is true when the record of Guard.Observed changed
	// meanwhile.
	Observed bool
}

func (e *StaleError) Error() string {
	return fmt.Sprintf("tenant %s: the write was composed from stale state (generation stale %t, %d messages stored meanwhile, links stale %t, profiles stale %t, observed categories stale %t)",
		e.Tenant, e.GenerationStale, len(e.Seen), e.Links, e.Profiles, e.Observed)
}

// GateStore is implemented by stores several processes may share. Such a
// store checks every Write's Guard.
type GateStore interface {
	// Generation returns the tenant's gate generation (zero for a tenant
	// whose gate never changed).
	Generation(ctx context.Context, t TenantID) (uint64, error)
	// Generations returns every tenant's gate generation that is not zero.
	Generations(ctx context.Context) (map[TenantID]uint64, error)
}
