// Package proposal holds the event sources of Quikly: proposals and lead sessions, their
// validation, their state machines and the webhook events each change fires. It is pure domain
// code: no database, no HTTP. Its types are not safe for concurrent mutation; callers load, change
// and store them inside one transaction.
package proposal

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/quikly/webhooks/internal/errs"
	"github.com/quikly/webhooks/internal/webhook"
)

// Status is where a proposal stands.
type Status string

// Proposal statuses. A proposal starts as a draft; sharing it makes it shared; the client's answer
// makes it accepted or rejected (both final) or revision_requested, which the team edits and shares
// again.
const (
	StatusDraft             Status = "draft"
	StatusShared            Status = "shared"
	StatusAccepted          Status = "accepted"
	StatusRejected          Status = "rejected"
	StatusRevisionRequested Status = "revision_requested"
)

// Final reports whether s admits no further change.
func (s Status) Final() bool { return s == StatusAccepted || s == StatusRejected }

// LineItem is one priced line of a proposal.
type LineItem struct {
	Description string
	Quantity    int64 // 1 to QuantityMax
	UnitPrice   Money // in the proposal's currency, at most MaxAmount
}

// Proposal is an offer a team makes to its client. Optional text fields use "" for none (rendered
// as null); zero times mean never.
type Proposal struct {
	ID              string // a UUID
	AccountID       string
	Name            string
	ClientName      string
	ClientEmail     string // "" when none
	Requirements    string // "" when none
	Currency        string // ISO 4217, upper case
	LineItems       []LineItem
	Status          Status
	ShareToken      string    // "" until first shared; then kept for good (the link never changes)
	RespondedAt     time.Time // when the client last answered; zero when it has not since last shared
	RevisionComment string    // the client's comment with its request for changes; "" when none
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// ProposalCreate is the input of NewProposal. ClientEmail and Requirements are optional ("" for none).
type ProposalCreate struct {
	Name         string
	ClientName   string
	ClientEmail  string
	Requirements string
	Currency     string
	LineItems    []LineItemInput
}

// NewProposal validates in and returns a new draft proposal of the account, created at now, with a
// new random ID. The caller fires webhook.ProposalCreated. Text fields are stored trimmed and the
// currency upper-cased; a validation error (errs.Invalid) names every bad field.
func NewProposal(accountID string, in ProposalCreate, now time.Time) (*Proposal, error) {
	f := errs.Fields{}
	p := &Proposal{
		ID:           newUUID(),
		AccountID:    accountID,
		Name:         checkText(f, "name", in.Name, true, NameMaxLen, singleLine),
		ClientName:   checkText(f, "client_name", in.ClientName, true, ClientNameMaxLen, singleLine),
		ClientEmail:  checkEmail(f, "client_email", in.ClientEmail),
		Requirements: checkText(f, "requirements", in.Requirements, false, RequirementsMaxLen, multiLine),
		Status:       StatusDraft,
		CreatedAt:    now,
		UpdatedAt:    now,
	}
	cur, ok := checkCurrency(f, "currency", in.Currency)
	p.Currency = cur
	p.LineItems = parseLineItems(f, in.LineItems, cur, ok)
	if err := f.Err(); err != nil {
		return nil, err
	}
	return p, nil
}

// ProposalUpdate is the input of Apply. A nil field keeps its value; "" clears ClientEmail and
// Requirements. LineItems, when given, replaces every line item.
type ProposalUpdate struct {
	Name         *string
	ClientName   *string
	ClientEmail  *string
	Requirements *string
	Currency     *string
	LineItems    *[]LineItemInput
}

// Apply applies u at now and reports whether anything actually changed: only then does the caller
// fire webhook.ProposalUpdated (and UpdatedAt moves). An accepted or rejected proposal takes no
// change at all (errs.Conflict, checked before the input). Otherwise the status stays as it is: a
// shared proposal stays shared with the same link, and a revision_requested one stays so until it
// is shared again.
//
// A new currency without new line items keeps the prices' values (10.50 USD becomes 10.50 EUR), so it
// is refused when a price has more decimals than the new currency allows. On any error p is unchanged.
func (p *Proposal) Apply(u ProposalUpdate, now time.Time) (bool, error) {
	if p.Status.Final() {
		return false, errs.Errorf(errs.Conflict, "This proposal was already %s and can no longer be changed.", p.Status)
	}
	f := errs.Fields{}
	next := *p
	if u.Name != nil {
		next.Name = checkText(f, "name", *u.Name, true, NameMaxLen, singleLine)
	}
	if u.ClientName != nil {
		next.ClientName = checkText(f, "client_name", *u.ClientName, true, ClientNameMaxLen, singleLine)
	}
	if u.ClientEmail != nil {
		next.ClientEmail = checkEmail(f, "client_email", *u.ClientEmail)
	}
	if u.Requirements != nil {
		next.Requirements = checkText(f, "requirements", *u.Requirements, false, RequirementsMaxLen, multiLine)
	}
	curOK := true
	if u.Currency != nil {
		next.Currency, curOK = checkCurrency(f, "currency", *u.Currency)
	}
	switch {
	case u.LineItems != nil:
		next.LineItems = parseLineItems(f, *u.LineItems, next.Currency, curOK)
	case curOK && next.Currency != p.Currency:
		next.LineItems = rescaleItems(f, p.LineItems, p.Currency, next.Currency)
	}
	if err := f.Err(); err != nil {
		return false, err
	}
	if next.sameContent(p) {
		return false, nil
	}
	next.UpdatedAt = now
	*p = next
	return true, nil
}

// rescaleItems re-expresses items priced in from in the minor units of to, recording in f (under
// "currency") a price that has too many decimals for to, or a total that grows too large.
func rescaleItems(f errs.Fields, items []LineItem, from, to string) []LineItem {
	fromDec, toDec := decimals(from), decimals(to)
	out := make([]LineItem, len(items))
	for i, li := range items {
		price, ok := li.UnitPrice.rescale(fromDec, toDec)
		switch {
		case !ok && fromDec > toDec: // fewer decimals: only precision can be lost
			f.Add("currency", fmt.Sprintf("%s allows %d decimals but line_items[%d].unit_price is %s; send line_items along with the new currency",
				to, toDec, i, li.UnitPrice.Format(from)))
			return nil
		case !ok: // more decimals: only the size can overflow
			f.Add("currency", fmt.Sprintf("makes line_items[%d].unit_price too large (at most %s %s)", i, MaxAmount.Format(to), to))
			return nil
		}
		li.UnitPrice = price
		out[i] = li
	}
	if _, ok := Total(out); !ok {
		f.Add("currency", fmt.Sprintf("makes the total too large (at most %s %s)", MaxAmount.Format(to), to))
		return nil
	}
	return out
}

// sameContent reports whether p and q have the same editable content.
func (p *Proposal) sameContent(q *Proposal) bool {
	if p.Name != q.Name || p.ClientName != q.ClientName || p.ClientEmail != q.ClientEmail ||
		p.Requirements != q.Requirements || p.Currency != q.Currency || len(p.LineItems) != len(q.LineItems) {
		return false
	}
	for i := range p.LineItems {
		if p.LineItems[i] != q.LineItems[i] {
			return false
		}
	}
	return true
}

// Share shares the proposal with its client at now and returns the event to fire:
//
//   - draft → shared: webhook.ProposalShared; the proposal gets token as its share token (a new one
//     from NewShareToken when token is "").
//   - revision_requested → shared: webhook.ProposalShared; the share token is kept, so the link the
//     client already has works again, and the previous answer (RespondedAt, RevisionComment) is
//     cleared: the proposal awaits a fresh answer. The request itself went out with
//     proposal.revision_requested.
//   - shared: "" (nothing to fire, nothing changes; the link stays the same).
//   - accepted or rejected: errs.Conflict.
func (p *Proposal) Share(token string, now time.Time) (string, error) {
	switch p.Status {
	case StatusShared:
		return "", nil
	case StatusAccepted, StatusRejected:
		return "", errs.Errorf(errs.Conflict, "This proposal was already %s; it cannot be shared again.", p.Status)
	}
	if p.ShareToken == "" {
		if token == "" {
			token = NewShareToken()
		}
		p.ShareToken = token
	}
	p.Status = StatusShared
	p.RespondedAt = time.Time{}
	p.RevisionComment = ""
	p.UpdatedAt = now
	return webhook.ProposalShared, nil
}

// Answer is a client's answer to a shared proposal.
type Answer string

// The answers a client can give on the share page.
const (
	Accept         Answer = "accept"
	Reject         Answer = "reject"
	RequestChanges Answer = "request_changes"
)

// Answer records the client's answer at now and returns the event to fire
// (webhook.ProposalAccepted, ProposalRejected or ProposalRevisionRequested). Only a shared proposal
// takes an answer; any other status is errs.Conflict with a message the share page can show as is.
// comment is kept (trimmed, at most RevisionCommentMaxLen characters, "" for none) as
// RevisionComment with RequestChanges, and ignored with the other answers. An unknown answer or a bad
// comment is errs.Invalid. On any error p is unchanged.
func (p *Proposal) Answer(a Answer, comment string, now time.Time) (string, error) {
	var status Status
	var event string
	switch a {
	case Accept:
		status, event = StatusAccepted, webhook.ProposalAccepted
	case Reject:
		status, event = StatusRejected, webhook.ProposalRejected
	case RequestChanges:
		status, event = StatusRevisionRequested, webhook.ProposalRevisionRequested
	default:
		return "", errs.Field("answer", "must be accept, reject or request_changes")
	}
	switch p.Status {
	case StatusShared:
	case StatusAccepted, StatusRejected:
		return "", errs.Errorf(errs.Conflict, "This proposal was already %s.", p.Status)
	case StatusRevisionRequested:
		return "", errs.Errorf(errs.Conflict, "Changes were requested; the team must share it again before it can be answered.")
	default:
		return "", errs.Errorf(errs.Conflict, "This proposal has not been shared yet.")
	}
	if a == RequestChanges {
		f := errs.Fields{}
		comment = checkText(f, "comment", comment, false, RevisionCommentMaxLen, multiLine)
		if err := f.Err(); err != nil {
			return "", err
		}
	} else {
		comment = ""
	}
	p.Status = status
	p.RespondedAt = now
	p.RevisionComment = comment
	p.UpdatedAt = now
	return event, nil
}

// Total returns the exact total of the proposal, in minor units of its currency. Validation keeps
// it within MaxAmount; for a proposal that somehow is not (a corrupt row) it returns MaxAmount
// rather than a wrapped-around number.
func (p *Proposal) Total() Money {
	t, ok := Total(p.LineItems)
	if !ok {
		return MaxAmount
	}
	return t
}

// ShareURL returns the link the client opens, baseURL + "/p/" + token, or "" before the proposal was
// first shared. A trailing slash on baseURL is ignored.
func (p *Proposal) ShareURL(baseURL string) string {
	if p.ShareToken == "" {
		return ""
	}
	return strings.TrimRight(baseURL, "/") + "/p/" + p.ShareToken
}

// ProposalData is the data of proposal events (SPEC §5). Null fields are nil.
type ProposalData struct {
	ProposalID      string      `json:"proposal_id"`
	Name            string      `json:"name"`
	Status          string      `json:"status"`
	ClientName      string      `json:"client_name"`
	Total           json.Number `json:"total"` // with exactly the currency's decimals
	Currency        string      `json:"currency"`
	ShareURL        *string     `json:"share_url"`
	RespondedAt     *string     `json:"responded_at"` // RFC 3339, UTC, "Z"
	RevisionComment *string     `json:"revision_comment"`
}

// EventData returns the event data of the proposal as it is now, a ProposalData, with share_url
// built on baseURL.
func (p *Proposal) EventData(baseURL string) any {
	return ProposalData{
		ProposalID:      p.ID,
		Name:            p.Name,
		Status:          string(p.Status),
		ClientName:      p.ClientName,
		Total:           p.Total().Number(p.Currency),
		Currency:        p.Currency,
		ShareURL:        nullable(p.ShareURL(baseURL)),
		RespondedAt:     nullableTime(p.RespondedAt),
		RevisionComment: nullable(p.RevisionComment),
	}
}

// SampleProposalID and SampleShareToken identify the made-up proposal of SampleProposalData.
const (
	SampleProposalID = "00000000-0000-4000-8000-000000000000"
	SampleShareToken = "SampleShareTokenOfTheTestEvent00"
)

// SampleProposal returns a made-up proposal with every field set (it is revision_requested, so it
// has a share link, an answer time and a comment), answered at now.
func SampleProposal(now time.Time) *Proposal {
	created := now.Add(-48 * time.Hour)
	return &Proposal{
		ID:           SampleProposalID,
		AccountID:    "",
		Name:         "Website redesign",
		ClientName:   "Acme Corp",
		ClientEmail:  "jane.doe@example.com",
		Requirements: "A new marketing site with a blog and a contact form.",
		Currency:     "USD",
		LineItems: []LineItem{
			{Description: "Design", Quantity: 1, UnitPrice: 250000},
			{Description: "Development (hours)", Quantity: 40, UnitPrice: 9500},
			{Description: "Hosting (months)", Quantity: 12, UnitPrice: 2550},
		},
		Status:          StatusRevisionRequested,
		ShareToken:      SampleShareToken,
		RespondedAt:     now,
		RevisionComment: "Could you split the design work into two phases?",
		CreatedAt:       created,
		UpdatedAt:       now,
	}
}

// SampleProposalData returns the data of the test event: SampleProposal(now).EventData(baseURL),
// made-up values for every proposal field, none of them null.
func SampleProposalData(baseURL string, now time.Time) any {
	return SampleProposal(now).EventData(baseURL)
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nullableTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339)
	return &s
}
