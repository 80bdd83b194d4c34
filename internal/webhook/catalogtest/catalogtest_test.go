package catalogtest

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/proposal"
	"github.com/quikly/webhooks/internal/render"
	"github.com/quikly/webhooks/internal/webhook"
)

func TestCatalogueDocuments(t *testing.T) {
	t.Parallel()

	t.Run("EveryEventDocumented", func(t *testing.T) {
		t.Parallel()
		events := webhook.Documented()
		require.Contains(t, events, webhook.WebhookDisabled)
		require.Contains(t, events, webhook.TestEvent)
		require.True(t, webhook.InCatalogue(webhook.WebhookDisabled), "SPEC §11: webhook.disabled joins the catalogue")
		require.False(t, webhook.InCatalogue(webhook.TestEvent))
		require.Len(t, events, len(webhook.Catalogue)+1)
		for _, e := range events {
			require.NotNil(t, webhook.Schema(e), e)
			require.NotNil(t, webhook.Example(e), e)
			require.NotNil(t, webhook.ExampleData(e), e)
		}
		require.Nil(t, webhook.Schema("proposal.deleted"))
		require.Nil(t, webhook.Example("proposal.deleted"))
		require.Nil(t, webhook.ExampleData(""))
	})

	t.Run("SchemasAre2020_12", func(t *testing.T) {
		t.Parallel()
		for _, e := range webhook.Documented() {
			var s map[string]any
			require.NoError(t, json.Unmarshal(webhook.Schema(e), &s), e)
			require.Equal(t, "https://json-schema.org/draft/2020-12/schema", s["$schema"], e)
			require.Equal(t, "object", s["type"], e)
		}
	})

	t.Run("ExamplesValidate", func(t *testing.T) {
		t.Parallel()
		for _, e := range webhook.Documented() {
			require.NoError(t, ValidateBody(webhook.Example(e)), e)
			require.NoError(t, ValidateData(e, webhook.ExampleData(e)), e)
		}
	})

	t.Run("ExampleIsTheBodyAsSent", func(t *testing.T) {
		t.Parallel()
		at, err := time.Parse(time.RFC3339, webhook.ExampleTimestamp)
		require.NoError(t, err)
		for _, e := range webhook.Documented() {
			want, err := render.Body(render.JSON, render.Event{Type: e, Timestamp: at, WebhookID: webhook.ExampleWebhookID, Data: webhook.ExampleData(e)})
			require.NoError(t, err)
			require.Equal(t, string(want), string(webhook.Example(e)), e)
		}
	})

	t.Run("TestExampleHasEveryFieldSet", func(t *testing.T) {
		t.Parallel()
		var data map[string]any
		require.NoError(t, json.Unmarshal(webhook.ExampleData(webhook.TestEvent), &data))
		for _, k := range []string{"proposal_id", "name", "status", "client_name", "total", "currency",
			"share_url", "responded_at", "revision_comment"} {
			require.NotNil(t, data[k], k)
		}
		require.Len(t, data, 9)
	})

	t.Run("CallerOwnsTheBytes", func(t *testing.T) {
		t.Parallel()
		b := webhook.Schema(webhook.ProposalCreated)
		b[0] = 'X'
		require.Equal(t, byte('{'), webhook.Schema(webhook.ProposalCreated)[0])
	})
}

// mutate returns the example data of event with f applied to its decoded object.
func mutate(t *testing.T, event string, f func(map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(webhook.ExampleData(event), &m))
	f(m)
	b, err := json.Marshal(m)
	require.NoError(t, err)
	return b
}

