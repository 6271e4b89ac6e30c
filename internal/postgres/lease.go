package postgres

import (
	"context"
	"time"

	"github.com/custos-dev/custos"
)

var _ custos.LeaseStore = (*Store)(nil)

// sqlAcquireLease inserts the lease, or takes it over when it expired or
// renews it when the holder is the same; the row lock of the upsert
// serialises two nodes racing for it. It returns a row only when holder
// holds the lease afterwards.
const sqlAcquireLease = `
INSERT INTO leases (tenant_id, name, holder, expires_at)
VALUES ($1, $2, $3, clock_timestamp() + $4 * interval '1 microsecond')
ON CONFLICT (tenant_id, name) DO UPDATE
	SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
	WHERE leases.holder = EXCLUDED.holder OR leases.expires_at < clock_timestamp()
RETURNING holder`

// AcquireLease takes or renews the lease (see custos.LeaseStore).
func (s *Store) AcquireLease(ctx context.Context, t custos.TenantID, name, holder string, ttl time.Duration) (bool, error) {
	rows, err := s.pool.Query(ctx, sqlAcquireLease, t[:], name, holder, ttl.Microseconds())
	if err != nil {
		return false, dbError("acquire lease "+name, err)
	}
	held := rows.Next()
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, dbError("acquire lease "+name, err)
	}
	return held, nil
}

// ReleaseLease frees the lease if holder holds it.
func (s *Store) ReleaseLease(ctx context.Context, t custos.TenantID, name, holder string) error {
	_, err := s.pool.Exec(ctx, "DELETE FROM leases WHERE tenant_id = $1 AND name = $2 AND holder = $3", t[:], name, holder)
	return dbError("release lease "+name, err)
}
