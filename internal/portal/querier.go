package portal

import (
	"context"
	"database/sql"
)

// Querier is satisfied by *sql.DB and *sql.Tx: services pass a
// transaction through to store methods so related writes commit together
// (the order, its payment hold, its validation tasks and its emails).
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}
