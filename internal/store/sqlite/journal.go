package sqlite

import (
	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// journalSpill is how large a statement journal (which undoes one statement that fails half-way)
// or a savepoint journal (which undoes one caller of a group commit) grows in memory before SQLite
// moves it to a temporary file. SQLite's default, 64 KiB, spills on nearly every batch of outcomes
// (a statement that writes many rows of a table with foreign keys keeps a statement journal) and on
// every group of more than one caller, and writing those files cost more than writing the rows.
// Journals larger than this still spill, so memory stays bounded, unlike temp_store=MEMORY.
const journalSpill = 8 << 20

// journalSpillRC is SQLite's answer to setting journalSpill: SQLITE_OK, or SQLITE_MISUSE if a
// connection had opened before this package's init (then journals keep the default: slower, still
// correct).
var journalSpillRC int32

// init sets journalSpill for the process; SQLite takes it only before its first connection opens.
func init() {
	tls := libc.NewTLS()
	defer tls.Close()
	va := libc.Xmalloc(tls, 8)
	if va == 0 {
		journalSpillRC = sqlite3.SQLITE_NOMEM
		return
	}
	defer libc.Xfree(tls, va)
	journalSpillRC = sqlite3.Xsqlite3_config(tls, sqlite3.SQLITE_CONFIG_STMTJRNL_SPILL, libc.VaList(va, int32(journalSpill)))
}
