package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// queryPlan returns SQLite's EXPLAIN QUERY PLAN of query, one step a line, indented by depth.
func queryPlan(t *testing.T, db *DB, query string) string {
	t.Helper()
	// Every parameter NULL: the plan does not depend on the values.
	rows, err := db.write.Query("EXPLAIN QUERY PLAN "+query, make([]any, strings.Count(query, "?"))...)
	require.NoError(t, err)
	defer rows.Close()
	depth := map[int]int{}
	var b strings.Builder
	for rows.Next() {
		var id, parent, unused int
		var detail string
		require.NoError(t, rows.Scan(&id, &parent, &unused, &detail))
		depth[id] = depth[parent] + 1
		b.WriteString(strings.Repeat("  ", depth[id]-1) + detail + "\n")
	}
	require.NoError(t, rows.Err())
	return b.String()
}

// TestHotPathPlans pins the plans of the queue's statements: each claim reads only the index (no
// table rows for the rows it skips, no sort), each batched write finds its rows by key, and pruning
// walks indexes. Run with -v to see them.
func TestHotPathPlans(t *testing.T) {
	t.Parallel()
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "quikly.db"), Options{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	for _, tc := range []struct {
		name, query string
		want        []string
	}{
		{"DueWebhooks", dueWebhooksSQL, []string{
			"SCAN deliveries USING COVERING INDEX deliveries_webhook_due",
			"SEARCH deliveries USING COVERING INDEX deliveries_webhook_due (webhook_id>?)",
			"SEARCH deliveries USING COVERING INDEX deliveries_webhook_due (webhook_id=?)"}},
		{"ClaimWebhook", claimWebhookSQL, []string{
			"SEARCH deliveries USING COVERING INDEX deliveries_webhook_due (webhook_id=? AND next_attempt_at<?)"}},
		{"TakeProbe", takeProbeSQL, []string{"SEARCH webhooks USING INDEX sqlite_autoindex_webhooks_1 (id=?)"}},
		{"Complete", completeDeliveries.texts[64], []string{"SEARCH deliveries USING INDEX sqlite_autoindex_deliveries_1 (id=?)"}},
		{"Release", releaseDeliveries.texts[64], []string{"SEARCH deliveries USING INDEX sqlite_autoindex_deliveries_1 (id=?)"}},
		{"InsertAttempts", insertAttempts.texts[64], []string{"SEARCH deliveries USING COVERING INDEX sqlite_autoindex_deliveries_1 (id=?)"}},
		{"InsertDeliveries", insertDeliveries.texts[64], []string{"SEARCH events USING COVERING INDEX sqlite_autoindex_events_1 (id=?)"}},
		{"PruneAttempts", pruneAttemptsSQL, []string{"SEARCH attempts USING COVERING INDEX attempts_created (created_at<?)"}},
		{"PruneDeliveries", pruneDeliveriesSQL, []string{"SEARCH d USING INDEX deliveries_finished (updated_at<?)",
			"SEARCH a USING COVERING INDEX attempts_delivery (delivery_seq=?)"}},
		{"PruneEvents", pruneEventsSQL, []string{"SEARCH e USING COVERING INDEX events_occurred (occurred_at<?)",
			"SEARCH d USING COVERING INDEX deliveries_event (event_seq=?)"}},
	} {
		plan := queryPlan(t, db, tc.query)
		t.Logf("%s:\n%s", tc.name, plan)
		for _, step := range tc.want {
			require.Contains(t, plan, step, tc.name)
		}
		require.NotContains(t, plan, "TEMP B-TREE", tc.name)
		require.NotRegexp(t, `(?m)^ *SCAN (deliveries|attempts|events|d|a|e)$`, plan, tc.name) // a scan of a table
	}
}

func TestJournalSpillIsSet(t *testing.T) {
	t.Parallel()
	require.Equal(t, int32(0), journalSpillRC, "sqlite3_config(SQLITE_CONFIG_STMTJRNL_SPILL)")
}
