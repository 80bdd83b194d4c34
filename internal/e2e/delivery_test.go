package e2e_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/clock"
	"github.com/quikly/webhooks/internal/delivery"
	"github.com/quikly/webhooks/internal/testenv"
	"github.com/quikly/webhooks/internal/webhook"
)

// quiklySignature is SPEC §5's X-Quikly-Signature, re-implemented here as an independent check.
func quiklySignature(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// verifyStandard checks webhook-signature with the Standard Webhooks library.
func verifyStandard(t *testing.T, secret string, rec testenv.Received) {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	require.NoError(t, err)
	require.NoError(t, wh.VerifyIgnoringTimestamp(rec.Body, rec.Header), "webhook-signature must verify with %s…", secret[:10])
}

func logs(t *testing.T, e *testenv.Env, key, id, query string) []map[string]any {
	t.Helper()
	res := e.Do(key, "GET", "/webhooks/"+id+"/logs"+query, nil)
	require.Equal(t, http.StatusOK, res.Status, "%s", res.Body)
	var out []map[string]any
	for _, l := range res.JSON(t)["data"].([]any) {
		out = append(out, l.(map[string]any))
	}
	return out
}

// waitLogs waits until the webhook has n log entries (the outcome write follows the receipt).
func waitLogs(t *testing.T, e *testenv.Env, key, id string, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		l := logs(t, e, key, id, "?limit=200")
		if len(l) >= n || time.Now().After(deadline) {
			require.Len(t, l, n)
			return l
		}
		time.Sleep(10 * time.Millisecond) // polling an outcome we cannot be signalled about; not a timing assertion
	}
}

