package store

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"certdesk/internal/portal"
)

// Write transactions run on the write connection with the automatic
// checkpoint off, and the background checkpointer moves the committed
// pages into the database file soon after (the file grows by what was
// written) without anyone calling a checkpoint.
func TestWritesAreCheckpointedInTheBackground(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cp.db")
	db, err := Open(ctx, path, portal.SystemClock{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE blob (v TEXT)`); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	before := st.Size()
	big := strings.Repeat("x", 64<<10)
	for i := 0; i < 48; i++ { // 3 MiB in 48 commits
		err := db.Tx(ctx, func(tx *sql.Tx) error {
			if i == 0 {
				var n int
				if err := tx.QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&n); err != nil || n != 0 {
					t.Errorf("wal_autocheckpoint on the write connection = %d, %v; want 0", n, err)
				}
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO blob (v) VALUES (?)`, big)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, _ := os.Stat(path)
		if st.Size() >= before+3<<20 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("database file %d bytes 5 s after 3 MiB of commits (was %d): no checkpoint ran", st.Size(), before)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
