package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/custos-dev/custos"
	"github.com/jackc/pgx/v5"
)

var _ custos.LeaseStore = (*Store)(nil)

// sqlAcquireLease inserts the lease, or takes it over when it expired or
// renews it when the holder is the same; the row lock of the upsert
// serialises two nodes racing for it. A new holder gets the next token.
// It returns a row only when holder holds the lease afterwards.
const sqlAcquireLease = `
INSERT INTO leases (tenant_id, name, holder, expires_at, token)
VALUES ($1, $2, $3, clock_timestamp() + $4 * interval '1 microsecond', 1)
ON CONFLICT (tenant_id, name) DO UPDATE
	SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at,
		token = CASE WHEN leases.holder = EXCLUDED.holder THEN leases.token ELSE leases.token + 1 END
	WHERE leases.holder = EXCLUDED.holder OR leases.expires_at < clock_timestamp()
RETURNING token`

// AcquireLease takes or renews the lease (see custos.LeaseStore).
func (s *Store) AcquireLease(ctx context.Context, t custos.TenantID, name, holder string, ttl time.Duration) (uint64, error) {
	if holder == "" {
		return 0, custos.Errorf(custos.Invalid, "lease %s: no holder", name)
	}
	rows, err := s.pool.Query(ctx, sqlAcquireLease, t[:], name, holder, ttl.Microseconds())
	if err != nil {
		return 0, dbError("acquire lease "+name, err)
	}
	var token int64
	if rows.Next() {
		err = rows.Scan(&token)
	}
	rows.Close()
	if err == nil {
		err = rows.Err()
	}
	if err != nil {
		return 0, dbError("acquire lease "+name, err)
	}
	return uint64(token), nil
}

// ReleaseLease frees the lease if holder holds it. The row stays, with no
// holder, so that the lease's next holder gets a greater token.
func (s *Store) ReleaseLease(ctx context.Context, t custos.TenantID, name, holder string) error {
	_, err := s.pool.Exec(ctx, `UPDATE leases SET holder = '', expires_at = '-infinity'
		WHERE tenant_id = $1 AND name = $2 AND holder = $3`, t[:], name, holder)
	return dbError("release lease "+name, err)
}

// sqlFence reads a lease's token and keeps it from changing until the
// end of the transaction: a take-over waits for a write checking its
// fence to commit, so every write is either before the take-over (and
// accepted) or after it (and refused).
const sqlFence = "SELECT token FROM leases WHERE tenant_id = $1 AND name = $2 FOR SHARE"

// checkFences refuses, with custos.ErrFenced as the cause, a write whose
// context carries a fence that is no longer current.
func checkFences(ctx context.Context, q querier, fences []custos.Fence) error {
	for _, f := range fences {
		var token int64
		err := q.QueryRow(ctx, sqlFence, f.Tenant[:], f.Lease).Scan(&token)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if uint64(token) != f.Token {
			return custos.FencedError(f, uint64(token))
		}
	}
	return nil
}
