package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/quikly/webhooks/internal/errs"
	"github.com/quikly/webhooks/internal/proposal"
)

// proposalRoutes registers the proposal and lead session routes (SPEC §7).
func (h *Handler) proposalRoutes() {
	h.route("/proposals", map[string]http.HandlerFunc{"GET": h.handleProposalList, "POST": h.handleProposalCreate})
	h.route("/proposals/{id}", map[string]http.HandlerFunc{"GET": h.handleProposalGet, "PUT": h.handleProposalUpdate})
	h.route("/proposals/{id}/share", map[string]http.HandlerFunc{"POST": h.handleProposalShare})
	h.route("/lead-sessions", map[string]http.HandlerFunc{"GET": h.handleLeadSessionList, "POST": h.handleLeadSessionCreate})
	h.route("/lead-sessions/{id}", map[string]http.HandlerFunc{"GET": h.handleLeadSessionGet, "PUT": h.handleLeadSessionUpdate})
}

// proposalJSON is the proposal object of SPEC §7. Amounts are json.Number so they are written with
// exactly the currency's decimals (200.20, not 200.2) and never pass through a float.
type proposalJSON struct {
	ID              string         `json:"id"`
	Name            string         `json:"name"`
	ClientName      string         `json:"client_name"`
	ClientEmail     *string        `json:"client_email"`
	Requirements    *string        `json:"requirements"`
	Currency        string         `json:"currency"`
	LineItems       []lineItemJSON `json:"line_items"`
	Total           json.Number    `json:"total"`
	Status          string         `json:"status"`
	ShareURL        *string        `json:"share_url"`
	RespondedAt     *string        `json:"responded_at"`
	RevisionComment *string        `json:"revision_comment"`
	CreatedAt       string         `json:"created_at"`
	UpdatedAt       string         `json:"updated_at"`
}

type lineItemJSON struct {
	Description string      `json:"description"`
	Quantity    int64       `json:"quantity"`
	UnitPrice   json.Number `json:"unit_price"`
}

func (h *Handler) toProposalJSON(p *proposal.Proposal) proposalJSON {
	items := make([]lineItemJSON, len(p.LineItems))
	for i, li := range p.LineItems {
		items[i] = lineItemJSON{Description: li.Description, Quantity: li.Quantity, UnitPrice: li.UnitPrice.Number(p.Currency)}
	}
	return proposalJSON{
		ID: p.ID, Name: p.Name, ClientName: p.ClientName, ClientEmail: stringOrNil(p.ClientEmail),
		Requirements: stringOrNil(p.Requirements), Currency: p.Currency, LineItems: items,
		Total: p.Total().Number(p.Currency), Status: string(p.Status),
		ShareURL: stringOrNil(p.ShareURL(h.app.BaseURL)), RespondedAt: timeOrNil(p.RespondedAt),
		RevisionComment: stringOrNil(p.RevisionComment), CreatedAt: formatTime(p.CreatedAt), UpdatedAt: formatTime(p.UpdatedAt),
	}
}

