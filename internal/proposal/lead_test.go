package proposal

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/webhook"
)

func validLeadCreate() LeadSessionCreate {
	return LeadSessionCreate{Channel: "telegram", ChannelID: "123456789", ClientName: "Jane Doe", Brief: "Needs a landing page."}
}

func setupLead(t *testing.T, status LeadStatus) *LeadSession {
	t.Helper()
	l, err := NewLeadSession("acc_1", validLeadCreate(), t0)
	require.NoError(t, err)
	l.Status = status
	return l
}

var allLeadStatuses = []LeadStatus{LeadGatheringInfo, LeadProposalReady, LeadCompleted, LeadAbandoned}

func TestNewLeadSession(t *testing.T) {
	t.Parallel()

	t.Run("Valid", func(t *testing.T) {
		t.Parallel()
		in := validLeadCreate()
		in.Brief = ""
		in.ClientName = " Jane Doe "
		l, err := NewLeadSession("acc_1", in, t0)
		require.NoError(t, err)
		require.True(t, ValidID(l.ID))
		require.Equal(t, &LeadSession{ID: l.ID, AccountID: "acc_1", Channel: ChannelTelegram, ChannelID: "123456789",
			ClientName: "Jane Doe", Brief: "", Status: LeadGatheringInfo, CreatedAt: t0, UpdatedAt: t0}, l)
	})

	t.Run("Channels", func(t *testing.T) {
		t.Parallel()
		for _, c := range []Channel{ChannelWidget, ChannelTelegram, ChannelAPI} {
			in := validLeadCreate()
			in.Channel = string(c)
			l, err := NewLeadSession("acc_1", in, t0)
			require.NoError(t, err)
			require.Equal(t, c, l.Channel)
		}
	})

	tests := []struct {
		name   string
		modify func(in *LeadSessionCreate)
		want   map[string]string
	}{
		{"ChannelMissing", func(in *LeadSessionCreate) { in.Channel = "" }, map[string]string{"channel": "is required"}},
		{"ChannelUnknown", func(in *LeadSessionCreate) { in.Channel = "email" }, map[string]string{"channel": "widget, telegram or api"}},
		{"ChannelCase", func(in *LeadSessionCreate) { in.Channel = "Telegram" }, map[string]string{"channel": "widget, telegram or api"}},
		{"ChannelIDMissing", func(in *LeadSessionCreate) { in.ChannelID = " " }, map[string]string{"channel_id": "is required"}},
		{"ChannelIDTooLong", func(in *LeadSessionCreate) { in.ChannelID = strings.Repeat("1", ChannelIDMaxLen+1) }, map[string]string{"channel_id": "at most 200"}},
		{"ClientNameMissing", func(in *LeadSessionCreate) { in.ClientName = "" }, map[string]string{"client_name": "is required"}},
		{"ClientNameTooLong", func(in *LeadSessionCreate) { in.ClientName = strings.Repeat("a", ClientNameMaxLen+1) }, map[string]string{"client_name": "at most 200"}},
		{"BriefTooLong", func(in *LeadSessionCreate) { in.Brief = strings.Repeat("a", BriefMaxLen+1) }, map[string]string{"brief": "at most 10000"}},
		{"BriefNUL", func(in *LeadSessionCreate) { in.Brief = "a\x00" }, map[string]string{"brief": "control characters"}},
		{"Everything", func(in *LeadSessionCreate) { *in = LeadSessionCreate{} }, map[string]string{
			"channel": "is required", "channel_id": "is required", "client_name": "is required",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := validLeadCreate()
			tt.modify(&in)
			l, err := NewLeadSession("acc_1", in, t0)
			require.Nil(t, l)
			requireFields(t, err, tt.want)
		})
	}
}

