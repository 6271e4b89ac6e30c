package postgres

import (
	"context"

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

// write runs fn on the pool, or in a transaction when tx is set.
func (s *Store) write(ctx context.Context, tx bool, fn func(q querier) error) error {
	if !tx {
		return fn(s.pool)
	}
	return pgx.BeginFunc(ctx, s.pool, func(t pgx.Tx) error { return fn(t) })
}