func stringOrNil(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// proposalInputJSON is a create or update request. Line items are decoded one by one by
// lineItemInputs, so that their problems name their index ("line_items[2].unit_price").
type proposalInputJSON struct {
	Name         *string            `json:"name"`
	ClientName   *string            `json:"client_name"`
	ClientEmail  *string            `json:"client_email"`
	Requirements *string            `json:"requirements"`
	Currency     *string            `json:"currency"`
	LineItems    *[]json.RawMessage `json:"line_items"`
}

// lineItemInputJSON keeps quantity and unit_price as the raw JSON text. Not json.Number: that
// silently takes a string holding a number ("10.50"), and SPEC §3 wants a string where a number
// belongs refused, naming the field. The text then goes to the domain's exact decimal parser; no
// amount ever passes through a float.
type lineItemInputJSON struct {
	Description *string         `json:"description"`
	Quantity    json.RawMessage `json:"quantity"`
	UnitPrice   json.RawMessage `json:"unit_price"`
}

// lineItemInputs decodes each line item strictly, collecting the problems of every item.
func lineItemInputs(raw []json.RawMessage) ([]proposal.LineItemInput, error) {
	f := errs.Fields{}
	out := make([]proposal.LineItemInput, len(raw))
	for i, item := range raw {
		prefix := fmt.Sprintf("line_items[%d]", i)
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(item, &fields); err != nil || fields == nil {
			f.Add(prefix, "must be an object")
			continue
		}
		for name, v := range fields {
			if string(v) == "null" {
				f.Add(prefix+"."+name, "must not be null")
			}
		}
		var in lineItemInputJSON
		dec := json.NewDecoder(bytes.NewReader(item))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			var e *errs.Error
			if errors.As(shapeError(err), &e) {
				for name, problem := range e.Fields {
					f.Add(prefix+"."+name, problem)
				}
			}
			continue
		}
		if in.Description != nil {
			out[i].Description = *in.Description
		}
		out[i].Quantity = numberText(f, prefix+".quantity", in.Quantity)
		out[i].UnitPrice = numberText(f, prefix+".unit_price", in.UnitPrice)
	}
	if err := f.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// numberText returns raw, a JSON value, as the text of a number, recording in f a value of another
// type. A missing value is "", which the domain reports as required.
func numberText(f errs.Fields, field string, raw json.RawMessage) string {
	s := strings.TrimSpace(string(raw))
	switch {
	case s == "" || s == "null": // null was reported with the other nulls
	case s[0] == '"':
		f.Add(field, "must be a number, not a string")
	case s[0] == '-' || ('0' <= s[0] && s[0] <= '9'):
		return s
	default:
		f.Add(field, "must be a number")
	}
	return ""
}

func (j proposalInputJSON) create() (proposal.ProposalCreate, error) {
	var items []proposal.LineItemInput
	if j.LineItems != nil {
		var err error
		if items, err = lineItemInputs(*j.LineItems); err != nil {
			return proposal.ProposalCreate{}, err
		}
	}
	return proposal.ProposalCreate{Name: deref(j.Name), ClientName: deref(j.ClientName), ClientEmail: deref(j.ClientEmail),
		Requirements: deref(j.Requirements), Currency: deref(j.Currency), LineItems: items}, nil
}

func (j proposalInputJSON) update() (proposal.ProposalUpdate, error) {
	u := proposal.ProposalUpdate{Name: j.Name, ClientName: j.ClientName, ClientEmail: j.ClientEmail,
		Requirements: j.Requirements, Currency: j.Currency}
	if j.LineItems != nil {
		items, err := lineItemInputs(*j.LineItems)
		if err != nil {
			return proposal.ProposalUpdate{}, err
		}
		u.LineItems = &items
	}
	return u, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// handleProposalCreate handles "POST /proposals".
func (h *Handler) handleProposalCreate(w http.ResponseWriter, r *http.Request) {
	var in proposalInputJSON
	if err := decode(w, r, &in, "client_email", "requirements"); err != nil {
		h.error(w, r, err)
		return
	}
	create, err := in.create()
	if err != nil {
		h.error(w, r, err)
		return
	}
	p, err := h.app.CreateProposal(r.Context(), accountFrom(r).ID, create)
	if err != nil {
		h.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, h.toProposalJSON(p))
}

// handleProposalList handles "GET /proposals".
func (h *Handler) handleProposalList(w http.ResponseWriter, r *http.Request) {
	limit, cursor, err := pageQuery(r)
	if err != nil {
		h.error(w, r, err)
		return
	}
	p, err := h.app.ListProposals(r.Context(), accountFrom(r).ID, limit, cursor)
	if err != nil {
		h.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toList(p, h.toProposalJSON))
}

// handleProposalGet handles "GET /proposals/{id}".
func (h *Handler) handleProposalGet(w http.ResponseWriter, r *http.Request) {
	p, err := h.app.GetProposal(r.Context(), accountFrom(r).ID, r.PathValue("id"))
	if err != nil {
		h.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h.toProposalJSON(p))
}

// handleProposalUpdate handles "PUT /proposals/{id}".
func (h *Handler) handleProposalUpdate(w http.ResponseWriter, r *http.Request) {
	acct := accountFrom(r)
	// Unknown ids answer 404 before the body is judged, as if the proposal did not exist at all.
	if _, err := h.app.GetProposal(r.Context(), acct.ID, r.PathValue("id")); err != nil {
		h.error(w, r, err)
		return
	}
	var in proposalInputJSON
	if err := decode(w, r, &in, "client_email", "requirements"); err != nil {
		h.error(w, r, err)
		return
	}
	u, err := in.update()
	if err != nil {
		h.error(w, r, err)
		return
	}
	p, err := h.app.UpdateProposal(r.Context(), acct.ID, r.PathValue("id"), u)
	if err != nil {
		h.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h.toProposalJSON(p))
}

// handleProposalShare handles "POST /proposals/{id}/share". It takes no body.
func (h *Handler) handleProposalShare(w http.ResponseWriter, r *http.Request) {
	p, err := h.app.ShareProposal(r.Context(), accountFrom(r).ID, r.PathValue("id"))
	if err != nil {
		h.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h.toProposalJSON(p))
}

// leadSessionJSON is the lead session object of SPEC §7.
type leadSessionJSON struct {
	ID         string `json:"id"`
	Channel    string `json:"channel"`
	ChannelID  string `json:"channel_id"`
	ClientName string `json:"client_name"`
	Brief      string `json:"brief"`
	Status     string `json:"status"`
	CreatedAt  string `json:"created_at"`
	UpdatedAt  string `json:"updated_at"`
}

func toLeadSessionJSON(l *proposal.LeadSession) leadSessionJSON {
	return leadSessionJSON{ID: l.ID, Channel: string(l.Channel), ChannelID: l.ChannelID, ClientName: l.ClientName,
		Brief: l.Brief, Status: string(l.Status), CreatedAt: formatTime(l.CreatedAt), UpdatedAt: formatTime(l.UpdatedAt)}
}

// leadSessionCreateJSON is a create request; the status always starts at gathering_info.
type leadSessionCreateJSON struct {
	Channel    *string `json:"channel"`
	ChannelID  *string `json:"channel_id"`
	ClientName *string `json:"client_name"`
	Brief      *string `json:"brief"`
}

// leadSessionUpdateJSON is an update request; channel and channel_id are fixed at creation.
type leadSessionUpdateJSON struct {
	ClientName *string `json:"client_name"`
	Brief      *string `json:"brief"`
	Status     *string `json:"status"`
}

// handleLeadSessionCreate handles "POST /lead-sessions".
func (h *Handler) handleLeadSessionCreate(w http.ResponseWriter, r *http.Request) {
	var in leadSessionCreateJSON
	if err := decode(w, r, &in); err != nil {
		h.error(w, r, err)
		return
	}
	l, err := h.app.CreateLeadSession(r.Context(), accountFrom(r).ID, proposal.LeadSessionCreate{
		Channel: deref(in.Channel), ChannelID: deref(in.ChannelID), ClientName: deref(in.ClientName), Brief: deref(in.Brief)})
	if err != nil {
		h.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, toLeadSessionJSON(l))
}

// handleLeadSessionList handles "GET /lead-sessions".
func (h *Handler) handleLeadSessionList(w http.ResponseWriter, r *http.Request) {
	limit, cursor, err := pageQuery(r)
	if err != nil {
		h.error(w, r, err)
		return
	}
	p, err := h.app.ListLeadSessions(r.Context(), accountFrom(r).ID, limit, cursor)
	if err != nil {
		h.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toList(p, toLeadSessionJSON))
}

// handleLeadSessionGet handles "GET /lead-sessions/{id}".
func (h *Handler) handleLeadSessionGet(w http.ResponseWriter, r *http.Request) {
	l, err := h.app.GetLeadSession(r.Context(), accountFrom(r).ID, r.PathValue("id"))
	if err != nil {
		h.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toLeadSessionJSON(l))
}

// handleLeadSessionUpdate handles "PUT /lead-sessions/{id}".
func (h *Handler) handleLeadSessionUpdate(w http.ResponseWriter, r *http.Request) {
	acct := accountFrom(r)
	// Unknown ids answer 404 before the body is judged, as for proposals and webhooks.
	if _, err := h.app.GetLeadSession(r.Context(), acct.ID, r.PathValue("id")); err != nil {
		h.error(w, r, err)
		return
	}
	var in leadSessionUpdateJSON
	if err := decode(w, r, &in); err != nil {
		h.error(w, r, err)
		return
	}
	l, err := h.app.UpdateLeadSession(r.Context(), acct.ID, r.PathValue("id"),
		proposal.LeadSessionUpdate{ClientName: in.ClientName, Brief: in.Brief, Status: in.Status})
	if err != nil {
		h.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toLeadSessionJSON(l))
}
