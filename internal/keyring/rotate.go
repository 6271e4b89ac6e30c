package keyring

import (
	"context"
	"fmt"

	"github.com/custos-dev/custos"
)

// RotateMaster re-wraps every tenant key of ks under newKey and replaces
// the master check, in one atomic, durable KeyStore.PutTenantKeys call: a
// crash leaves either oldKey or newKey valid, never a mix. No data and no
// subject key is rewritten (subject keys are wrapped by tenant keys).
//
// It is idempotent: if ks already answers to newKey it does nothing, so an
// interrupted rotation can simply be run again. It refuses an oldKey that
// does not open ks (ErrWrongMasterKey). Run it while no Ring has ks open.
func RotateMaster(ctx context.Context, ks custos.KeyStore, oldKey, newKey []byte) error {
	return rotateMaster(ctx, ks, oldKey, newKey, nil)
}

// rotateMaster is RotateMaster with a hook run just before the one write,
// so tests can stop the rotation where a crash would.
func rotateMaster(ctx context.Context, ks custos.KeyStore, oldKey, newKey []byte, beforeCommit func() error) error {
	oldM, err := newAEAD(oldKey)
	if err != nil {
		return fmt.Errorf("rotate master key: old key: %w", err)
	}
	newM, err := newAEAD(newKey)
	if err != nil {
		return fmt.Errorf("rotate master key: new key: %w", err)
	}
	if ok, _, err := checkMaster(ctx, ks, newM); err != nil {
		return fmt.Errorf("rotate master key: %w", err)
	} else if ok {
		return nil // done already
	}
	ok, found, err := checkMaster(ctx, ks, oldM)
	switch {
	case err != nil:
		return fmt.Errorf("rotate master key: %w", err)
	case !found:
		return fmt.Errorf("rotate master key: the key store has no master check yet; start custos on it once first")
	case !ok:
		return ErrWrongMasterKey
	}

	wrapped, err := ks.TenantKeys(ctx)
	if err != nil {
		return fmt.Errorf("rotate master key: %w", err)
	}
	rewrapped := make(map[custos.TenantID][]byte, len(wrapped))
	for t, w := range wrapped {
		ad := adTenantKey(t)
		key, err := open(oldM, nil, ad, w)
		if err != nil {
			return fmt.Errorf("rotate master key: tenant %s: key does not open under the old master key: %w", t, err)
		}
		rewrapped[t] = seal(newM, nil, ad, key)
	}
	if beforeCommit != nil {
		if err := beforeCommit(); err != nil {
			return err
		}
	}
	if err := ks.PutTenantKeys(ctx, rewrapped, map[string][]byte{metaMasterCheck: sealMasterCheck(newM)}); err != nil {
		return fmt.Errorf("rotate master key: %w", err)
	}
	return nil
}
