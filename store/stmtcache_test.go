package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"certdesk/internal/portal"
)

func openTestDB(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "c.db"), portal.SystemClock{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(2) // the write connection and one more: every call on a known connection
	return db
}

// The same SQL run again while its first result set is still being read
// (a query inside a loop over the same query) gets a statement of its own
// and both give the right rows; afterwards the cached statement serves
// again with new arguments.
func TestStmtCacheNestedSameQuery(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t)
	for _, n := range []string{"A", "B", "C"} {
		if _, err := db.CreateAccount(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	const q = `SELECT name FROM accounts WHERE id >= ? ORDER BY id`
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, q, 1)
		if err != nil {
			return err
		}
		defer rows.Close()
		var outer, inner []string
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				return err
			}
			outer = append(outer, name)
			var first string
			if err := tx.QueryRowContext(ctx, q, 3).Scan(&first); err != nil {
				return err
			}
			inner = append(inner, first)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if got := len(outer); got != 3 || outer[0] != "A" || outer[2] != "C" {
			t.Errorf("outer rows = %v, want A B C", outer)
		}
		for _, v := range inner {
			if v != "C" {
				t.Errorf("inner rows = %v, want C each time", inner)
				break
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The cached statement, reused with other arguments, binds afresh.
	for id, want := range map[int]string{1: "A", 2: "B", 3: "C"} {
		var got string
		if err := db.QueryRowContext(ctx, `SELECT name FROM accounts WHERE id = ?`, id).Scan(&got); err != nil || got != want {
			t.Fatalf("id %d: %q %v, want %q", id, got, err, want)
		}
	}
}

// A failed statement (a constraint) leaves the cached statement usable, a
// rolled-back write is gone, and a statement compiled before a schema change
// sees the new column (SQLite re-prepares it).
func TestStmtCacheAfterErrorsAndSchemaChange(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t)
	if _, err := db.ExecContext(ctx, `CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)`); err != nil {
		t.Fatal(err)
	}
	ins := `INSERT INTO kv (k, v) VALUES (?, ?)`
	if _, err := db.ExecContext(ctx, ins, "a", "1"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, ins, "a", "2"); err == nil {
		t.Fatal("duplicate key accepted")
	}
	if _, err := db.ExecContext(ctx, ins, "b", "2"); err != nil {
		t.Fatalf("cached insert after a failure: %v", err)
	}
	_ = db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, ins, "c", "3"); err != nil {
			t.Fatal(err)
		}
		return sql.ErrTxDone // roll back
	})
	sel := `SELECT * FROM kv ORDER BY k`
	cols := func() []string {
		rows, err := db.QueryContext(ctx, sel)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		c, _ := rows.Columns()
		n := 0
		for rows.Next() {
			n++
		}
		if n != 2 {
			t.Fatalf("%d rows, want 2 (a, b; c rolled back)", n)
		}
		return c
	}
	if c := cols(); len(c) != 2 {
		t.Fatalf("columns %v", c)
	}
	if _, err := db.ExecContext(ctx, `ALTER TABLE kv ADD COLUMN note TEXT`); err != nil {
		t.Fatal(err)
	}
	if c := cols(); len(c) != 3 || c[2] != "note" {
		t.Fatalf("after ALTER TABLE the cached SELECT * gives columns %v", c)
	}
}

// A connection compiles a statement once and reuses it: the statement
// cached after the first run is the one still cached, idle, after the third.
func TestStmtCacheReusesStatements(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t)
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const q = `SELECT COUNT(*) FROM accounts WHERE id > ?`
	cached := func() (st *cachedStmt, n int) {
		err := conn.Raw(func(dc any) error {
			c, ok := dc.(*cachingConn)
			if !ok {
				t.Fatalf("driver connection is %T, not the caching one", dc)
			}
			st, n = c.stmts[q], len(c.stmts)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return st, n
	}
	var first *cachedStmt
	var size int
	for i := 0; i < 3; i++ {
		var n int
		if err := conn.QueryRowContext(ctx, q, i).Scan(&n); err != nil {
			t.Fatal(err)
		}
		st, sz := cached()
		if i == 0 {
			first, size = st, sz
		}
		if st == nil || st != first || sz != size || st.busy {
			t.Fatalf("run %d: cached %p (first %p), %d statements (then %d), busy %v", i+1, st, first, sz, size, st != nil && st.busy)
		}
	}
}
