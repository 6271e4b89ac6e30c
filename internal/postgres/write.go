package postgres

import (
	"context"

	"github.com/custos-dev/custos"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// querier is what a write runs its statements on: the pool, or a
// transaction.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// write runs fn on the pool, or in a transaction when tx is set or ctx
// carries fences (custos.Fence): then the transaction checks them first,
// and a write under a lease that has a newer holder is refused.
func (s *Store) write(ctx context.Context, tx bool, fn func(q querier) error) error {
	fences := custos.Fences(ctx)
	if !tx && len(fences) == 0 {
		return fn(s.pool)
	}
	return pgx.BeginFunc(ctx, s.pool, func(t pgx.Tx) error {
		if err := checkFences(ctx, t, fences); err != nil {
			return err
		}
		return fn(t)
	})
}
