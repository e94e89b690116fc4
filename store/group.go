package store

// Group commit.
//
// With synchronous=FULL every COMMIT waits for an fsync of the WAL (about
// 0.7-0.9 ms on the CI machine) and rewrites the pages it touched (the last
// leaf of each table and index). When many requests write at once (the
// orders API at 32 clients), GroupTx runs the waiting writers' functions in
// ONE transaction, each inside its own SAVEPOINT, and commits once: a
// function that fails is rolled back to its savepoint and gets its own
// error, the others commit together, and every caller returns only after
// the COMMIT (or its failure), so "nil" still means "durable".
//
// No goroutine runs in the background: the first caller that finds no
// batch in progress leads: it takes the writer's turn (as Tx does), runs
// its own function and every one queued behind it (up to maxGroup),
// commits, hands out the results, and passes the lead to the first caller
// still queued.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// maxGroup bounds the functions in one group transaction, so one commit
// never holds the writer's turn for long.
const maxGroup = 32

type groupReq struct {
	ctx   context.Context
	fn    func(context.Context, *sql.Tx) error
	err   error
	panic any
	done  chan struct{}
	lead  chan struct{} // closed when this caller is to lead the next batch
}

// GroupTx runs fn inside a write transaction that may be shared with other
// concurrent GroupTx callers, and returns after that transaction committed
// (nil) or failed. fn sees the uncommitted writes of the functions before
// it in the group (a second submission with the same idempotency key finds
// the first one), and must do all its work through the tx it is given and
// the context it is given: that context is ctx WITHOUT its cancellation,
// because an interrupted statement can make SQLite roll back the whole
// transaction, i.e. the other callers' work too. A panic in fn is rolled
// back to fn's savepoint and re-raised in the caller's goroutine.
//
// Use it for short, frequent, independent writes (order submission); Tx is
// still the default.
func (db *DB) GroupTx(ctx context.Context, fn func(context.Context, *sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	req := &groupReq{ctx: context.WithoutCancel(ctx), fn: fn, done: make(chan struct{}), lead: make(chan struct{})}
	db.groupMu.Lock()
	db.groupQueue = append(db.groupQueue, req)
	if !db.groupLeading {
		db.groupLeading = true
		close(req.lead)
	}
	db.groupMu.Unlock()
	select {
	case <-req.done:
	case <-req.lead:
		db.leadGroup()
		<-req.done
	}
	if req.panic != nil {
		panic(req.panic)
	}
	return req.err
}

// leadGroup runs one batch: the leader's own request (first in the queue)
// and those queued behind it, then hands the lead to the first caller
// still waiting, so nobody leads batch after batch for others.
func (db *DB) leadGroup() {
	db.groupMu.Lock()
	n := min(len(db.groupQueue), maxGroup)
	batch := db.groupQueue[:n:n]
	db.groupQueue = append([]*groupReq(nil), db.groupQueue[n:]...)
	db.groupMu.Unlock()
	start := time.Now()
	db.runGroup(batch)
	db.groupBusy.Add(int64(time.Since(start)))
	db.groupCommits.Add(1)
	db.groupCallers.Add(int64(len(batch)))
	for _, r := range batch {
		close(r.done)
	}
	db.groupMu.Lock()
	if len(db.groupQueue) > 0 {
		close(db.groupQueue[0].lead)
	} else {
		db.groupLeading = false
	}
	db.groupMu.Unlock()
}

// runGroup runs one batch in one transaction and sets each request's err.
func (db *DB) runGroup(batch []*groupReq) {
	fail := func(err error) {
		for _, r := range batch {
			if r.err == nil && r.panic == nil {
				r.err = err
			}
		}
	}
	ctx := context.Background()
	release, err := db.writeTurn(ctx)
	if err != nil {
		fail(err)
		return
	}
	defer release()
	tx, err := db.beginWrite(ctx)
	if err != nil {
		fail(err)
		return
	}
	for _, r := range batch {
		// A failing or panicking function is rolled back to its savepoint
		// alone. If even that fails the transaction is gone: everyone gets
		// the error.
		_, err := db.InSavepoint(ctx, tx, func() error {
			r.err, r.panic = callGroupFn(r, tx)
			if r.panic != nil {
				return errGroupFnPanicked
			}
			return r.err
		})
		if err != nil {
			tx.Rollback()
			fail(fmt.Errorf("store: group transaction lost: %w", err))
			return
		}
	}
	if err := tx.Commit(); err != nil {
		fail(err)
	}
	db.writes.Add(1)
}

// errGroupFnPanicked rolls a panicking function back to its savepoint; the
// panic itself is re-raised in its caller's goroutine.
var errGroupFnPanicked = errors.New("store: group function panicked")

// InSavepoint runs fn inside a savepoint of tx. When fn fails its changes
// are undone, tx stays usable, and fnErr is fn's error. err is a failure of
// the savepoint itself: tx must be rolled back.
func (db *DB) InSavepoint(ctx context.Context, tx *sql.Tx, fn func() error) (fnErr, err error) {
	if _, err := tx.ExecContext(ctx, `SAVEPOINT certdesk_item`); err != nil {
		return nil, err
	}
	if fnErr = fn(); fnErr != nil {
		if _, err := tx.ExecContext(ctx, `ROLLBACK TO certdesk_item`); err != nil {
			return fnErr, err
		}
	}
	if _, err := tx.ExecContext(ctx, `RELEASE certdesk_item`); err != nil {
		return fnErr, err
	}
	return fnErr, nil
}

func callGroupFn(r *groupReq, tx *sql.Tx) (err error, p any) {
	defer func() {
		if v := recover(); v != nil {
			p = v
		}
	}()
	return r.fn(r.ctx, tx), nil
}

// GroupStats reports how many GroupTx transactions ran, how many callers
// they served and how long they held the writer's turn since the DB was
// opened (benchmarks print it).
func (db *DB) GroupStats() (transactions, callers int64, busy time.Duration) {
	return db.groupCommits.Load(), db.groupCallers.Load(), time.Duration(db.groupBusy.Load())
}
