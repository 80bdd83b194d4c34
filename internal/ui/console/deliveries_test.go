package console_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/app"
	"github.com/quikly/webhooks/internal/delivery"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/webhook"
)

// The deliveries view's forms: CSRF, refusals explained on the page, validation, redirects after
// every change, and other accounts' objects not found.
func TestConsoleDeliveriesForms(t *testing.T) {
	t.Parallel()
	b := newBundle(t, "http://localhost:8080")
	ctx := context.Background()
	acct := b.account(t)
	wh, err := b.app.CreateWebhook(ctx, acct, app.WebhookInput{Name: new("CRM"), URL: new("https://example.com/hook"),
		Events: &[]string{webhook.ProposalCreated}, IsActive: new(false)})
	require.NoError(t, err)
	var ev *webhook.Event
	var ds []*webhook.Delivery
	require.NoError(t, b.app.Store.Tx(ctx, func(tx store.Tx) error {
		ev, ds, err = delivery.Publish(ctx, tx, nil, acct, webhook.ProposalCreated, map[string]any{"n": 1}, b.clock.Now())
		return err
	}))
	cookie, csrf := b.signIn(t)
	base := "/webhooks/" + wh.ID

	page := b.do(t, "GET", base+"/deliveries", nil, cookie)
	require.Equal(t, http.StatusOK, page.StatusCode)
	html := readBody(t, page)
	require.Contains(t, html, `data-delivery="`+ds[0].ID+`"`)
	require.Contains(t, html, "Held (paused)")
	require.Contains(t, html, `id="held-note"`)

	// Retry now of a held delivery is refused, and the delivery's page says why.
	retry := base + "/deliveries/" + ds[0].ID + "/retry"
	require.Equal(t, http.StatusForbidden, b.do(t, "POST", retry, url.Values{}, cookie).StatusCode)
	res := b.do(t, "POST", retry, url.Values{"csrf_token": {csrf}}, cookie)
	require.Equal(t, http.StatusConflict, res.StatusCode)
	require.Contains(t, readBody(t, res), `id="retry-error"`)
	got, err := b.app.GetDelivery(ctx, acct, wh.ID, ds[0].ID)
	require.NoError(t, err)
	require.Equal(t, webhook.DeliveryHeld, got.State)

	// Recover: the confirmation counts, bad input is explained, success redirects.
	since := b.clock.Now().Add(-time.Hour).Format("2006-01-02T15:04")
	res = b.do(t, "GET", base+"/recover?since="+url.QueryEscape(since), nil, cookie)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, readBody(t, res), "0 failed deliveries will be sent again.")
	res = b.do(t, "GET", base+"/recover?since=2020-01-01T00:00", nil, cookie)
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.Contains(t, readBody(t, res), "log retention")
	res = b.do(t, "GET", base+"/recover?since=soon", nil, cookie)
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.Contains(t, readBody(t, res), `id="since-error"`)
	form := url.Values{"since": {since}}
	require.Equal(t, http.StatusForbidden, b.do(t, "POST", base+"/recover", form, cookie).StatusCode)
	form.Set("csrf_token", csrf)
	res = b.do(t, "POST", base+"/recover", form, cookie)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, base+"/deliveries?notice=recovered", res.Header.Get("Location"))
	form.Set("until", since)
	res = b.do(t, "POST", base+"/recover", form, cookie)
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.Contains(t, readBody(t, res), `id="until-error"`)

	// Events: a lookup by id redirects to the event; the event page lists its delivery.
	res = b.do(t, "GET", "/events?id="+ev.ID, nil, cookie)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, "/events/"+ev.ID, res.Header.Get("Location"))
	res = b.do(t, "GET", "/events/"+ev.ID, nil, cookie)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, readBody(t, res), ds[0].ID)

	// Another account sees none of it.
	b2 := *b
	b2.key, err = b.app.CreateAPIKey(ctx, "globex")
	require.NoError(t, err)
	other, _ := b2.signIn(t)
	for _, path := range []string{base + "/deliveries", base + "/deliveries/" + ds[0].ID, base + "/recover", "/events/" + ev.ID} {
		require.Equal(t, http.StatusNotFound, b.do(t, "GET", path, nil, other).StatusCode, path)
	}
}
