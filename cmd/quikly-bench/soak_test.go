package main

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/store/postgres/pgtest"
	"github.com/quikly/webhooks/internal/webhook"
)

// requireSoakClean checks a soak's result: it ran, every accepted event reached every subscribed
// webhook, every request verified, nothing crashed, and every kind of fault was injected.
func requireSoakClean(t *testing.T, rep *Report, kinds ...string) {
	t.Helper()
	require.Len(t, rep.Results, 1)
	r := rep.Results[0]
	require.Equal(t, "soak", r.Scenario)
	requireAllDelivered(t, r)
	require.Empty(t, r.Details["unexpected_exits"], "no quikly process exited by itself")
	require.EqualValues(t, 0, r.Details["failed_deliveries_in_api"], "the retry schedule outlasted every fault")
	faults, ok := r.Details["faults"].(map[string]int)
	require.True(t, ok, "faults are counted by kind")
	for _, k := range kinds {
		require.Positive(t, faults[k], "a %s was injected", k)
	}
	require.Positive(t, r.Details["accepted"], "events were accepted")
	require.Positive(t, r.Details["webhook_signature_with_both_secrets"], "rotations were verified with both secrets")
	require.Empty(t, rep.Failed())
}

// TestSoakSmoke runs the soak for a minute on SQLite, as CI does: every kind of fault at least once,
// then nothing lost and every signature verified.
func TestSoakSmoke(t *testing.T) {
	t.Parallel()
	rep, table := smoke(t, "--scenario", "soak", "--duration", "60s")
	require.Equal(t, "sqlite", rep.Database)
	requireSoakClean(t, rep, faultKillServe, faultPause, faultRotate, faultReceiver, faultHang, faultSlow)
	require.Contains(t, table, "lost")
}

// TestSoakSmokePostgres runs the soak for a minute on the PostgreSQL of QUIKLY_TEST_DATABASE_URL, with
// serve and two workers: kill -9 of either and pg_terminate_backend of their connections included.
func TestSoakSmokePostgres(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.BaseURL(t)
	rep, _ := smoke(t, "--scenario", "soak", "--duration", "60s", "--database", dbURL)
	require.Equal(t, "postgres", rep.Database)
	requireSoakClean(t, rep, faultKillServe, faultKillWorker, faultPGTerminate, faultPause, faultRotate,
		faultReceiver, faultHang, faultSlow)
}

func TestSoakOptions(t *testing.T) {
	t.Parallel()
	o, err := parseArgs([]string{"--scenario", "soak", "--seed", "42"})
	require.NoError(t, err)
	require.Equal(t, []string{"soak"}, o.Scenarios)
	require.Equal(t, 10*time.Minute, o.Sizes.SoakDuration)
	require.Equal(t, uint64(42), o.Seed)
	o, err = parseArgs([]string{"--scenario", "soak", "--smoke"})
	require.NoError(t, err)
	require.Equal(t, time.Minute, o.Sizes.SoakDuration)
	o, err = parseArgs([]string{"--all"})
	require.NoError(t, err)
	require.NotContains(t, o.Scenarios, "soak", "--all is the benchmark, not minutes of chaos")
}

// TestSoakReceiver checks the soak receiver's modes and its verification across a rotation: the new
// secret waits for the rotation's answer, the old one is refused for X-Quikly-Signature once the
// grace has passed, and webhook-signature must carry both secrets during the overlap.
func TestSoakReceiver(t *testing.T) {
	t.Parallel()
	r, err := newSoakReceiver(0)
	require.NoError(t, err)
	t.Cleanup(r.close)
	oldSecret, newSecret := webhook.NewSecret(), webhook.NewSecret()
	require.NoError(t, r.register("wh_1", "acct", oldSecret, []string{webhook.LeadSessionCreated}))
	key := func(s string) []byte {
		k, err := webhook.SecretKey(s)
		require.NoError(t, err)
		return k
	}
	body := []byte(`{"event":"lead_session.created","data":{"lead_session_id":"ls_1"}}`)
	// send posts body signed as quikly does: X-Quikly-Signature with quikly, webhook-signature with
	// each of std.
	send := func(quikly string, std ...string) int {
		now := time.Now().Unix()
		var keys [][]byte
		for _, s := range std {
			keys = append(keys, key(s))
		}
		req, err := http.NewRequest(http.MethodPost, r.URL+"/x", bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("X-Quikly-Webhook-Id", "wh_1")
		req.Header.Set("X-Quikly-Signature", webhook.SignQuikly(quikly, body))
		req.Header["webhook-id"] = []string{"evt_1"}
		req.Header["webhook-timestamp"] = []string{strconv.FormatInt(now, 10)}
		req.Header["webhook-signature"] = []string{webhook.SignStandard(keys, "evt_1", now, body)}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		return res.StatusCode
	}

	require.Equal(t, http.StatusOK, send(oldSecret, oldSecret))
	r.setMode("wh_1", modeFail, 0)
	require.Equal(t, http.StatusInternalServerError, send(oldSecret, oldSecret))
	r.setMode("wh_1", modeHealthy, 0)

	// A request signed with the new secret before the receiver knows it waits for the rotation.
	r.beginRotation("wh_1")
	answer := make(chan int, 1)
	go func() { answer <- send(newSecret, newSecret, oldSecret) }()
	require.Eventually(t, func() bool { return r.waitingForRotation() == 1 }, 10*time.Second, time.Millisecond,
		"the request waits for the rotation's answer")
	require.Empty(t, answer, "no answer before the rotation ended")
	require.NoError(t, r.endRotation("wh_1", newSecret, time.Now().Add(-time.Minute)))
	require.Equal(t, http.StatusOK, <-answer)

	// The rotation is older than the grace (0 here): the previous secret no longer signs
	// X-Quikly-Signature, and webhook-signature needs both.
	require.Equal(t, http.StatusBadRequest, send(oldSecret, newSecret, oldSecret))
	require.Equal(t, http.StatusBadRequest, send(newSecret, newSecret))
	require.Equal(t, http.StatusBadRequest, send(newSecret, oldSecret))
	require.Equal(t, http.StatusOK, send(newSecret, newSecret, oldSecret))

	snap := r.snapshot()
	require.Equal(t, 3, snap.ok)
	require.Equal(t, 1, snap.failed)
	require.Equal(t, 3, snap.unverified)
	require.Equal(t, 2, snap.overlap)
	rc := snap.receipts["wh_1"]["evt_1"]
	require.NotNil(t, rc)
	require.Len(t, rc.answers, 3, "every 200 is recorded: duplicates are counted")
	require.Equal(t, "ls_1", rc.object)
	require.True(t, strings.Contains(snap.badReasons[0], "X-Quikly-Signature"), snap.badReasons[0])
}