func TestDeliverySignedWithEveryHeader(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{})
	rcv := testenv.NewReceiver(t)
	w := createWebhook(t, e, e.Key, rcv.URL, "proposal.created")
	id, secret := w["id"].(string), w["secret"].(string)
	before := time.Now().Unix()
	ev := e.Publish(e.Key, webhook.ProposalCreated, map[string]any{"proposal_id": "p1", "total": 10.5})

	rec := rcv.Next(t)
	require.Equal(t, "application/json", rec.Header.Get("Content-Type"))
	require.Equal(t, "proposal.created", rec.Header.Get("X-Quikly-Event"))
	require.Equal(t, id, rec.Header.Get("X-Quikly-Webhook-Id"))
	require.Equal(t, ev.ID, rec.Header.Get("webhook-id"))
	require.True(t, strings.HasPrefix(ev.ID, "evt_"))
	ts, err := strconv.ParseInt(rec.Header.Get("X-Quikly-Timestamp"), 10, 64)
	require.NoError(t, err)
	require.GreaterOrEqual(t, ts, before)
	require.LessOrEqual(t, ts, time.Now().Unix())
	require.Equal(t, rec.Header.Get("X-Quikly-Timestamp"), rec.Header.Get("webhook-timestamp"))
	require.True(t, strings.HasPrefix(rec.Header.Get("User-Agent"), "Quikly-Webhooks/"))
	require.Equal(t, quiklySignature(secret, rec.Body), rec.Header.Get("X-Quikly-Signature"))
	verifyStandard(t, secret, rec)

	var body map[string]any
	require.NoError(t, json.Unmarshal(rec.Body, &body))
	require.Equal(t, "proposal.created", body["event"])
	require.Equal(t, id, body["webhook_id"])
	require.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`, body["timestamp"])
	require.Equal(t, map[string]any{"proposal_id": "p1", "total": 10.5}, body["data"])
	require.True(t, strings.HasPrefix(string(rec.Body), `{"event":"proposal.created","timestamp":`), "keys in the SPEC's order")

	entry := waitLogs(t, e, e.Key, id, 1)[0]
	require.Equal(t, "succeeded", entry["status"])
	require.Equal(t, float64(200), entry["status_code"])
	require.Nil(t, entry["error"])
	require.Nil(t, entry["next_attempt_at"])
	require.Equal(t, string(rec.Body), entry["payload"])
	require.Equal(t, float64(1), entry["attempt"])
	require.Equal(t, ev.ID, entry["event_id"])
	headers := entry["request_headers"].(map[string]any)
	require.Equal(t, rec.Header.Get("webhook-signature"), headers["webhook-signature"])
	require.NotContains(t, string(e.Do(e.Key, "GET", "/webhooks/"+id+"/logs", nil).Body), secret, "secrets never appear in logs")
}

func TestRetriesFollowTheScheduleThenFail(t *testing.T) {
	t.Parallel()
	schedule := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond}
	e := testenv.Start(t, testenv.Options{RetrySchedule: schedule})
	rcv := testenv.NewReceiver(t)
	rcv.Respond(http.StatusInternalServerError)
	w := createWebhook(t, e, e.Key, rcv.URL, "proposal.created")
	id := w["id"].(string)
	e.Publish(e.Key, webhook.ProposalCreated, map[string]any{"n": 1})

	var got []testenv.Received
	for range len(schedule) + 1 {
		got = append(got, rcv.Next(t))
	}
	for i := 1; i < len(got); i++ {
		require.Equal(t, got[0].Body, got[i].Body, "identical bytes on every retry")
		require.Equal(t, got[0].Header.Get("webhook-id"), got[i].Header.Get("webhook-id"))
		gap := got[i].At.Sub(got[i-1].At)
		require.GreaterOrEqual(t, gap, schedule[i-1], "retry %d waited its delay", i)
	}
	entries := waitLogs(t, e, e.Key, id, 4)
	for i, entry := range entries { // newest first
		require.Equal(t, "failed", entry["status"])
		require.Equal(t, float64(500), entry["status_code"])
		require.Equal(t, float64(4-i), entry["attempt"])
		if i == 0 {
			require.Nil(t, entry["next_attempt_at"], "the last attempt is not retried")
		} else {
			require.NotNil(t, entry["next_attempt_at"])
		}
	}
	require.Equal(t, 3.0, e.Metric(`quikly_deliveries_total{outcome="retrying"}`))
	require.Equal(t, 1.0, e.Metric(`quikly_deliveries_total{outcome="failed"}`))

	// Resend: due now, same body and ids, attempt numbers go on counting.
	rcv.Respond(http.StatusOK)
	res := e.Do(e.Key, "POST", "/webhooks/"+id+"/logs/"+entries[0]["id"].(string)+"/resend", nil)
	require.Equal(t, http.StatusAccepted, res.Status, "%s", res.Body)
	again := rcv.Next(t)
	require.Equal(t, got[0].Body, again.Body)
	require.Equal(t, got[0].Header.Get("webhook-id"), again.Header.Get("webhook-id"))
	latest := waitLogs(t, e, e.Key, id, 5)[0]
	require.Equal(t, "succeeded", latest["status"])
	require.Equal(t, float64(5), latest["attempt"])
	require.Equal(t, 1.0, e.Metric(`quikly_deliveries_total{outcome="succeeded"}`))
	require.Equal(t, 5.0, e.Metric(`quikly_attempt_duration_seconds_count`))
}

// TestResendOfAPendingDeliveryIsAttemptedNow: SPEC §15 — a pending delivery's resend answers 202 and
// is attempted at once, not at its next retry an hour away; a held one is 409 until the webhook resumes.
func TestResendOfAPendingDeliveryIsAttemptedNow(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{RetrySchedule: []time.Duration{time.Hour, time.Hour}})
	rcv := testenv.NewReceiver(t)
	rcv.Respond(http.StatusServiceUnavailable)
	id := createWebhook(t, e, e.Key, rcv.URL, "proposal.created")["id"].(string)
	e.Publish(e.Key, webhook.ProposalCreated, map[string]any{})
	first := rcv.Next(t)
	entry := waitLogs(t, e, e.Key, id, 1)[0]
	require.NotNil(t, entry["next_attempt_at"], "pending, next try in an hour")
	res := e.Do(e.Key, "POST", "/webhooks/"+id+"/logs/"+entry["id"].(string)+"/resend", nil)
	require.Equal(t, http.StatusAccepted, res.Status, "%s", res.Body)
	again := rcv.Next(t) // an hour early: attempted now
	require.Equal(t, first.Body, again.Body)
	require.Equal(t, first.Header.Get("webhook-id"), again.Header.Get("webhook-id"))
	latest := waitLogs(t, e, e.Key, id, 2)[0]
	require.Equal(t, float64(2), latest["attempt"], "attempt numbers go on")
	require.NotNil(t, latest["next_attempt_at"], "the schedule goes on where it was")

	require.Equal(t, http.StatusOK, e.Do(e.Key, "PUT", "/webhooks/"+id, map[string]any{"is_active": false}).Status)
	errorOf(t, e.Do(e.Key, "POST", "/webhooks/"+id+"/logs/"+entry["id"].(string)+"/resend", nil), http.StatusConflict, "conflict")
	errorOf(t, e.Do(e.Key, "POST", "/webhooks/"+id+"/logs/att_unknown/resend", nil), 404, "not_found")
}

func TestFailedAttemptsSayWhy(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{RetrySchedule: []time.Duration{time.Hour}, DeliveryTimeout: 300 * time.Millisecond})

	t.Run("Timeout", func(t *testing.T) {
		t.Parallel()
		rcv := testenv.NewReceiver(t)
		release := make(chan struct{})
		t.Cleanup(func() { close(release) })
		rcv.Handle(func(w http.ResponseWriter, r *http.Request) { <-release })
		id := createWebhook(t, e, e.Key, rcv.URL)["id"].(string)
		entry := testAttempt(t, e, id)
		require.Equal(t, "failed", entry["status"])
		require.Contains(t, entry["error"], "timeout")
		require.Nil(t, entry["status_code"])
	})
	t.Run("RedirectNotFollowed", func(t *testing.T) {
		t.Parallel()
		target := testenv.NewReceiver(t)
		rcv := testenv.NewReceiver(t)
		rcv.Handle(func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, target.URL, http.StatusFound) })
		id := createWebhook(t, e, e.Key, rcv.URL)["id"].(string)
		entry := testAttempt(t, e, id)
		require.Equal(t, float64(302), entry["status_code"])
		require.Contains(t, entry["error"], "redirect not followed")
		require.Empty(t, target.All(), "the redirect target is never requested")
	})
	t.Run("ConnectionRefused", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		ln.Close()
		id := createWebhook(t, e, e.Key, "http://"+addr+"/hook")["id"].(string)
		entry := testAttempt(t, e, id)
		require.Contains(t, entry["error"], "connection refused")
	})
	t.Run("ServerError", func(t *testing.T) {
		t.Parallel()
		rcv := testenv.NewReceiver(t)
		rcv.Handle(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusInternalServerError)
			w.Write([]byte("database is down"))
		})
		id := createWebhook(t, e, e.Key, rcv.URL)["id"].(string)
		entry := testAttempt(t, e, id)
		require.Equal(t, float64(500), entry["status_code"])
		require.Equal(t, "database is down", entry["response_body"])
		require.Nil(t, entry["next_attempt_at"], "a test event is not retried")
	})
}

// testAttempt sends a test event and returns its log entry, checking it is also in the logs.
func testAttempt(t *testing.T, e *testenv.Env, id string) map[string]any {
	t.Helper()
	res := e.Do(e.Key, "POST", "/webhooks/"+id+"/test", nil)
	require.Equal(t, http.StatusOK, res.Status, "%s", res.Body)
	entry := res.JSON(t)
	require.Equal(t, "test", entry["event"])
	// Among the newest, not necessarily the newest: a real delivery's attempt may be logged after it.
	ids := []any{}
	for _, l := range logs(t, e, e.Key, id, "") {
		ids = append(ids, l["id"])
	}
	require.Contains(t, ids, entry["id"], "the test attempt is in the logs")
	return entry
}

func TestRetryAfterIsHonoured(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{RetrySchedule: []time.Duration{50 * time.Millisecond, 2 * time.Second}})
	rcv := testenv.NewReceiver(t)
	rcv.Handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
	})
	createWebhook(t, e, e.Key, rcv.URL)
	e.Publish(e.Key, webhook.ProposalCreated, map[string]any{})
	first := rcv.Next(t)
	second := rcv.Next(t)
	require.GreaterOrEqual(t, second.At.Sub(first.At), time.Second, "waited the longer Retry-After, not the 50ms schedule")
}

func TestSSRFRefusedEndToEnd(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{DisallowPrivate: true})
	rcv := testenv.NewReceiver(t)
	port := rcv.URL[strings.LastIndex(rcv.URL, ":")+1:]
	// Literal refused addresses are rejected when the webhook is created.
	for _, host := range []string{"127.0.0.1", "[::1]", "10.1.2.3", "169.254.169.254", "192.168.0.1"} {
		res := e.Do(e.Key, "POST", "/webhooks", map[string]any{"name": "n", "url": "https://" + host + ":" + port + "/hook", "events": []string{"proposal.created"}})
		require.Contains(t, errorOf(t, res, 422, "validation_failed"), "url", host)
	}
	// A name that resolves to loopback is refused where it is dialled.
	id := createWebhook(t, e, e.Key, "https://localhost:"+port)["id"].(string)
	entry := testAttempt(t, e, id)
	require.Equal(t, "failed", entry["status"])
	require.Contains(t, entry["error"], "private address refused")
	require.Empty(t, rcv.All(), "no request reached the loopback receiver")
}

func TestSubscriptionsAndTenancy(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{})
	created := testenv.NewReceiver(t)
	shared := testenv.NewReceiver(t)
	otherAccount := testenv.NewReceiver(t)
	createWebhook(t, e, e.Key, created.URL, "proposal.created")
	createWebhook(t, e, e.Key, shared.URL, "proposal.shared")
	other := e.NewKey("other-tenant")
	createWebhook(t, e, other, otherAccount.URL, "proposal.created", "proposal.shared")

	e.Publish(e.Key, webhook.ProposalCreated, map[string]any{"n": 1})
	e.Publish(e.Key, webhook.ProposalShared, map[string]any{"n": 2})
	e.Publish(other, webhook.ProposalShared, map[string]any{"n": 3})

	require.Equal(t, "proposal.created", created.Next(t).Header.Get("X-Quikly-Event"))
	require.Equal(t, "proposal.shared", shared.Next(t).Header.Get("X-Quikly-Event"))
	rec := otherAccount.Next(t)
	require.Contains(t, string(rec.Body), `"n":3`, "the other account gets only its own event")
	// Each receiver's next delivery proves nothing else was queued before it.
	e.Publish(e.Key, webhook.ProposalCreated, map[string]any{"n": 4})
	e.Publish(other, webhook.ProposalCreated, map[string]any{"n": 5})
	require.Contains(t, string(created.Next(t).Body), `"n":4`)
	require.Contains(t, string(otherAccount.Next(t).Body), `"n":5`)
	require.Len(t, shared.All(), 1)
}

func TestPauseHoldsAndResumeReleases(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{})
	rcv := testenv.NewReceiver(t)
	sentinel := testenv.NewReceiver(t)
	id := createWebhook(t, e, e.Key, rcv.URL)["id"].(string)
	sentinelID := createWebhook(t, e, e.Key, sentinel.URL)["id"].(string)
	require.Equal(t, http.StatusOK, e.Do(e.Key, "PUT", "/webhooks/"+id, map[string]any{"is_active": false}).Status)
	var ids []string
	for i := range 3 {
		ids = append(ids, e.Publish(e.Key, webhook.ProposalCreated, map[string]any{"i": i}).ID)
	}
	waitLogs(t, e, e.Key, sentinelID, 3) // the active webhook got all three: the dispatcher has seen them
	require.Empty(t, rcv.All(), "a paused webhook receives nothing")
	require.Equal(t, 3.0, e.Metric("quikly_queue_depth"), "held deliveries count as waiting")

	require.Equal(t, http.StatusOK, e.Do(e.Key, "PUT", "/webhooks/"+id, map[string]any{"is_active": true}).Status)
	var got []string
	for range 3 {
		got = append(got, rcv.Next(t).Header.Get("webhook-id"))
	}
	require.ElementsMatch(t, ids, got)
}

func TestExpiredWhilePausedAndRetention(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{LogRetention: time.Hour})
	rcv := testenv.NewReceiver(t)
	id := createWebhook(t, e, e.Key, rcv.URL)["id"].(string)
	testAttempt(t, e, id) // an attempt that retention will prune
	require.Equal(t, http.StatusOK, e.Do(e.Key, "PUT", "/webhooks/"+id, map[string]any{"is_active": false}).Status)
	e.Publish(e.Key, webhook.ProposalCreated, map[string]any{})

	// A maintainer of the same database whose clock is 90 minutes ahead: the held delivery and the
	// attempt are past the hour's retention.
	m, err := delivery.NewMaintainer(&delivery.MaintainerConfig{Store: e.Service.Store, Retention: time.Hour,
		Clock: clock.Func(func() time.Time { return time.Now().Add(90 * time.Minute) })})
	require.NoError(t, err)
	require.NoError(t, m.RunOnce(context.Background()))
	entries := logs(t, e, e.Key, id, "")
	require.Len(t, entries, 1, "the old test attempt was pruned")
	require.Equal(t, "expired while paused", entries[0]["error"])
	require.Equal(t, "failed", entries[0]["status"])
	require.Equal(t, 0.0, e.Metric("quikly_queue_depth"))
}

func TestDeleteCancelsPendingDeliveries(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{})
	rcv := testenv.NewReceiver(t)
	id := createWebhook(t, e, e.Key, rcv.URL)["id"].(string)
	require.Equal(t, http.StatusOK, e.Do(e.Key, "PUT", "/webhooks/"+id, map[string]any{"is_active": false}).Status)
	e.Publish(e.Key, webhook.ProposalCreated, map[string]any{})
	require.Equal(t, 1.0, e.Metric("quikly_queue_depth"))
	require.Equal(t, http.StatusNoContent, e.Do(e.Key, "DELETE", "/webhooks/"+id, nil).Status)
	require.Equal(t, 0.0, e.Metric("quikly_queue_depth"), "its deliveries were cancelled")
}

func TestRotationSignsWithBothSecrets(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{})
	rcv := testenv.NewReceiver(t)
	w := createWebhook(t, e, e.Key, rcv.URL)
	id, oldSecret := w["id"].(string), w["secret"].(string)
	res := e.Do(e.Key, "POST", "/webhooks/"+id+"/regenerate-secret", nil)
	newSecret := res.JSON(t)["secret"].(string)
	e.Publish(e.Key, webhook.ProposalCreated, map[string]any{})
	rec := rcv.Next(t)
	require.Len(t, strings.Fields(rec.Header.Get("webhook-signature")), 2)
	verifyStandard(t, newSecret, rec)
	verifyStandard(t, oldSecret, rec)
	require.Equal(t, quiklySignature(newSecret, rec.Body), rec.Header.Get("X-Quikly-Signature"), "only the new secret")
}

func TestLogFilters(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{RetrySchedule: []time.Duration{time.Hour}})
	rcv := testenv.NewReceiver(t)
	id := createWebhook(t, e, e.Key, rcv.URL, "proposal.created", "lead_session.created")["id"].(string)
	testAttempt(t, e, id)
	rcv.Respond(http.StatusBadRequest)
	e.Publish(e.Key, webhook.LeadSessionCreated, map[string]any{})
	waitLogs(t, e, e.Key, id, 2)
	for i := range 3 {
		testAttempt(t, e, id)
		_ = i
	}
	require.Len(t, logs(t, e, e.Key, id, "?status=succeeded"), 1)
	require.Len(t, logs(t, e, e.Key, id, "?status=failed"), 4)
	lead := logs(t, e, e.Key, id, "?event=lead_session.created")
	require.Len(t, lead, 1)
	require.Equal(t, "failed", lead[0]["status"])
	require.Len(t, logs(t, e, e.Key, id, "?event=test&status=failed"), 3)
	require.Empty(t, logs(t, e, e.Key, id, "?event=proposal.created"))
	errorOf(t, e.Do(e.Key, "GET", "/webhooks/"+id+"/logs?status=maybe", nil), 422, "validation_failed")
	errorOf(t, e.Do(e.Key, "GET", "/webhooks/"+id+"/logs?event=nope", nil), 422, "validation_failed")

	page1 := e.Do(e.Key, "GET", "/webhooks/"+id+"/logs?limit=3", nil).JSON(t)
	require.Len(t, page1["data"], 3)
	page2 := e.Do(e.Key, "GET", "/webhooks/"+id+"/logs?limit=3&cursor="+page1["next_cursor"].(string), nil).JSON(t)
	require.Len(t, page2["data"], 2)
	require.Nil(t, page2["next_cursor"])
}

// TestSlowEndpointDoesNotDelayOthers: one endpoint hangs with a backlog; every delivery to a healthy
// endpoint arrives while the hung endpoint's first attempts are still waiting for their timeout. The
// timeout is far longer than any plausible drain of the healthy backlog, even on a loaded machine, so
// the test holds by the order of events rather than by how fast the machine is: had the healthy
// deliveries waited for a hung attempt to end, some hung attempt would have been logged first.
func TestSlowEndpointDoesNotDelayOthers(t *testing.T) {
	t.Parallel()
	const perWebhook = 4
	e := testenv.Start(t, testenv.Options{DeliveryTimeout: 10 * time.Minute, Workers: 16, PerWebhook: perWebhook,
		RetrySchedule: []time.Duration{time.Hour}})
	hung := testenv.NewReceiver(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) }) // runs before the service stops: the hung attempts end
	hung.Handle(func(w http.ResponseWriter, r *http.Request) { <-release })
	healthy := testenv.NewReceiver(t)
	hungID := createWebhook(t, e, e.Key, hung.URL, "proposal.created")["id"].(string)
	createWebhook(t, e, e.Key, healthy.URL, "lead_session.created")

	const backlog = 60
	for i := range backlog {
		e.Publish(e.Key, webhook.ProposalCreated, map[string]any{"i": i})
	}
	hung.Next(t)
	for i := range backlog {
		e.Publish(e.Key, webhook.LeadSessionCreated, map[string]any{"i": i})
	}
	for range backlog {
		healthy.Next(t)
	}
	require.Empty(t, logs(t, e, e.Key, hungID, ""), "no hung attempt has ended: the healthy deliveries did not wait for one")
	require.LessOrEqual(t, len(hung.All()), perWebhook, "the hung webhook holds no more than its cap")
}

// TestAnsweringWebhookGetsDeliveriesAtPublish: once a webhook answers, an API create's delivery is
// attempted as the create commits, without a claim (quikly_deliveries_handed_off_total), and is
// signed, logged and counted like any other.
func TestAnsweringWebhookGetsDeliveriesAtPublish(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{})
	rcv := testenv.NewReceiver(t)
	w := createWebhook(t, e, e.Key, rcv.URL, "lead_session.created")
	id, secret := w["id"].(string), w["secret"].(string)
	// The first delivery is claimed (the webhook has not answered yet); the dispatcher counts it as
	// answering once that attempt's answer is in, a moment after the receiver has the request.
	creates := 0
	for e.Metric("quikly_deliveries_handed_off_total") == 0 {
		require.Less(t, creates, 50, "no delivery was ever handed off")
		srcCall(t, e, e.Key, "POST", "/lead-sessions", map[string]any{"channel": "widget", "channel_id": strconv.Itoa(creates), "client_name": "Bo"}, http.StatusCreated)
		creates++
		rec := rcv.Next(t)
		require.Equal(t, quiklySignature(secret, rec.Body), rec.Header.Get("X-Quikly-Signature"))
		verifyStandard(t, secret, rec)
	}
	for _, entry := range waitLogs(t, e, e.Key, id, creates) {
		require.Equal(t, "succeeded", entry["status"])
		require.Equal(t, float64(1), entry["attempt"])
	}
	require.Equal(t, float64(creates), e.Metric(`quikly_deliveries_total{outcome="succeeded"}`))
	require.Len(t, rcv.All(), creates, "one request per event")
}
