package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/store"
)

// The checks of the in-place upgrade tests, the same for every driver. Each driver's test writes,
// in its own SQL, the rows an older build left (account acct_1, webhook wh_1, deliveries dlv_1 and
// dlv_2), opens the store on them, which migrates, and passes it here.

// CheckUpgradeKeepsQueuedDeliveries: upgraded from 00001, queued delivery dlv_1 keeps its body,
// {"event":"proposal.created"}.
func CheckUpgradeKeepsQueuedDeliveries(t *testing.T, st store.Store) {
	t.Helper()
	d, err := st.DeliveryGet(context.Background(), "acct_1", "dlv_1")
	require.NoError(t, err)
	require.Equal(t, `{"event":"proposal.created"}`, string(d.Body))
}

// CheckUpgradeMarksTestsAndGivesKeysIDs: upgraded from 00002, the key whose hash is 0x0102 gets an
// id matching keyID and still authenticates, the session whose hash is 0x0a ends (it cannot name
// its key), and dlv_1, a test delivery left pending by a crash, is marked as a test, so that a
// claim takes dlv_2 alone.
func CheckUpgradeMarksTestsAndGivesKeysIDs(t *testing.T, st store.Store, keyID string) {
	t.Helper()
	ctx := context.Background()
	k, err := st.APIKeyGetByHash(ctx, []byte{1, 2})
	require.NoError(t, err)
	require.Regexp(t, keyID, k.ID)
	_, err = st.SessionGet(ctx, []byte{0x0a})
	require.Error(t, err, "sessions from before end")
	d, err := st.DeliveryGet(ctx, "acct_1", "dlv_1")
	require.NoError(t, err)
	require.True(t, d.Test)
	claimed := claimInTx(t, st, time.UnixMilli(1000), time.UnixMilli(2000), 10) // the old rows are due by 10 ms
	require.Len(t, claimed, 1)
	require.Equal(t, "dlv_2", claimed[0].ID, "the test delivery is not claimed")
}

// CheckUpgradeGivesWebhooksTheDefaultFormat: upgraded from 00005, wh_1 reads as json, with no custom
// headers and no rate limit, and its queued delivery is claimed as before.
func CheckUpgradeGivesWebhooksTheDefaultFormat(t *testing.T, st store.Store) {
	t.Helper()
	w, err := st.WebhookGet(context.Background(), "acct_1", "wh_1")
	require.NoError(t, err)
	require.Equal(t, "json", w.Format)
	require.Empty(t, w.Headers)
	require.Zero(t, w.RateLimit)
	claimed := claimInTx(t, st, time.UnixMilli(1000), time.UnixMilli(2000), 10) // the old rows are due by 10 ms
	require.Len(t, claimed, 1)
	require.Empty(t, claimed[0].Headers)
}

// CheckUpgradeGivesEventsTheirData: upgraded from 00002, event evt_1 gets the data of its
// delivery's body, {"b":1,"a":[2]}, and evt_2, which has no delivery, shows none.
func CheckUpgradeGivesEventsTheirData(t *testing.T, st store.Store) {
	t.Helper()
	ctx := context.Background()
	e, err := st.EventGet(ctx, "acct_1", "evt_1")
	require.NoError(t, err)
	require.Equal(t, `{"b":1,"a":[2]}`, string(e.Data))
	e, err = st.EventGet(ctx, "acct_1", "evt_2")
	require.NoError(t, err)
	require.Nil(t, e.Data)
}
