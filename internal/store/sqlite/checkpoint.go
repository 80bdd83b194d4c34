package sqlite

import (
	"context"
	"time"
)

// Checkpoints run beside the writer, not in it. By default SQLite copies the write-ahead log into the
// database file in the commit that takes the log past 1,000 pages, and that commit waits for the copy
// and two flushes: under steady writes an API create's commit took 80–110 ms every few seconds
// instead of 2 ms. The checkpointer copies on a connection of its own, passively (it never waits for
// the writer or a reader, nor makes them wait), at most once per checkpointGap while the writer
// commits. The writer still checkpoints past writerCheckpointPages, should the checkpointer fall far
// behind or fail.
const (
	checkpointGap         = time.Second
	writerCheckpointPages = 10_000 // 40 MiB of log at SQLite's 4 KiB pages
)

// checkpoint is what one checkpoint did: how many frames the log held, how many of them are now in
// the database file, and the error if it failed.
type checkpoint struct {
	frames, copied int
	err            error
}

// checkpointLoop checkpoints after commits until Close.
func (db *DB) checkpointLoop() {
	defer close(db.checkpointerDone)
	for {
		select {
		case <-db.committed:
		case <-db.stop:
			return
		}
		var c checkpoint
		var busy int
		c.err = db.checkpointer.QueryRowContext(context.Background(), `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &c.frames, &c.copied)
		if c.err != nil {
			db.log.Warn("sqlite checkpoint failed; commits will checkpoint instead once the log is large", "err", c.err)
		}
		db.checkpointed.Signal(c)
		gap := time.NewTimer(checkpointGap)
		select {
		case <-gap.C:
		case <-db.stop:
			gap.Stop()
			return
		}
	}
}

// kickCheckpointer tells the checkpointer that the log has grown; it never blocks the writer.
func (db *DB) kickCheckpointer() {
	select {
	case db.committed <- struct{}{}:
	default:
	}
}