func TestSchemasReject(t *testing.T) {
	t.Parallel()

	t.Run("MissingRequiredField", func(t *testing.T) {
		t.Parallel()
		for _, e := range webhook.Documented() {
			var m map[string]any
			require.NoError(t, json.Unmarshal(webhook.ExampleData(e), &m))
			for k := range m {
				data := mutate(t, e, func(m map[string]any) { delete(m, k) })
				require.ErrorContains(t, ValidateData(e, data), "missing", "%s without %s", e, k)
			}
		}
	})

	t.Run("WrongType", func(t *testing.T) {
		t.Parallel()
		for _, e := range webhook.Documented() {
			var m map[string]any
			require.NoError(t, json.Unmarshal(webhook.ExampleData(e), &m))
			for k, v := range m {
				var wrong any = 12345
				if _, isNum := v.(float64); isNum {
					wrong = "12345"
				}
				data := mutate(t, e, func(m map[string]any) { m[k] = wrong })
				require.Error(t, ValidateData(e, data), "%s with %s = %v", e, k, wrong)
				data = mutate(t, e, func(m map[string]any) { m[k] = []any{} })
				require.Error(t, ValidateData(e, data), "%s with %s = []", e, k)
			}
		}
	})

	t.Run("UnknownField", func(t *testing.T) {
		t.Parallel()
		for _, e := range webhook.Documented() {
			data := mutate(t, e, func(m map[string]any) { m["extra"] = "x" })
			require.Error(t, ValidateData(e, data), e)
		}
	})

	t.Run("BadFormats", func(t *testing.T) {
		t.Parallel()
		cases := []struct {
			event, key string
			value      any
		}{
			{webhook.ProposalCreated, "proposal_id", "not-a-uuid"},
			{webhook.ProposalCreated, "currency", "usd"},
			{webhook.ProposalCreated, "total", -1},
			{webhook.ProposalCreated, "name", ""},
			{webhook.ProposalAccepted, "responded_at", "yesterday"},
			{webhook.ProposalShared, "share_url", "not a url"},
			{webhook.LeadSessionCreated, "channel", "email"},
			{webhook.LeadSessionCreated, "lead_session_id", "42"},
			{webhook.WebhookDisabled, "failing_since", "2026-03-29"},
			{webhook.WebhookDisabled, "webhook_id", "dlv_1"},
		}
		for _, c := range cases {
			data := mutate(t, c.event, func(m map[string]any) { m[c.key] = c.value })
			require.Error(t, ValidateData(c.event, data), "%s %s=%v", c.event, c.key, c.value)
		}
	})

	t.Run("WhatEachEventGuarantees", func(t *testing.T) {
		t.Parallel()
		cases := []struct {
			event, key string
			value      any
		}{
			{webhook.ProposalCreated, "status", "shared"},
			{webhook.ProposalCreated, "share_url", "https://app.quikly.example/p/x"},
			{webhook.ProposalShared, "share_url", nil},
			{webhook.ProposalAccepted, "status", "rejected"},
			{webhook.ProposalAccepted, "responded_at", nil},
			{webhook.ProposalRejected, "revision_comment", "no"},
			{webhook.ProposalUpdated, "status", "accepted"},
			{webhook.LeadSessionCreated, "status", "completed"},
			{webhook.LeadSessionUpdated, "status", "gathering_info"},
		}
		for _, c := range cases {
			data := mutate(t, c.event, func(m map[string]any) { m[c.key] = c.value })
			require.Error(t, ValidateData(c.event, data), "%s %s=%v", c.event, c.key, c.value)
		}
		// And what it allows.
		data := mutate(t, webhook.ProposalRevisionRequested, func(m map[string]any) { m["revision_comment"] = nil })
		require.NoError(t, ValidateData(webhook.ProposalRevisionRequested, data), "a request for changes without a comment")
		data = mutate(t, webhook.LeadSessionCreated, func(m map[string]any) { m["brief"] = "" })
		require.NoError(t, ValidateData(webhook.LeadSessionCreated, data), "an empty brief")
	})

	t.Run("BadEnvelope", func(t *testing.T) {
		t.Parallel()
		good := string(webhook.Example(webhook.ProposalAccepted))
		require.NoError(t, ValidateBody([]byte(good)))
		bad := map[string]string{
			"NotJSON":             `{"event":`,
			"Array":               `[]`,
			"UnknownEvent":        strings.Replace(good, `"proposal.accepted"`, `"proposal.deleted"`, 1),
			"OtherEventsData":     strings.Replace(good, `"proposal.accepted"`, `"lead_session.created"`, 1),
			"FractionalSeconds":   strings.Replace(good, `14:30:00Z`, `14:30:00.5Z`, 1),
			"Offset":              strings.Replace(good, `14:30:00Z`, `14:30:00+02:00`, 1),
			"NoWebhookID":         strings.Replace(good, `"webhook_id":"`+webhook.ExampleWebhookID+`",`, ``, 1),
			"WebhookIDNotWebhook": strings.Replace(good, webhook.ExampleWebhookID, "dlv_1", 1),
			"ExtraKey":            strings.Replace(good, `{"event"`, `{"id":"evt_1","event"`, 1),
			"DataNull":            good[:strings.Index(good, `"data":`)] + `"data":null}`,
		}
		for name, body := range bad {
			require.Error(t, ValidateBody([]byte(body)), name)
		}
	})
}

