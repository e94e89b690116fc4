package store

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"certdesk/internal/portal"
)

// 32 goroutines run read-then-write transactions at once: every one
// commits (no SQLITE_BUSY), and none waits for long, because the
// process's writers take turns in Tx instead of polling the file lock.
func TestTxConcurrentWritersAllCommit(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "tx.db"), portal.SystemClock{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const workers, each = 32, 15
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	var mu sync.Mutex
	var slowest time.Duration
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				start := time.Now()
				err := db.Tx(ctx, func(tx *sql.Tx) error {
					var n int
					if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM accounts`).Scan(&n); err != nil {
						return err
					}
					_, err := tx.ExecContext(ctx, `INSERT INTO accounts(name, created_at) VALUES (?, ?)`, "a", fmtTime(time.Now()))
					return err
				})
				if err != nil {
					errs <- err
				}
				mu.Lock()
				slowest = max(slowest, time.Since(start))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("transaction failed: %v", err)
	}
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM accounts`).Scan(&n); err != nil || n != workers*each {
		t.Fatalf("%d accounts stored, want %d (%v)", n, workers*each, err)
	}
	t.Logf("%d transactions, slowest %v", workers*each, slowest)
	if slowest > 5*time.Second {
		t.Fatalf("a writer waited %v", slowest)
	}
}

// A writer that cannot get its turn gives up with the caller's context.
func TestTxWaitEndsWithContext(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "tx.db"), portal.SystemClock{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	hold, release := make(chan struct{}), make(chan struct{})
	go func() {
		_ = db.Tx(ctx, func(*sql.Tx) error { close(hold); <-release; return nil })
	}()
	<-hold
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	err = db.Tx(cctx, func(*sql.Tx) error { t.Error("ran without the turn"); return nil })
	close(release)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting writer: %v", err)
	}
	if err := db.Tx(ctx, func(*sql.Tx) error { return nil }); err != nil {
		t.Fatalf("after the holder finished: %v", err)
	}
}
