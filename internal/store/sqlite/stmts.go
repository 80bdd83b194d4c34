package sqlite

import (
	"context"
	"database/sql"
	"strings"
	"sync"
)

// stmtCacheMax bounds the statements one cache keeps. Every query text of this package is one of a
// fixed set (the batched statements come in a few fixed sizes), far fewer than this; a query past
// the bound runs unprepared.
const stmtCacheMax = 512

// stmtCache keeps one database's prepared statements by query text, so each is parsed and planned
// once per connection instead of on every call (SQLite's prepare costs more than most of our
// statements take to run). Safe for concurrent use.
//
// The writer's database has exactly one connection and a group transaction holds it while queries
// run, so preparing there would wait for itself: a write cache (deferred) only notes the statements
// it lacks and prepares them in prepareDeferred, which the writer calls between groups. Until then
// such a query runs unprepared.
type stmtCache struct {
	db       *sql.DB
	deferred bool

	mu     sync.Mutex
	stmts  map[string]*sql.Stmt // nil value: failed to prepare, run unprepared
	wanted []string
}

func newStmtCache(db *sql.DB, deferred bool) *stmtCache {
	return &stmtCache{db: db, deferred: deferred, stmts: map[string]*sql.Stmt{}}
}

// get returns the prepared statement of query, or nil when it must run unprepared. A pragma always
// runs unprepared: SQLite runs some (secure_delete) when it compiles them, so a kept statement would
// not run again, and one prepared between groups would run then.
func (c *stmtCache) get(ctx context.Context, query string) *sql.Stmt {
	if len(query) >= len("PRAGMA") && strings.EqualFold(query[:len("PRAGMA")], "PRAGMA") {
		return nil
	}
	c.mu.Lock()
	s, ok := c.stmts[query]
	if ok || len(c.stmts)+len(c.wanted) >= stmtCacheMax {
		c.mu.Unlock()
		return s
	}
	if c.deferred {
		c.wanted = append(c.wanted, query)
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	s, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		if ctx.Err() != nil {
			return nil // try again next time
		}
		s = nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.stmts[query]; ok { // prepared concurrently
		if s != nil {
			s.Close()
		}
		return old
	}
	c.stmts[query] = s
	return s
}

// prepareDeferred prepares the statements that get lacked, while the connection is free.
func (c *stmtCache) prepareDeferred() {
	c.mu.Lock()
	wanted := c.wanted
	c.wanted = nil
	c.mu.Unlock()
	for _, query := range wanted {
		s, err := c.db.PrepareContext(context.Background(), query)
		if err != nil {
			s = nil // never prepared: it keeps running unprepared, and reports its own error
		}
		c.mu.Lock()
		if _, ok := c.stmts[query]; !ok {
			c.stmts[query] = s
		} else if s != nil {
			s.Close() // wanted twice in one group
		}
		c.mu.Unlock()
	}
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, s := range c.stmts {
		if s != nil {
			s.Close()
		}
		delete(c.stmts, q)
	}
}
