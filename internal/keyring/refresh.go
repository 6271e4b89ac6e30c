package keyring

import (
	"context"
	"fmt"
	"github.com/custos-dev/custos"
)

// Refresh reads the tenant keys again from the key store, for a key store
// other nodes share: a tenant another node created gets its keys here, and
// one another node deleted is deleted here too (its subject keys leave the
// cache). Keys of tenants already known are kept as they are.
func (r *Ring) Refresh(ctx context.Context) error {
	wrapped, err := r.ks.TenantKeys(ctx)
	if err != nil {
		return fmt.Errorf("keyring: refresh tenant keys: %w", err)
	}
	deleted, err := r.deletedTenants(ctx)
	if err != nil {
		return err
	}
	r.tenantMu.Lock()
	defer r.tenantMu.Unlock()
	for _, t := range deleted {
		if tk := (*r.tenants.Load())[t]; tk == nil || !tk.deleted.Load() {
			if tk != nil {
				tk.deleted.Store(true) // before evicting: see cache.add
			}
			r.setTenant(t, deletedTenant(t))
			r.cache.removeTenant(t)
		}
	}
	for t, w := range wrapped {
		if (*r.tenants.Load())[t] != nil {
			continue
		}
		key, err := open(r.master, nil, adTenantKey(t), w)
		if err != nil {
			return fmt.Errorf("keyring: tenant %s: key does not open under the master key: %w", t, err)
		}
		tk, err := newTenant(t, key)
		if err != nil {
			return fmt.Errorf("keyring: tenant %s: %w", t, err)
		}
		r.setTenant(t, tk)
	}
	return nil
}

// Forget drops subject s's key from memory, for a key store other nodes
// share: another node erased (or merged away) the subject, and the next
// use of its key reads the key store again, where a shredded key answers
// custos.ErrShredded.
func (r *Ring) Forget(t custos.TenantID, s custos.SubjectID) {
	key := cacheKey{t, s}
	mu := r.stripe(key)
	mu.Lock() // a load in progress finishes first, and is evicted
	defer mu.Unlock()
	r.cache.remove(key, nil)
}

// ForgetAll drops every subject key from memory, for a key store other
// nodes share, when this node may have missed their changes (its
// notifications were cut off): a key another node shredded meanwhile is
// read again, and answers custos.ErrShredded, instead of living on in this
// node's cache. Tenant keys are kept; Refresh reloads those.
func (r *Ring) ForgetAll() {
	// Every stripe, in order: a load in progress finishes first, and is
	// evicted with the rest.
	for i := range r.stripes {
		r.stripes[i].Lock()
		defer r.stripes[i].Unlock()
	}
	r.cache.removeAll()
}
