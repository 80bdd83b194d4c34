package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/clock"
	"github.com/quikly/webhooks/internal/delivery"
	"github.com/quikly/webhooks/internal/testenv"
	"github.com/quikly/webhooks/internal/webhook"
)

// listData GETs a list and returns its items and next cursor ("" when none).
func listData(t *testing.T, e *testenv.Env, key, path string) ([]map[string]any, string) {
	t.Helper()
	res := e.Do(key, "GET", path, nil)
	require.Equal(t, http.StatusOK, res.Status, "%s", res.Body)
	body := res.JSON(t)
	var out []map[string]any
	for _, d := range body["data"].([]any) {
		out = append(out, d.(map[string]any))
	}
	next, _ := body["next_cursor"].(string)
	return out, next
}

// waitDelivery polls a delivery until ok holds for it and returns it.
func waitDelivery(t *testing.T, e *testenv.Env, key, hook, id string, ok func(d map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		res := e.Do(key, "GET", "/webhooks/"+hook+"/deliveries/"+id, nil)
		require.Equal(t, http.StatusOK, res.Status, "%s", res.Body)
		d := res.JSON(t)
		if ok(d) {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery never reached the state wanted: %v", d)
		}
		time.Sleep(10 * time.Millisecond) // polling an outcome we cannot be signalled about; not a timing assertion
	}
}

func status(s string) func(map[string]any) bool {
	return func(d map[string]any) bool { return d["status"] == s }
}

// waitStats polls a webhook's stats until ok holds.
func waitStats(t *testing.T, e *testenv.Env, key, hook string, ok func(s map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		res := e.Do(key, "GET", "/webhooks/"+hook+"/stats", nil)
		require.Equal(t, http.StatusOK, res.Status, "%s", res.Body)
		s := res.JSON(t)
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats never reached the state wanted: %v", s)
		}
		time.Sleep(10 * time.Millisecond) // polling an outcome we cannot be signalled about; not a timing assertion
	}
}

func rfc(t time.Time) string { return url.QueryEscape(t.UTC().Format(time.RFC3339)) }

// deliveryOf returns the id of the one delivery of event on webhook hook.
func deliveryOf(t *testing.T, e *testenv.Env, key, event string) string {
	t.Helper()
	res := e.Do(key, "GET", "/events/"+event, nil)
	require.Equal(t, http.StatusOK, res.Status, "%s", res.Body)
	ds := res.JSON(t)["deliveries"].([]any)
	require.Len(t, ds, 1)
	return ds[0].(map[string]any)["id"].(string)
}

