package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// 64 concurrent GroupTx callers: every successful one is committed and
// visible once GroupTx returns, every failing one (each fifth) left no
// trace and got its own error, a panicking one re-panics in its own
// goroutine without harming the others, and the writes were grouped
// (fewer commits than callers).
func TestGroupTxIsolatesFailuresAndCommitsTheRest(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t)
	db.SetMaxOpenConns(4)
	if _, err := db.ExecContext(ctx, `CREATE TABLE g (k INTEGER PRIMARY KEY, v TEXT)`); err != nil {
		t.Fatal(err)
	}
	const n = 64
	errBoom := errors.New("boom")
	var wg sync.WaitGroup
	results := make([]error, n)
	panics := make([]any, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { panics[i] = recover() }()
			results[i] = db.GroupTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, `INSERT INTO g (k, v) VALUES (?, ?)`, i, fmt.Sprint("v", i)); err != nil {
					return err
				}
				var id int64
				if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM g`).Scan(&id); err != nil {
					return err
				}
				switch {
				case i == 7:
					panic("fn panicked")
				case i%5 == 0:
					return errBoom // after a write: it must be rolled back
				}
				return nil
			})
			// Durable and visible to everyone once GroupTx returned nil.
			if results[i] == nil {
				var v string
				if err := db.QueryRowContext(ctx, `SELECT v FROM g WHERE k = ?`, i).Scan(&v); err != nil || v != fmt.Sprint("v", i) {
					t.Errorf("caller %d: row after GroupTx = %q, %v", i, v, err)
				}
			}
		}()
	}
	wg.Wait()
	for i := 0; i < n; i++ {
		var count int
		db.QueryRowContext(ctx, `SELECT COUNT(*) FROM g WHERE k = ?`, i).Scan(&count)
		switch {
		case i == 7:
			if panics[i] != "fn panicked" || count != 0 {
				t.Errorf("caller 7: panic %v, rows %d; want its own panic and no row", panics[i], count)
			}
		case i%5 == 0:
			if !errors.Is(results[i], errBoom) || count != 0 {
				t.Errorf("caller %d: err %v, rows %d; want boom and no row", i, results[i], count)
			}
		default:
			if results[i] != nil || panics[i] != nil || count != 1 {
				t.Errorf("caller %d: err %v panic %v rows %d; want committed", i, results[i], panics[i], count)
			}
		}
	}
	txs, callers, _ := db.GroupStats()
	t.Logf("%d callers in %d transactions", callers, txs)
	if callers != n || txs >= n {
		t.Errorf("%d callers in %d transactions: want all %d callers, fewer transactions", callers, txs, n)
	}
}

// A cancelled context before the call is refused at once; a context
// cancelled while the function runs does not interrupt its statements
// (they would roll back the other callers' work).
func TestGroupTxContext(t *testing.T) {
	db := openTestDB(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := db.GroupTx(ctx, func(context.Context, *sql.Tx) error { t.Error("fn ran"); return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	err := db.GroupTx(ctx, func(fctx context.Context, tx *sql.Tx) error {
		cancel()
		if fctx.Err() != nil {
			return fmt.Errorf("fn's context was cancelled: %w", fctx.Err())
		}
		_, err := tx.ExecContext(fctx, `CREATE TABLE h (k INTEGER)`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
