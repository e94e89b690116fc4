package store

// Background WAL checkpoints.
//
// SQLite's automatic checkpoint runs inside the COMMIT that pushes the WAL
// past 1,000 pages: that commit copies the WAL into the database file and
// fsyncs it while holding the writer's turn (11% of the writer's CPU in
// scripts/benchorders, plus the fsync). The write connection turns the
// automatic checkpoint off and this goroutine checkpoints from another
// connection instead, in PASSIVE mode (it never blocks readers or the
// writer), soon after commits. Durability is unchanged: a commit is durable
// once its WAL frames are synced (synchronous=FULL); the checkpoint only
// moves pages into the main file. A crash before a checkpoint loses nothing
// (the WAL is replayed on open).

import (
	"context"
	"time"
)

// checkpointEvery is how often the checkpointer looks for new commits.
const checkpointEvery = 250 * time.Millisecond

// startCheckpointer runs until stop is closed.
func (db *DB) startCheckpointer() {
	db.cpStop = make(chan struct{})
	db.cpDone = make(chan struct{})
	go func() {
		defer close(db.cpDone)
		t := time.NewTicker(checkpointEvery)
		defer t.Stop()
		last := int64(-1)
		for {
			select {
			case <-db.cpStop:
				return
			case <-t.C:
			}
			n := db.writes.Load()
			if n == last {
				continue
			}
			last = n
			// Errors (SQLITE_BUSY while another checkpoint runs) just wait
			// for the next tick.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			db.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`)
			cancel()
		}
	}()
}

func (db *DB) stopCheckpointer() {
	if db.cpStop == nil {
		return
	}
	close(db.cpStop)
	<-db.cpDone
	db.cpStop = nil
}