func TestDeliveriesListGetRetryAndStats(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{RetrySchedule: []time.Duration{50 * time.Millisecond}})
	rcv := testenv.NewReceiver(t)
	rcv.Respond(http.StatusInternalServerError)
	hook := createWebhook(t, e, e.Key, rcv.URL, "proposal.created", "proposal.updated")["id"].(string)
	start := time.Now().Add(-time.Second)

	evA := e.Publish(e.Key, webhook.ProposalCreated, map[string]any{"n": "a"})
	dA := deliveryOf(t, e, e.Key, evA.ID)
	a := waitDelivery(t, e, e.Key, hook, dA, status("failed"))
	rcv.Respond(http.StatusOK)
	evB := e.Publish(e.Key, webhook.ProposalUpdated, map[string]any{"n": "b"})
	dB := deliveryOf(t, e, e.Key, evB.ID)
	b := waitDelivery(t, e, e.Key, hook, dB, status("succeeded"))

	// The delivery object, exactly as SPEC §10 has it.
	keys := []string{"id", "webhook_id", "event_id", "event", "status", "attempts", "next_attempt_at",
		"last_attempt_at", "last_status_code", "last_error", "created_at", "attempts"}
	for _, k := range keys {
		require.Contains(t, a, k)
	}
	require.Equal(t, hook, a["webhook_id"])
	require.Equal(t, evA.ID, a["event_id"])
	require.Equal(t, "proposal.created", a["event"])
	require.Nil(t, a["next_attempt_at"], "a failed delivery has no next attempt")
	require.Equal(t, float64(500), a["last_status_code"])
	require.Equal(t, "HTTP 500", a["last_error"])
	require.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`, a["last_attempt_at"])
	attempts := a["attempts"].([]any)
	require.Len(t, attempts, 2, "one attempt and one retry")
	require.Equal(t, float64(2), attempts[0].(map[string]any)["attempt"], "attempts newest first")
	require.Equal(t, float64(1), attempts[1].(map[string]any)["attempt"])
	require.Equal(t, dA, attempts[0].(map[string]any)["delivery_id"])
	require.Equal(t, float64(200), b["last_status_code"])
	require.Nil(t, b["last_error"])

	// Lists: newest first, filters, pages.
	all, next := listData(t, e, e.Key, "/webhooks/"+hook+"/deliveries")
	require.Empty(t, next)
	require.Len(t, all, 2)
	require.Equal(t, []any{dB, dA}, []any{all[0]["id"], all[1]["id"]})
	require.Equal(t, float64(2), all[1]["attempts"], "in a list, attempts is the number made")
	require.NotContains(t, all[0], "body")
	failed, _ := listData(t, e, e.Key, "/webhooks/"+hook+"/deliveries?status=failed")
	require.Len(t, failed, 1)
	require.Equal(t, dA, failed[0]["id"])
	pending, _ := listData(t, e, e.Key, "/webhooks/"+hook+"/deliveries?status=pending")
	require.Empty(t, pending)
	updated, _ := listData(t, e, e.Key, "/webhooks/"+hook+"/deliveries?event=proposal.updated")
	require.Len(t, updated, 1)
	require.Equal(t, dB, updated[0]["id"])
	inRange, _ := listData(t, e, e.Key, "/webhooks/"+hook+"/deliveries?since="+rfc(start)+"&until="+rfc(time.Now().Add(time.Minute)))
	require.Len(t, inRange, 2)
	none, _ := listData(t, e, e.Key, "/webhooks/"+hook+"/deliveries?until="+rfc(start))
	require.Empty(t, none, "until is exclusive and before both")
	first, cursor := listData(t, e, e.Key, "/webhooks/"+hook+"/deliveries?limit=1")
	require.Equal(t, dB, first[0]["id"])
	require.NotEmpty(t, cursor)
	second, cursor := listData(t, e, e.Key, "/webhooks/"+hook+"/deliveries?limit=1&cursor="+cursor)
	require.Equal(t, dA, second[0]["id"])
	require.Empty(t, cursor)
	for _, q := range []string{"?status=done", "?since=yesterday", "?until=2026-13-01T00:00:00Z", "?event=nope",
		"?limit=201", "?cursor=bogus", "?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z"} {
		errorOf(t, e.Do(e.Key, "GET", "/webhooks/"+hook+"/deliveries"+q, nil), 422, "validation_failed")
	}

	// Stats before any retry: one failed, one succeeded, in the last 24 h.
	s := waitStats(t, e, e.Key, hook, func(s map[string]any) bool { return s["succeeded_24h"] == float64(1) })
	require.Equal(t, map[string]any{"pending": float64(0), "held": float64(0), "succeeded_24h": float64(1),
		"failed_24h": float64(1), "last_success_at": s["last_success_at"], "last_failure_at": s["last_failure_at"]}, s)
	require.NotNil(t, s["last_success_at"])
	require.NotNil(t, s["last_failure_at"])

	// Retry now of a failed delivery: pending again, same body and ids, attempts go on counting.
	res := e.Do(e.Key, "POST", "/webhooks/"+hook+"/deliveries/"+dA+"/retry", nil)
	require.Equal(t, http.StatusAccepted, res.Status, "%s", res.Body)
	r := res.JSON(t)
	require.Equal(t, dA, r["id"])
	require.Contains(t, []any{"pending", "succeeded"}, r["status"])
	a = waitDelivery(t, e, e.Key, hook, dA, status("succeeded"))
	require.Equal(t, float64(3), a["attempts"].([]any)[0].(map[string]any)["attempt"])
	var sentA []testenv.Received
	for _, rec := range rcv.All() {
		if rec.Header.Get("webhook-id") == evA.ID {
			sentA = append(sentA, rec)
		}
	}
	require.Len(t, sentA, 3)
	require.Equal(t, sentA[0].Body, sentA[2].Body, "the same body as the first attempt")
	// Retry now of a succeeded delivery sends it once more.
	res = e.Do(e.Key, "POST", "/webhooks/"+hook+"/deliveries/"+dB+"/retry", nil)
	require.Equal(t, http.StatusAccepted, res.Status, "%s", res.Body)
	waitDelivery(t, e, e.Key, hook, dB, func(d map[string]any) bool {
		return d["status"] == "succeeded" && len(d["attempts"].([]any)) == 2
	})

	// Tenancy: another account sees none of it, exactly as if it did not exist.
	other := e.NewKey("globex")
	for _, c := range []struct{ method, path string }{
		{"GET", "/webhooks/" + hook + "/deliveries"},
		{"GET", "/webhooks/" + hook + "/deliveries/" + dA},
		{"POST", "/webhooks/" + hook + "/deliveries/" + dA + "/retry"},
		{"POST", "/webhooks/" + hook + "/recover"},
		{"GET", "/webhooks/" + hook + "/stats"},
		{"GET", "/events/" + evA.ID},
		{"GET", "/webhooks/" + hook + "/deliveries/dlv_unknown"},
		{"POST", "/webhooks/" + hook + "/deliveries/dlv_unknown/retry"},
		{"GET", "/webhooks/wh_unknown/stats"},
	} {
		key := other
		if c.path == "/webhooks/"+hook+"/deliveries/dlv_unknown" || c.path == "/webhooks/"+hook+"/deliveries/dlv_unknown/retry" {
			key = e.Key
		}
		errorOf(t, e.Do(key, c.method, c.path, map[string]any{"since": time.Now().Format(time.RFC3339)}), 404, "not_found")
	}
	// A delivery named under another webhook of the same account is not found either.
	hook2 := createWebhook(t, e, e.Key, rcv.URL)["id"].(string)
	errorOf(t, e.Do(e.Key, "GET", "/webhooks/"+hook2+"/deliveries/"+dA, nil), 404, "not_found")
	errorOf(t, e.Do("", "GET", "/webhooks/"+hook+"/deliveries", nil), 401, "unauthorized")
	errorOf(t, e.Do(e.Key, "DELETE", "/webhooks/"+hook+"/deliveries", nil), 405, "method_not_allowed")
}

func TestRetryNowOfHeldConflictsAndHeldCounts(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{})
	rcv := testenv.NewReceiver(t)
	hook := createWebhook(t, e, e.Key, rcv.URL)["id"].(string)
	require.Equal(t, http.StatusOK, e.Do(e.Key, "PUT", "/webhooks/"+hook, map[string]any{"is_active": false}).Status)
	ev := e.Publish(e.Key, webhook.ProposalCreated, map[string]any{})
	d := deliveryOf(t, e, e.Key, ev.ID)
	got := waitDelivery(t, e, e.Key, hook, d, status("held"))
	require.Nil(t, got["next_attempt_at"], "a held delivery waits for its webhook, not a time")
	require.Nil(t, got["last_attempt_at"])
	require.Empty(t, got["attempts"])
	held, _ := listData(t, e, e.Key, "/webhooks/"+hook+"/deliveries?status=held")
	require.Len(t, held, 1)
	s := waitStats(t, e, e.Key, hook, func(map[string]any) bool { return true })
	require.Equal(t, float64(1), s["held"])
	require.Equal(t, float64(0), s["pending"])
	require.Nil(t, s["last_success_at"])

	errorOf(t, e.Do(e.Key, "POST", "/webhooks/"+hook+"/deliveries/"+d+"/retry", nil), 409, "conflict")
	require.Equal(t, "held", waitDelivery(t, e, e.Key, hook, d, status("held"))["status"], "a refused retry changes nothing")

	require.Equal(t, http.StatusOK, e.Do(e.Key, "PUT", "/webhooks/"+hook, map[string]any{"is_active": true}).Status)
	require.Equal(t, ev.ID, rcv.Next(t).Header.Get("webhook-id"))
	waitDelivery(t, e, e.Key, hook, d, status("succeeded"))

	// A deleted webhook's deliveries are cancelled; the webhook, and so they, are gone from the API.
	require.Equal(t, http.StatusOK, e.Do(e.Key, "PUT", "/webhooks/"+hook, map[string]any{"is_active": false}).Status)
	ev2 := e.Publish(e.Key, webhook.ProposalCreated, map[string]any{})
	require.Equal(t, http.StatusNoContent, e.Do(e.Key, "DELETE", "/webhooks/"+hook, nil).Status)
	res := e.Do(e.Key, "GET", "/events/"+ev2.ID, nil)
	require.Equal(t, "cancelled", res.JSON(t)["deliveries"].([]any)[0].(map[string]any)["status"])
	errorOf(t, e.Do(e.Key, "POST", "/webhooks/"+hook+"/deliveries/"+deliveryOf(t, e, e.Key, ev2.ID)+"/retry", nil), 404, "not_found")
}

// SPEC §10: retry now of a pending delivery attempts it now, and if that fails the schedule goes
// on where it was.
func TestRetryNowOfPendingAttemptsNow(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{RetrySchedule: []time.Duration{time.Hour, time.Hour}})
	rcv := testenv.NewReceiver(t)
	rcv.Respond(http.StatusServiceUnavailable)
	hook := createWebhook(t, e, e.Key, rcv.URL)["id"].(string)
	ev := e.Publish(e.Key, webhook.ProposalCreated, map[string]any{})
	rcv.Next(t)
	d := deliveryOf(t, e, e.Key, ev.ID)
	waitDelivery(t, e, e.Key, hook, d, func(d map[string]any) bool { return len(d["attempts"].([]any)) == 1 })

	// Fails again: still pending, the schedule's second delay next (not a fresh schedule).
	res := e.Do(e.Key, "POST", "/webhooks/"+hook+"/deliveries/"+d+"/retry", nil)
	require.Equal(t, http.StatusAccepted, res.Status, "%s", res.Body)
	require.Equal(t, "pending", res.JSON(t)["status"])
	rcv.Next(t)
	got := waitDelivery(t, e, e.Key, hook, d, func(d map[string]any) bool { return len(d["attempts"].([]any)) == 2 })
	require.Equal(t, "pending", got["status"])
	require.NotNil(t, got["next_attempt_at"])

	rcv.Respond(http.StatusOK)
	require.Equal(t, http.StatusAccepted, e.Do(e.Key, "POST", "/webhooks/"+hook+"/deliveries/"+d+"/retry", nil).Status)
	rcv.Next(t)
	got = waitDelivery(t, e, e.Key, hook, d, status("succeeded"))
	require.Len(t, got["attempts"], 3)
	require.Len(t, rcv.All(), 3)
}

// A retry now that lands when the scheduled retry falls due makes one attempt, not two.
func TestRetryNowWhenTheScheduledRetryFallsDue(t *testing.T) {
	t.Parallel()
	// A long delivery timeout: on a loaded machine a 2 s timeout of an answered request would be one
	// more attempt than the test counts.
	e := testenv.Start(t, testenv.Options{RetrySchedule: []time.Duration{time.Millisecond}, DeliveryTimeout: time.Minute})
	rcv := testenv.NewReceiver(t)
	var mu sync.Mutex
	first := true
	release := make(chan struct{})
	rcv.Handle(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		f := first
		first = false
		mu.Unlock()
		if f {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		<-release // the second attempt stays in flight until the retry now has been asked
		w.WriteHeader(http.StatusOK)
	})
	hook := createWebhook(t, e, e.Key, rcv.URL)["id"].(string)
	ev := e.Publish(e.Key, webhook.ProposalCreated, map[string]any{})
	d := deliveryOf(t, e, e.Key, ev.ID)
	rcv.Next(t)
	rcv.Next(t) // the scheduled retry, due 1 ms after the failure, is in flight now
	res := e.Do(e.Key, "POST", "/webhooks/"+hook+"/deliveries/"+d+"/retry", nil)
	close(release)
	got := waitDelivery(t, e, e.Key, hook, d, status("succeeded"))
	require.Contains(t, []int{http.StatusAccepted, http.StatusConflict}, res.Status, "%s", res.Body)
	// Every request the receiver got is logged, and there were two: the failure and one success.
	require.Len(t, got["attempts"], len(rcv.All()))
	require.Len(t, rcv.All(), 2, "one attempt for the retry now and the scheduled retry together")
}

func TestRecover(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{RetrySchedule: []time.Duration{}})
	rcv := testenv.NewReceiver(t)
	rcv.Respond(http.StatusInternalServerError)
	hook := createWebhook(t, e, e.Key, rcv.URL)["id"].(string)
	start := time.Now().Add(-time.Second)
	var evs []string
	for i := range 5 {
		evs = append(evs, e.Publish(e.Key, webhook.ProposalCreated, map[string]any{"i": i}).ID)
	}
	waitStats(t, e, e.Key, hook, func(s map[string]any) bool { return s["failed_24h"] == float64(5) })

	path := "/webhooks/" + hook + "/recover"
	for _, c := range []struct {
		body  any
		field string
	}{
		{nil, "since"},
		{map[string]any{"since": "yesterday"}, "since"},
		{map[string]any{"since": time.Now().Add(-800 * time.Hour).Format(time.RFC3339)}, "since"},
		{map[string]any{"since": start.Format(time.RFC3339), "until": start.Format(time.RFC3339)}, "until"},
		{map[string]any{"since": start.Format(time.RFC3339), "until": 5}, "until"},
		{map[string]any{"since": start.Format(time.RFC3339), "extra": 1}, "extra"},
	} {
		f := errorOf(t, e.Do(e.Key, "POST", path, c.body), 422, "validation_failed")
		require.Contains(t, f, c.field)
	}
	errorOf(t, e.Do(e.Key, "POST", path, "{"), 400, "invalid_json")
	errorOf(t, e.DoRaw(e.Key, "POST", path, "text/plain", `{"since":"x"}`), 415, "unsupported_media_type")
	failed, _ := listData(t, e, e.Key, "/webhooks/"+hook+"/deliveries?status=failed")
	require.Len(t, failed, 5, "bad input changed nothing")

	// A range before the events recovers nothing.
	res := e.Do(e.Key, "POST", path, map[string]any{"since": start.Add(-time.Hour).Format(time.RFC3339),
		"until": start.Format(time.RFC3339)})
	require.Equal(t, http.StatusAccepted, res.Status, "%s", res.Body)
	require.Equal(t, map[string]any{"recovered": float64(0)}, res.JSON(t))

	rcv.Respond(http.StatusOK)
	before := len(rcv.All())
	res = e.Do(e.Key, "POST", path, map[string]any{"since": start.Format(time.RFC3339)})
	require.Equal(t, http.StatusAccepted, res.Status, "%s", res.Body)
	require.Equal(t, map[string]any{"recovered": float64(5)}, res.JSON(t))
	s := waitStats(t, e, e.Key, hook, func(s map[string]any) bool { return s["succeeded_24h"] == float64(5) })
	var got []string
	for _, rec := range rcv.All()[before:] {
		got = append(got, rec.Header.Get("webhook-id"))
	}
	require.ElementsMatch(t, evs, got, "each recovered event sent once more")
	require.Equal(t, float64(0), s["failed_24h"])
	for _, d := range listOfAll(t, e, e.Key, hook) {
		require.Equal(t, "succeeded", d["status"])
		require.Equal(t, float64(2), d["attempts"], "the failed attempt and the recovered one")
	}
	// Recovering again finds nothing failed.
	res = e.Do(e.Key, "POST", path, map[string]any{"since": start.Format(time.RFC3339)})
	require.Equal(t, map[string]any{"recovered": float64(0)}, res.JSON(t))
}

func listOfAll(t *testing.T, e *testenv.Env, key, hook string) []map[string]any {
	t.Helper()
	ds, next := listData(t, e, key, "/webhooks/"+hook+"/deliveries?limit=200")
	require.Empty(t, next)
	return ds
}

func TestRecoverOnAPausedWebhookHolds(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{RetrySchedule: []time.Duration{}})
	rcv := testenv.NewReceiver(t)
	rcv.Respond(http.StatusInternalServerError)
	hook := createWebhook(t, e, e.Key, rcv.URL)["id"].(string)
	start := time.Now().Add(-time.Second)
	ev := e.Publish(e.Key, webhook.ProposalCreated, map[string]any{})
	waitStats(t, e, e.Key, hook, func(s map[string]any) bool { return s["failed_24h"] == float64(1) })
	require.Equal(t, http.StatusOK, e.Do(e.Key, "PUT", "/webhooks/"+hook, map[string]any{"is_active": false}).Status)
	res := e.Do(e.Key, "POST", "/webhooks/"+hook+"/recover", map[string]any{"since": start.Format(time.RFC3339)})
	require.Equal(t, map[string]any{"recovered": float64(1)}, res.JSON(t))
	require.Equal(t, float64(1), waitStats(t, e, e.Key, hook, func(map[string]any) bool { return true })["held"])
	rcv.Respond(http.StatusOK)
	require.Equal(t, http.StatusOK, e.Do(e.Key, "PUT", "/webhooks/"+hook, map[string]any{"is_active": true}).Status)
	for rcv.Next(t).Header.Get("webhook-id") != ev.ID {
	}
	waitDelivery(t, e, e.Key, hook, deliveryOf(t, e, e.Key, ev.ID), status("succeeded"))
}

// Recover while the dispatcher is busy with the same webhook, twice at once: every event arrives,
// and none is answered 200 twice (no crash, so at-least-once allows no duplicate here).
func TestRecoverRacesARunningDispatcher(t *testing.T) {
	t.Parallel()
	// A long delivery timeout: on a loaded machine a 2 s timeout of an answered request would fail a
	// fresh delivery, which the second recover would then rightly take too.
	e := testenv.Start(t, testenv.Options{RetrySchedule: []time.Duration{}, DeliveryTimeout: time.Minute})
	rcv := testenv.NewReceiver(t)
	var mu sync.Mutex
	failing := true
	ok := map[string]int{}
	rcv.Handle(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if failing {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		ok[r.Header.Get("webhook-id")]++
		w.WriteHeader(http.StatusOK)
	})
	hook := createWebhook(t, e, e.Key, rcv.URL)["id"].(string)
	start := time.Now().Add(-time.Second)
	const n = 150
	var evs []string
	for i := range n {
		evs = append(evs, e.Publish(e.Key, webhook.ProposalCreated, map[string]any{"i": i}).ID)
	}
	waitStats(t, e, e.Key, hook, func(s map[string]any) bool { return s["failed_24h"] == float64(n) })
	mu.Lock()
	failing = false
	mu.Unlock()
	// Fresh events keep the dispatcher busy with this webhook while recover runs.
	for i := range n {
		evs = append(evs, e.Publish(e.Key, webhook.ProposalCreated, map[string]any{"fresh": i}).ID)
	}
	var wg sync.WaitGroup
	answers := make([]*testenv.Response, 2)
	for i := range answers {
		wg.Go(func() {
			answers[i] = e.Do(e.Key, "POST", "/webhooks/"+hook+"/recover", map[string]any{"since": start.Format(time.RFC3339)})
		})
	}
	wg.Wait()
	var recovered float64
	for _, res := range answers {
		require.Equal(t, http.StatusAccepted, res.Status, "%s", res.Body)
		recovered += res.JSON(t)["recovered"].(float64)
	}
	require.Equal(t, float64(n), recovered, "each failed delivery is recovered once")
	waitStats(t, e, e.Key, hook, func(s map[string]any) bool {
		return s["succeeded_24h"] == float64(2*n) && s["pending"] == float64(0)
	})
	mu.Lock()
	defer mu.Unlock()
	for _, id := range evs {
		require.Equal(t, 1, ok[id], "event %s answered 200 exactly once", id)
	}
}

func TestEventsAPI(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{})
	rcv := testenv.NewReceiver(t)
	hook := createWebhook(t, e, e.Key, rcv.URL, "proposal.created")["id"].(string)
	start := time.Now().Add(-time.Second)
	// An event no webhook takes is listed too, with its data.
	lonely := e.Publish(e.Key, webhook.LeadSessionCreated, map[string]any{"lead_session_id": "l1", "channel": "api"})
	taken := e.Publish(e.Key, webhook.ProposalCreated, map[string]any{"proposal_id": "p1", "total": 10.5})
	testAttempt(t, e, hook) // a test event: never listed
	rec := rcv.Next(t)
	for rec.Header.Get("webhook-id") != taken.ID {
		rec = rcv.Next(t)
	}

	evs, next := listData(t, e, e.Key, "/events")
	require.Empty(t, next)
	require.Len(t, evs, 2, "test events are not listed")
	require.Equal(t, taken.ID, evs[0]["id"], "newest first")
	require.Equal(t, lonely.ID, evs[1]["id"])
	require.Equal(t, map[string]any{"id": lonely.ID, "type": "lead_session.created", "timestamp": evs[1]["timestamp"],
		"data": map[string]any{"lead_session_id": "l1", "channel": "api"}}, evs[1])
	var body map[string]any
	require.NoError(t, json.Unmarshal(rec.Body, &body))
	require.Equal(t, body["data"], evs[0]["data"], "the same data as the delivery carried")
	require.Equal(t, body["timestamp"], evs[0]["timestamp"])

	only, _ := listData(t, e, e.Key, "/events?type=lead_session.created")
	require.Len(t, only, 1)
	require.Equal(t, lonely.ID, only[0]["id"])
	since, _ := listData(t, e, e.Key, "/events?since="+rfc(start))
	require.Len(t, since, 2)
	none, _ := listData(t, e, e.Key, "/events?since="+rfc(time.Now().Add(time.Hour)))
	require.Empty(t, none)
	page1, cursor := listData(t, e, e.Key, "/events?limit=1")
	require.Equal(t, taken.ID, page1[0]["id"])
	page2, cursor := listData(t, e, e.Key, "/events?limit=1&cursor="+cursor)
	require.Equal(t, lonely.ID, page2[0]["id"])
	require.Empty(t, cursor)
	for _, q := range []string{"?type=test", "?type=nope", "?since=now", "?limit=0", "?cursor=x"} {
		errorOf(t, e.Do(e.Key, "GET", "/events"+q, nil), 422, "validation_failed")
	}

	res := e.Do(e.Key, "GET", "/events/"+taken.ID, nil)
	require.Equal(t, http.StatusOK, res.Status, "%s", res.Body)
	got := res.JSON(t)
	ds := got["deliveries"].([]any)
	require.Len(t, ds, 1)
	d := ds[0].(map[string]any)
	require.Equal(t, hook, d["webhook_id"])
	require.Equal(t, []string{"attempts", "id", "status", "webhook_id"}, srcKeys(d))
	res = e.Do(e.Key, "GET", "/events/"+lonely.ID, nil)
	require.Equal(t, []any{}, res.JSON(t)["deliveries"])

	other := e.NewKey("globex")
	theirs, _ := listData(t, e, other, "/events")
	require.Empty(t, theirs)
	errorOf(t, e.Do(other, "GET", "/events/"+taken.ID, nil), 404, "not_found")
	errorOf(t, e.Do(e.Key, "GET", "/events/evt_unknown", nil), 404, "not_found")
	errorOf(t, e.Do(e.Key, "POST", "/events", nil), 405, "method_not_allowed")
}

func TestEventsArePrunedWithTheLogs(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{LogRetention: time.Hour})
	ev := e.Publish(e.Key, webhook.LeadSessionCreated, map[string]any{})
	require.Equal(t, http.StatusOK, e.Do(e.Key, "GET", "/events/"+ev.ID, nil).Status)
	// Maintainers of the same database whose clocks are ahead, within and then past the hour's retention.
	ahead := func(d time.Duration) *delivery.Maintainer {
		m, err := delivery.NewMaintainer(&delivery.MaintainerConfig{Store: e.Service.Store, Retention: time.Hour,
			Clock: clock.Func(func() time.Time { return time.Now().Add(d) })})
		require.NoError(t, err)
		return m
	}
	require.NoError(t, ahead(30*time.Minute).RunOnce(context.Background()))
	require.Equal(t, http.StatusOK, e.Do(e.Key, "GET", "/events/"+ev.ID, nil).Status, "kept within the retention")
	require.NoError(t, ahead(90*time.Minute).RunOnce(context.Background()))
	errorOf(t, e.Do(e.Key, "GET", "/events/"+ev.ID, nil), 404, "not_found")
	evs, _ := listData(t, e, e.Key, "/events")
	require.Empty(t, evs, fmt.Sprint("pruned: ", evs))
}
