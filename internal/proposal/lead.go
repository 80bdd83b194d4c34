package proposal

import (
	"time"

	"github.com/quikly/webhooks/internal/errs"
	"github.com/quikly/webhooks/internal/webhook"
)

// Channel is where a lead session came from.
type Channel string

// The channels of lead sessions.
const (
	ChannelWidget   Channel = "widget"
	ChannelTelegram Channel = "telegram"
	ChannelAPI      Channel = "api"
)

// LeadStatus is where a lead session stands.
type LeadStatus string

// Lead session statuses: gathering_info → proposal_ready → completed, and either of the first two →
// abandoned. Completed and abandoned are final.
const (
	LeadGatheringInfo LeadStatus = "gathering_info"
	LeadProposalReady LeadStatus = "proposal_ready"
	LeadCompleted     LeadStatus = "completed"
	LeadAbandoned     LeadStatus = "abandoned"
)

// leadMoves lists, for each status, the statuses it may move to.
var leadMoves = map[LeadStatus][]LeadStatus{
	LeadGatheringInfo: {LeadProposalReady, LeadAbandoned},
	LeadProposalReady: {LeadCompleted, LeadAbandoned},
	LeadCompleted:     nil,
	LeadAbandoned:     nil,
}

// Final reports whether s is a status a lead session never leaves.
func (s LeadStatus) Final() bool { return s == LeadCompleted || s == LeadAbandoned }

// CanMoveTo reports whether a lead session may move from s to next. Staying in the same status is
// not a move (Apply treats it as no change).
func (s LeadStatus) CanMoveTo(next LeadStatus) bool {
	for _, m := range leadMoves[s] {
		if m == next {
			return true
		}
	}
	return false
}

// LeadSession is a lead's conversation with a team, from the chat widget, Telegram or the API.
type LeadSession struct {
	ID         string // a UUID
	AccountID  string
	Channel    Channel
	ChannelID  string // the conversation's id in its channel (a Telegram chat id, a widget visitor id, …)
	ClientName string
	Brief      string // may be ""
	Status     LeadStatus
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// LeadSessionCreate is the input of NewLeadSession.
type LeadSessionCreate struct {
	Channel    string
	ChannelID  string
	ClientName string
	Brief      string
}

// NewLeadSession validates in and returns a new lead session of the account in status
// gathering_info, created at now, with a new random ID. The caller fires webhook.LeadSessionCreated.
// Text fields are stored trimmed; a validation error (errs.Invalid) names every bad field.
func NewLeadSession(accountID string, in LeadSessionCreate, now time.Time) (*LeadSession, error) {
	f := errs.Fields{}
	l := &LeadSession{
		ID:         newUUID(),
		AccountID:  accountID,
		ChannelID:  checkText(f, "channel_id", in.ChannelID, true, ChannelIDMaxLen, singleLine),
		ClientName: checkText(f, "client_name", in.ClientName, true, ClientNameMaxLen, singleLine),
		Brief:      checkText(f, "brief", in.Brief, false, BriefMaxLen, multiLine),
		Status:     LeadGatheringInfo,
		CreatedAt:  now,
		UpdatedAt:  now,
	}
	switch c := Channel(in.Channel); c {
	case ChannelWidget, ChannelTelegram, ChannelAPI:
		l.Channel = c
	case "":
		f.Add("channel", "is required")
	default:
		f.Add("channel", "must be widget, telegram or api")
	}
	if err := f.Err(); err != nil {
		return nil, err
	}
	return l, nil
}

// LeadSessionUpdate is the input of Apply. A nil field keeps its value.
type LeadSessionUpdate struct {
	ClientName *string
	Brief      *string
	Status     *string
}

// Apply applies u at now and returns the event to fire: webhook.LeadSessionUpdated when the status
// changed, "" otherwise (also when only client_name or brief changed: SPEC §7 fires on status
// changes only). Bad input is errs.Invalid; a status move the state machine forbids is
// errs.Conflict, checked after the input. Giving the current status again is no move and never a
// conflict, even in a final status. client_name and brief stay editable in every status: only the
// status is final. UpdatedAt moves when anything changed. On any error l is unchanged.
func (l *LeadSession) Apply(u LeadSessionUpdate, now time.Time) (string, error) {
	f := errs.Fields{}
	next := *l
	if u.ClientName != nil {
		next.ClientName = checkText(f, "client_name", *u.ClientName, true, ClientNameMaxLen, singleLine)
	}
	if u.Brief != nil {
		next.Brief = checkText(f, "brief", *u.Brief, false, BriefMaxLen, multiLine)
	}
	if u.Status != nil {
		s := LeadStatus(*u.Status)
		if _, ok := leadMoves[s]; ok {
			next.Status = s
		} else {
			f.Add("status", "must be gathering_info, proposal_ready, completed or abandoned")
		}
	}
	if err := f.Err(); err != nil {
		return "", err
	}
	if next.Status != l.Status && !l.Status.CanMoveTo(next.Status) {
		return "", leadConflict(l.Status, next.Status)
	}
	if next == *l {
		return "", nil
	}
	event := ""
	if next.Status != l.Status {
		event = webhook.LeadSessionUpdated
	}
	next.UpdatedAt = now
	*l = next
	return event, nil
}

func leadConflict(from, to LeadStatus) error {
	if from.Final() {
		return errs.Errorf(errs.Conflict, "This lead session is already %s; its status can no longer change.", from)
	}
	return errs.Errorf(errs.Conflict, "A lead session cannot move from %s to %s.", from, to)
}

// LeadSessionData is the data of lead session events (SPEC §5).
type LeadSessionData struct {
	LeadSessionID string `json:"lead_session_id"`
	Channel       string `json:"channel"`
	ChannelID     string `json:"channel_id"`
	ClientName    string `json:"client_name"`
	Brief         string `json:"brief"`
	Status        string `json:"status"`
}

// EventData returns the event data of the lead session as it is now, a LeadSessionData.
func (l *LeadSession) EventData() any {
	return LeadSessionData{
		LeadSessionID: l.ID,
		Channel:       string(l.Channel),
		ChannelID:     l.ChannelID,
		ClientName:    l.ClientName,
		Brief:         l.Brief,
		Status:        string(l.Status),
	}
}