func TestLeadSessionApply(t *testing.T) {
	t.Parallel()

	allowed := map[[2]LeadStatus]bool{
		{LeadGatheringInfo, LeadProposalReady}: true,
		{LeadGatheringInfo, LeadAbandoned}:     true,
		{LeadProposalReady, LeadCompleted}:     true,
		{LeadProposalReady, LeadAbandoned}:     true,
	}
	for _, from := range allLeadStatuses {
		for _, to := range allLeadStatuses {
			t.Run(string(from)+"_To_"+string(to), func(t *testing.T) {
				t.Parallel()
				l := setupLead(t, from)
				before := *l
				event, err := l.Apply(LeadSessionUpdate{Status: ptr(string(to))}, t1)
				switch {
				case from == to:
					require.NoError(t, err)
					require.Empty(t, event, "the same status is no change")
					require.Equal(t, before, *l)
				case allowed[[2]LeadStatus{from, to}]:
					require.NoError(t, err)
					require.Equal(t, webhook.LeadSessionUpdated, event)
					require.Equal(t, to, l.Status)
					require.Equal(t, t1, l.UpdatedAt)
				default:
					require.Empty(t, event)
					if from.Final() {
						requireConflict(t, err, "This lead session is already "+string(from)+"; its status can no longer change.")
					} else {
						requireConflict(t, err, "A lead session cannot move from "+string(from)+" to "+string(to)+".")
					}
					require.Equal(t, before, *l)
				}
			})
		}
	}

	t.Run("FieldsWithoutEvent", func(t *testing.T) {
		t.Parallel()
		for _, from := range allLeadStatuses {
			l := setupLead(t, from)
			event, err := l.Apply(LeadSessionUpdate{ClientName: ptr("Janet"), Brief: ptr("")}, t1)
			require.NoError(t, err)
			require.Empty(t, event, "only a status change fires")
			require.Equal(t, "Janet", l.ClientName)
			require.Empty(t, l.Brief)
			require.Equal(t, t1, l.UpdatedAt)
			require.Equal(t, from, l.Status)
		}
	})

	t.Run("StatusAndFields", func(t *testing.T) {
		t.Parallel()
		l := setupLead(t, LeadGatheringInfo)
		event, err := l.Apply(LeadSessionUpdate{Brief: ptr("Ready."), Status: ptr("proposal_ready")}, t1)
		require.NoError(t, err)
		require.Equal(t, webhook.LeadSessionUpdated, event)
		require.Equal(t, "Ready.", l.Brief)
	})

	t.Run("NoChange", func(t *testing.T) {
		t.Parallel()
		l := setupLead(t, LeadGatheringInfo)
		before := *l
		event, err := l.Apply(LeadSessionUpdate{ClientName: ptr(" Jane Doe "), Status: ptr("gathering_info")}, t1)
		require.NoError(t, err)
		require.Empty(t, event)
		require.Equal(t, before, *l)
	})

	invalid := []struct {
		name   string
		update LeadSessionUpdate
		want   map[string]string
	}{
		{"StatusUnknown", LeadSessionUpdate{Status: ptr("won")}, map[string]string{"status": "must be gathering_info, proposal_ready, completed or abandoned"}},
		{"StatusEmpty", LeadSessionUpdate{Status: ptr("")}, map[string]string{"status": "must be"}},
		{"ClientNameEmpty", LeadSessionUpdate{ClientName: ptr("")}, map[string]string{"client_name": "is required"}},
		{"BriefTooLong", LeadSessionUpdate{Brief: ptr(strings.Repeat("b", BriefMaxLen+1))}, map[string]string{"brief": "at most 10000"}},
		// Validation comes before the state machine: this move would be a conflict.
		{"InvalidBeforeConflict", LeadSessionUpdate{ClientName: ptr(""), Status: ptr("completed")}, map[string]string{"client_name": "is required"}},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := setupLead(t, LeadGatheringInfo)
			before := *l
			tt.update.Brief = cmpOr(tt.update.Brief, ptr("changed"))
			event, err := l.Apply(tt.update, t1)
			requireFields(t, err, tt.want)
			require.Empty(t, event)
			require.Equal(t, before, *l)
		})
	}
}

func cmpOr(a, b *string) *string {
	if a != nil {
		return a
	}
	return b
}

func TestLeadSessionEventData(t *testing.T) {
	t.Parallel()

	l := setupLead(t, LeadProposalReady)
	l.ID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
	l.Brief = ""
	body, err := json.Marshal(l.EventData())
	require.NoError(t, err)
	require.Equal(t, `{"lead_session_id":"7c9e6679-7425-40de-944b-e07fc1f90ae7","channel":"telegram","channel_id":"123456789",`+
		`"client_name":"Jane Doe","brief":"","status":"proposal_ready"}`, string(body))
}
