package sqlite

import (
	"context"
	"strings"
)

// batchChunks are the row counts of one batched statement, largest first. A batch of n rows runs as
// the largest chunks that fit (100 rows: 64 + 32 + 4), so each statement's text is one of a few and
// stays prepared, and a batch takes at most a handful of statements (7 for any n ≤ 127). 128 rows of
// 15 columns stay far below SQLite's limit of 32,766 parameters.
var batchChunks = []int{128, 64, 32, 16, 8, 4, 2, 1}

// batchStmt is a statement over many rows at once: text holds one placeholder row per row,
// "(?,?,…),(?,?,…)…", where it says {{rows}}.
type batchStmt struct {
	cols  int
	texts map[int]string // by chunk size
}

func newBatchStmt(cols int, text string) *batchStmt {
	row := "(" + strings.TrimSuffix(strings.Repeat("?,", cols), ",") + ")"
	b := &batchStmt{cols: cols, texts: map[int]string{}}
	for _, n := range batchChunks {
		rows := strings.TrimSuffix(strings.Repeat(row+",", n), ",")
		b.texts[n] = strings.Replace(text, "{{rows}}", rows, 1)
	}
	return b
}

// exec runs the statement over rows 0…n-1 in chunks. Each chunk's arguments are head followed by
// rowArgs of each of its rows, which appends the row's cols arguments.
func (b *batchStmt) exec(ctx context.Context, q *queries, n int, head []any, rowArgs func(args []any, i int) []any) error {
	args := make([]any, 0, len(head)+min(n, batchChunks[0])*b.cols)
	for i := 0; i < n; {
		size := chunkFor(n - i)
		args = append(args[:0], head...)
		for j := i; j < i+size; j++ {
			args = rowArgs(args, j)
		}
		if _, err := q.exec(ctx, b.texts[size], args...); err != nil {
			return err
		}
		i += size
	}
	return nil
}

// chunkFor returns the largest chunk size of at most n rows.
func chunkFor(n int) int {
	for _, size := range batchChunks {
		if size <= n {
			return size
		}
	}
	return 1
}