// TestRealDataValidates runs proposals and lead sessions through their lifecycle in the domain
// package and checks the data of every event each step fires, in a body as publishing builds it.
func TestRealDataValidates(t *testing.T) {
	t.Parallel()

	now := time.Date(2026, 4, 3, 14, 30, 0, 0, time.UTC)
	check := func(t *testing.T, event string, data any) {
		t.Helper()
		raw, err := json.Marshal(data)
		require.NoError(t, err)
		body, err := render.Body(render.JSON, render.Event{Type: event, Timestamp: now, WebhookID: "wh_2mZ9fQkT3xYcLp8R", Data: raw})
		require.NoError(t, err)
		RequireBody(t, body)
	}
	items := []proposal.LineItemInput{{Description: "Design", Quantity: "2", UnitPrice: "1200.50"}}
	newProposal := func(t *testing.T) *proposal.Proposal {
		t.Helper()
		p, err := proposal.NewProposal("acc_1", proposal.ProposalCreate{Name: "Site", ClientName: "Acme",
			Currency: "KWD", LineItems: items}, now)
		require.NoError(t, err)
		return p
	}
	const base = "http://localhost:8080"

	t.Run("ProposalLifecycle", func(t *testing.T) {
		t.Parallel()
		p := newProposal(t)
		check(t, webhook.ProposalCreated, p.EventData(base))

		name := "Site v2"
		changed, err := p.Apply(proposal.ProposalUpdate{Name: &name}, now)
		require.NoError(t, err)
		require.True(t, changed)
		check(t, webhook.ProposalUpdated, p.EventData(base))

		ev, err := p.Share("", now)
		require.NoError(t, err)
		check(t, ev, p.EventData(base))

		ev, err = p.Answer(proposal.RequestChanges, "Cheaper, please", now)
		require.NoError(t, err)
		check(t, ev, p.EventData(base))

		changed, err = p.Apply(proposal.ProposalUpdate{Name: &name, LineItems: &items}, now)
		require.NoError(t, err)
		require.False(t, changed)
		other := "Site v3"
		_, err = p.Apply(proposal.ProposalUpdate{Name: &other}, now)
		require.NoError(t, err)
		check(t, webhook.ProposalUpdated, p.EventData(base)) // revision_requested, answered, commented

		ev, err = p.Share("", now)
		require.NoError(t, err)
		check(t, ev, p.EventData(base))
		ev, err = p.Answer(proposal.Accept, "", now)
		require.NoError(t, err)
		check(t, ev, p.EventData(base))
	})

	t.Run("Rejected", func(t *testing.T) {
		t.Parallel()
		p := newProposal(t)
		_, err := p.Share("", now)
		require.NoError(t, err)
		ev, err := p.Answer(proposal.Reject, "", now)
		require.NoError(t, err)
		check(t, ev, p.EventData(base))
	})

	t.Run("RevisionRequestedWithoutComment", func(t *testing.T) {
		t.Parallel()
		p := newProposal(t)
		_, err := p.Share("", now)
		require.NoError(t, err)
		ev, err := p.Answer(proposal.RequestChanges, "", now)
		require.NoError(t, err)
		check(t, ev, p.EventData(base))
	})

	t.Run("TestEventSample", func(t *testing.T) {
		t.Parallel()
		check(t, webhook.TestEvent, proposal.SampleProposalData(base, now))
	})

	t.Run("LeadLifecycle", func(t *testing.T) {
		t.Parallel()
		for _, last := range []string{"completed", "abandoned"} {
			l, err := proposal.NewLeadSession("acc_1", proposal.LeadSessionCreate{Channel: "widget",
				ChannelID: "v-1", ClientName: "Jane", Brief: ""}, now)
			require.NoError(t, err)
			check(t, webhook.LeadSessionCreated, l.EventData())
			for _, s := range []string{"proposal_ready", last} {
				status := s
				ev, err := l.Apply(proposal.LeadSessionUpdate{Status: &status}, now)
				require.NoError(t, err)
				require.Equal(t, webhook.LeadSessionUpdated, ev)
				check(t, ev, l.EventData())
			}
		}
	})

	t.Run("WebhookDisabled", func(t *testing.T) {
		t.Parallel()
		w := &webhook.Webhook{ID: "wh_0A1b2C3d4E5f6G7h8I9j0K1l", Name: "CRM", URL: "https://crm.example.com/x?a=1"}
		d := webhook.NewDisabledData(w, now.Add(-120*time.Hour+time.Second/2), "HTTP 500")
		require.Equal(t, "2026-03-29T14:30:00Z", d.FailingSince, "whole seconds, UTC")
		check(t, webhook.WebhookDisabled, d)
	})

	t.Run("EveryCatalogueEventCovered", func(t *testing.T) {
		t.Parallel()
		// The lifecycles above fire these; a new catalogue event needs a case here.
		covered := []string{webhook.ProposalCreated, webhook.ProposalUpdated, webhook.ProposalShared,
			webhook.ProposalAccepted, webhook.ProposalRejected, webhook.ProposalRevisionRequested,
			webhook.LeadSessionCreated, webhook.LeadSessionUpdated, webhook.WebhookDisabled, webhook.TestEvent}
		for _, e := range webhook.Documented() {
			require.True(t, slices.Contains(covered, e), e)
		}
	})
}
