package render_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/render"
	"github.com/quikly/webhooks/internal/webhook"
	"github.com/quikly/webhooks/internal/webhook/catalogtest"
)

func TestJSON(t *testing.T) {
	t.Parallel()

	t.Run("ByteIdenticalToDeliveryBody", func(t *testing.T) {
		t.Parallel()
		// A timestamp with a zone and nanoseconds: both writers must make it UTC, whole seconds.
		when := time.Date(2026, 4, 3, 16, 30, 0, 999_999_999, time.FixedZone("CEST", 2*3600))
		for _, event := range events() {
			for _, variant := range variants {
				data := variantData(event, variant)
				for _, f := range []render.Format{render.JSON, ""} {
					got, err := render.Body(f, render.Event{Type: event, Timestamp: when, WebhookID: "wh_0A1b2C3d", Data: data})
					require.NoError(t, err)
					require.Equal(t, webhook.Body(event, when, "wh_0A1b2C3d", data), got, "%s %s", event, variant)
				}
			}
		}
		// Keys that need JSON escaping are escaped the same way too.
		e := render.Event{Type: "a\"<b>&\u2028", Timestamp: at, WebhookID: "wh_\"x", Data: json.RawMessage(`{}`)}
		got, err := render.Body(render.JSON, e)
		require.NoError(t, err)
		require.Equal(t, webhook.Body(e.Type, at, e.WebhookID, e.Data), got)
	})

	t.Run("MatchesTheCatalogue", func(t *testing.T) {
		t.Parallel()
		for _, event := range webhook.Documented() {
			body, err := render.Body(render.JSON, render.Event{Type: event, Timestamp: at, WebhookID: "wh_2mZ9fQkT3xYcLp8R",
				Data: webhook.ExampleData(event)})
			require.NoError(t, err)
			catalogtest.RequireBody(t, body)
			require.Equal(t, string(webhook.Example(event)), string(body))
		}
	})
}

func TestBodyErrors(t *testing.T) {
	t.Parallel()
	ok := render.Event{Type: webhook.ProposalCreated, Timestamp: at, WebhookID: "wh_1", Data: webhook.ExampleData(webhook.ProposalCreated)}

	_, err := render.Body("xml", ok)
	require.ErrorIs(t, err, render.ErrFormat)
	require.False(t, render.Format("xml").Valid())
	require.False(t, render.Format("").Valid())
	for _, f := range render.Formats() {
		require.True(t, f.Valid())
	}

	for _, data := range []string{``, `{`, `{"a":1} x`} {
		for _, f := range render.Formats() {
			e := ok
			e.Data = json.RawMessage(data)
			_, err := render.Body(f, e)
			require.Error(t, err, "%s %q", f, data)
		}
	}
	// Valid JSON that is not an object: the json format passes it on, chat formats cannot read it.
	for _, data := range []string{`null`, `[]`, `"x"`, `1`, `{"a":1} {"b":2}`} {
		e := ok
		e.Data = json.RawMessage(data)
		_, err := render.Body(render.Slack, e)
		require.Error(t, err, data)
		_, err = render.Body(render.Discord, e)
		require.Error(t, err, data)
	}
}

func TestChatFormatsReadLooseData(t *testing.T) {
	t.Parallel()
	// Missing fields, wrong types and an unknown currency still give a valid message.
	for _, data := range []string{`{}`, `{"name":1,"client_name":["x"],"total":"abc","currency":"XYZ","share_url":5}`,
		`{"name":"N","client_name":"C","total":12.5,"currency":"XYZ"}`, `{"total":1e400}`} {
		for _, event := range events() {
			for _, f := range []render.Format{render.Slack, render.Discord} {
				body, err := render.Body(f, render.Event{Type: event, Timestamp: at, Data: json.RawMessage(data)})
				require.NoError(t, err, "%s %s %s", f, event, data)
				requireChatValid(t, f, body)
			}
		}
	}
}

// BenchmarkBody measures one body per format for the example proposal.accepted: rendering runs
// once per (event, webhook) at publish time, inside the publishing transaction.
func BenchmarkBody(b *testing.B) {
	e := render.Event{Type: webhook.ProposalAccepted, Timestamp: at, WebhookID: "wh_2mZ9fQkT3xYcLp8R",
		Data: webhook.ExampleData(webhook.ProposalAccepted)}
	for _, f := range render.Formats() {
		b.Run(string(f), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := render.Body(f, e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
