// Package store keeps certdesk's data in SQLite through modernc.org/sqlite
// (no cgo). Migrations are embedded, forward-only and recorded in the
// schema_migrations table. Methods return domain types from internal/portal.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"certdesk/internal/portal"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// DB is the database handle shared by the whole process.
type DB struct {
	*sql.DB
	Clock portal.Clock
	// ScrubSentMail drops a message's bodies and attachments once it is
	// delivered (MarkSent); production sets it, the dev mailbox needs them.
	ScrubSentMail bool
	// writer lets this process's transactions take turns (see Tx).
	writer chan struct{}
	// wconn is the connection every write transaction uses (beginWrite);
	// only the holder of the writer's turn touches it.
	wconn *sql.Conn
	// writes counts committed write transactions (the checkpointer's cue).
	writes atomic.Int64
	// background checkpointer (checkpoint.go)
	cpStop, cpDone chan struct{}

	// group commit (GroupTx, group.go)
	groupMu      sync.Mutex
	groupQueue   []*groupReq
	groupLeading bool
	groupCommits atomic.Int64
	groupCallers atomic.Int64
	groupBusy    atomic.Int64 // nanoseconds
}

// maxIdleConns is how many idle connections the pool keeps.
const maxIdleConns = 32

// writerWait bounds the wait for a write turn, like busy_timeout.
const writerWait = 10 * time.Second

// DSN builds the connection string. The pragmas go into the DSN so that
// every pooled connection has them (shared/FACTS.md): WAL, foreign keys, a
// busy timeout, synchronous FULL (issuance must survive power loss) and
// immediate transactions (deferred ones deadlock on the lock upgrade).
func DSN(path string) string {
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "foreign_keys(1)", "synchronous(FULL)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	return "file:" + path + "?" + q.Encode()
}

// Open opens (creating if needed) the database file at path and applies
// pending migrations.
func Open(ctx context.Context, path string, clock portal.Clock) (*DB, error) {
	sqldb, err := openCached(DSN(path))
	if err != nil {
		return nil, err
	}
	// database/sql keeps 2 idle connections by default: under concurrent
	// requests every other query opened a new SQLite connection (file
	// open, pragmas, an empty page and statement cache) and closed it
	// again: 23% of all CPU in scripts/benchorders. Keep more, for a while.
	sqldb.SetMaxIdleConns(maxIdleConns)
	sqldb.SetConnMaxIdleTime(5 * time.Minute)
	db := &DB{DB: sqldb, Clock: clock, writer: make(chan struct{}, 1)}
	if err := db.Migrate(ctx); err != nil {
		sqldb.Close()
		return nil, err
	}
	if err := db.backfillSPKI(ctx); err != nil { // migration 0050 (compromised.go)
		sqldb.Close()
		return nil, err
	}
	db.startCheckpointer()
	return db, nil
}

