package postgres

import "context"

// MakeEpoch makes the next epoch the way Rotate's first step does and
// stops there, as a rotation interrupted by a crash would.
func MakeEpoch(ctx context.Context, ks *KeyStore) error {
	e, _ := ks.currentEpoch()
	ks.ep.mu.RLock()
	kek := ks.ep.kek
	ks.ep.mu.RUnlock()
	_, err := ks.pool.Exec(ctx, "INSERT INTO key_epochs (epoch, wrapped) VALUES ($1, $2)", e+1, sealWith(kek, adEpoch(e+1), newEpochKey()))
	return err
}