// Migrate applies every embedded migration not yet recorded, in file-name
// order, each in its own transaction. It returns the names applied.
func (db *DB) Migrate(ctx context.Context) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		var one int
		err := db.QueryRowContext(ctx, `SELECT 1 FROM schema_migrations WHERE name = ?`, base).Scan(&one)
		if err == nil {
			continue
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		body, err := migrationFS.ReadFile(name)
		if err != nil {
			return err
		}
		err = db.Tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return fmt.Errorf("migration %s: %w", base, err)
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations(name, applied_at) VALUES (?, ?)`,
				base, db.now().Format(time.RFC3339Nano))
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// AppliedMigrations lists the recorded migrations in order.
func (db *DB) AppliedMigrations(ctx context.Context) ([]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT name FROM schema_migrations ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// Tx runs fn in one (immediate) transaction, committing when fn returns nil.
//
// The process's transactions take turns before BEGIN IMMEDIATE: SQLite's
// busy handler retries with sleeps of up to 100 ms and is not fair, so 32
// concurrent writers queued on the file lock starved one another (p99 of
// 10 s and SQLITE_BUSY past busy_timeout in scripts/benchorders). Waiting
// here hands the turn to the next writer as soon as one commits. Writers
// in other processes (CLI commands) still meet busy_timeout.
func (db *DB) Tx(ctx context.Context, fn func(*sql.Tx) error) error {
	release, err := db.writeTurn(ctx)
	if err != nil {
		return err
	}
	defer release()
	tx, err := db.beginWrite(ctx)
	if err != nil {
		return err
	}
	if err = fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	err = tx.Commit()
	db.writes.Add(1)
	return err
}

// writeTurn waits for this process's write turn (at most writerWait) and
// returns the function that hands it on.
func (db *DB) writeTurn(ctx context.Context) (release func(), err error) {
	if db.writer == nil {
		return func() {}, nil
	}
	wait := time.NewTimer(writerWait)
	defer wait.Stop()
	select {
	case db.writer <- struct{}{}:
		return func() { <-db.writer }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-wait.C:
		return nil, fmt.Errorf("store: database busy (SQLITE_BUSY): no write turn within %v", writerWait)
	}
}

// writeCacheKiB is the page cache of the write connection (SQLite's default
// is 2 MiB per connection).
const writeCacheKiB = 32 << 10

// beginWrite begins a write transaction, on the process's one write
// connection when the caller holds the writer's turn. In WAL mode a
// connection drops its whole page cache whenever ANOTHER connection has
// committed since its last transaction; with writes spread over the pool
// every write transaction re-read its B-tree pages from the file (page
// reads were 16% of the writer's time in scripts/benchorders). Keeping all
// writes on one connection keeps its cache warm.
func (db *DB) beginWrite(ctx context.Context) (*sql.Tx, error) {
	if db.writer == nil {
		return db.BeginTx(ctx, nil)
	}
	for attempt := 0; ; attempt++ {
		if db.wconn == nil {
			c, err := db.DB.Conn(ctx)
			if err != nil {
				return nil, err
			}
			// The checkpointer (checkpoint.go) moves the WAL into the
			// database file, not this connection's commits. GroupTx's
			// savepoints keep their sub-journals in memory: in a temporary
			// file every first change of a page after a savepoint was a
			// write() (30% of the writer's write syscalls).
			if _, err := c.ExecContext(ctx, fmt.Sprintf("PRAGMA cache_size = -%d; PRAGMA wal_autocheckpoint = 0; PRAGMA temp_store = MEMORY",
				writeCacheKiB)); err != nil {
				c.Close()
				return nil, err
			}
			db.wconn = c
		}
		tx, err := db.wconn.BeginTx(ctx, nil)
		if err == nil || attempt > 0 || !(errors.Is(err, sql.ErrConnDone) || errors.Is(err, driver.ErrBadConn)) {
			return tx, err
		}
		db.wconn.Close() // broken: take another connection once
		db.wconn = nil
	}
}

// Close stops the checkpointer, releases the write connection and closes
// the database (SQLite checkpoints what is left when the last connection
// closes).
func (db *DB) Close() error {
	db.stopCheckpointer()
	if db.writer != nil {
		db.writer <- struct{}{}
		if db.wconn != nil {
			db.wconn.Close()
			db.wconn = nil
		}
		<-db.writer
	}
	return db.DB.Close()
}

func (db *DB) now() time.Time {
	if db.Clock == nil {
		return time.Now().UTC()
	}
	return db.Clock.Now()
}

// Now is the store's clock reading.
func (db *DB) Now() time.Time { return db.now() }

// Time format used in every TEXT time column: RFC 3339 in UTC, sortable.
const timeFormat = "2006-01-02T15:04:05.000000000Z"

func fmtTime(t time.Time) string { return t.UTC().Format(timeFormat) }

func fmtNullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return fmtTime(t)
}

func parseTime(s string) time.Time {
	t, _ := time.Parse(timeFormat, s)
	return t
}

func parseNullTime(s sql.NullString) time.Time {
	if !s.Valid {
		return time.Time{}
	}
	return parseTime(s.String)
}

// notFound turns sql.ErrNoRows into a domain not-found error.
func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return portal.Errorf(portal.ENotFound, "%s not found", what)
	}
	return err
}

// isUnique reports whether err is a UNIQUE constraint violation.
func isUnique(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}
