package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/account"
	"github.com/quikly/webhooks/internal/errs"
	"github.com/quikly/webhooks/internal/proposal"
	"github.com/quikly/webhooks/internal/randid"
	"github.com/quikly/webhooks/internal/store"
)

// runProposals checks the proposal and lead session queries.
func runProposals(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()

	type testBundle struct {
		st    store.Store
		acct  *account.Account
		other *account.Account // a second account of the same database, for tenancy
	}
	setup := func(t *testing.T) *testBundle {
		t.Helper()
		b := &testBundle{st: open(t)}
		require.NoError(t, b.st.Tx(ctx, func(tx store.Tx) error {
			var err error
			if b.acct, err = tx.AccountGetOrCreate(ctx, "acme-"+randid.Base62(6), base); err != nil {
				return err
			}
			b.other, err = tx.AccountGetOrCreate(ctx, "globex-"+randid.Base62(6), base)
			return err
		}))
		return b
	}
	tx := func(t *testing.T, st store.Store, fn func(tx store.Tx) error) {
		t.Helper()
		require.NoError(t, st.Tx(ctx, fn))
	}
	// newProposal returns a valid draft of the account, made by the domain as use cases make them.
	newProposal := func(t *testing.T, accountID string, at time.Time) *proposal.Proposal {
		t.Helper()
		p, err := proposal.NewProposal(accountID, proposal.ProposalCreate{
			Name: "Website redesign", ClientName: "Acme Corp", Currency: "USD",
			LineItems: []proposal.LineItemInput{
				{Description: "Design", Quantity: "1", UnitPrice: "2500.00"},
				{Description: "Hours", Quantity: "3", UnitPrice: "0.1"},
			},
		}, at)
		require.NoError(t, err)
		return p
	}
	insertProposal := func(t *testing.T, st store.Store, p *proposal.Proposal) {
		t.Helper()
		tx(t, st, func(tx store.Tx) error { return tx.ProposalInsert(ctx, p) })
	}
	newLead := func(t *testing.T, accountID string, at time.Time) *proposal.LeadSession {
		t.Helper()
		l, err := proposal.NewLeadSession(accountID, proposal.LeadSessionCreate{
			Channel: "telegram", ChannelID: "chat-42", ClientName: "Jane", Brief: "A new website",
		}, at)
		require.NoError(t, err)
		return l
	}
	insertLead := func(t *testing.T, st store.Store, l *proposal.LeadSession) {
		t.Helper()
		tx(t, st, func(tx store.Tx) error { return tx.LeadSessionInsert(ctx, l) })
	}
	str := func(s string) *string { return &s }
	requireNotFound := func(t *testing.T, err error) {
		t.Helper()
		require.Equal(t, errs.NotFound, errs.CodeOf(err), "err: %v", err)
	}

	t.Run("ProposalRoundTripsEveryField", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := newProposal(t, b.acct.ID, base)
		// Every optional field set, the largest amount, and times with milliseconds (the stored
		// precision).
		p.ClientEmail, p.Requirements = "jane@acme.example", "Line one\nLine two"
		p.LineItems = append(p.LineItems, proposal.LineItem{Description: "Big", Quantity: 1, UnitPrice: proposal.MaxAmount - 250030})
		p.Status, p.ShareToken = proposal.StatusRevisionRequested, proposal.NewShareToken()
		p.RespondedAt, p.RevisionComment = base.Add(1500*time.Millisecond), "Cheaper, please"
		p.UpdatedAt = base.Add(2 * time.Second)
		insertProposal(t, b.st, p)

		got, err := b.st.ProposalGet(ctx, b.acct.ID, p.ID)
		require.NoError(t, err)
		require.Equal(t, p, got)
		require.Equal(t, proposal.MaxAmount, got.Total(), "minor units are stored exactly")

		var locked *proposal.Proposal
		tx(t, b.st, func(tx store.Tx) error {
			var err error
			locked, err = tx.ProposalGetForUpdate(ctx, b.acct.ID, p.ID)
			return err
		})
		require.Equal(t, p, locked, "a transaction reads what it wrote")
	})

	t.Run("ProposalEmptyOptionalFieldsStayEmpty", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := newProposal(t, b.acct.ID, base)
		insertProposal(t, b.st, p)
		got, err := b.st.ProposalGet(ctx, b.acct.ID, p.ID)
		require.NoError(t, err)
		require.Equal(t, p, got)
		require.Empty(t, got.ClientEmail)
		require.Empty(t, got.ShareToken)
		require.True(t, got.RespondedAt.IsZero())
		require.Equal(t, proposal.StatusDraft, got.Status)
	})

	t.Run("ProposalUpdate", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := newProposal(t, b.acct.ID, base)
		p.ClientEmail, p.Requirements = "jane@acme.example", "Old"
		insertProposal(t, b.st, p)

		later := base.Add(time.Minute)
		changed, err := p.Apply(proposal.ProposalUpdate{Name: str("Renamed"), ClientEmail: str(""), Requirements: str(""),
			Currency: str("KWD")}, later)
		require.NoError(t, err)
		require.True(t, changed)
		event, err := p.Share("", later)
		require.NoError(t, err)
		require.NotEmpty(t, event)
		tx(t, b.st, func(tx store.Tx) error { return tx.ProposalUpdate(ctx, p) })

		got, err := b.st.ProposalGet(ctx, b.acct.ID, p.ID)
		require.NoError(t, err)
		require.Equal(t, p, got)
		require.Empty(t, got.ClientEmail, "clearing an optional field stores none")
		require.Equal(t, "KWD", got.Currency)
		require.Equal(t, "2500.300", got.Total().Format(got.Currency))
		require.True(t, got.CreatedAt.Equal(base), "created_at never moves")

		// An answer sets and a new share clears the answer fields.
		_, err = p.Answer(proposal.RequestChanges, "Split it", base.Add(2*time.Minute))
		require.NoError(t, err)
		tx(t, b.st, func(tx store.Tx) error { return tx.ProposalUpdate(ctx, p) })
		got, err = b.st.ProposalGet(ctx, b.acct.ID, p.ID)
		require.NoError(t, err)
		require.Equal(t, "Split it", got.RevisionComment)
		require.True(t, got.RespondedAt.Equal(base.Add(2*time.Minute)))
		_, err = p.Share("", base.Add(3*time.Minute))
		require.NoError(t, err)
		tx(t, b.st, func(tx store.Tx) error { return tx.ProposalUpdate(ctx, p) })
		got, err = b.st.ProposalGet(ctx, b.acct.ID, p.ID)
		require.NoError(t, err)
		require.Equal(t, p, got)
		require.True(t, got.RespondedAt.IsZero())
		require.Empty(t, got.RevisionComment)
	})

	t.Run("ProposalTenancy", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := newProposal(t, b.acct.ID, base)
		insertProposal(t, b.st, p)

		_, err := b.st.ProposalGet(ctx, b.other.ID, p.ID)
		requireNotFound(t, err)
		_, err = b.st.ProposalGet(ctx, b.acct.ID, "00000000-0000-4000-8000-000000000001")
		requireNotFound(t, err)
		err = b.st.Tx(ctx, func(tx store.Tx) error {
			_, err := tx.ProposalGetForUpdate(ctx, b.other.ID, p.ID)
			return err
		})
		requireNotFound(t, err)

		foreign := *p
		foreign.AccountID, foreign.Name = b.other.ID, "Stolen"
		err = b.st.Tx(ctx, func(tx store.Tx) error { return tx.ProposalUpdate(ctx, &foreign) })
		requireNotFound(t, err)
		got, err := b.st.ProposalGet(ctx, b.acct.ID, p.ID)
		require.NoError(t, err)
		require.Equal(t, "Website redesign", got.Name, "another account's update changes nothing")

		list, err := b.st.ProposalList(ctx, &store.ListParams{AccountID: b.other.ID, Limit: 10})
		require.NoError(t, err)
		require.Empty(t, list)
	})

	t.Run("ProposalGetByShareToken", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := newProposal(t, b.acct.ID, base)
		insertProposal(t, b.st, newProposal(t, b.acct.ID, base)) // a draft: no token
		_, err := p.Share("", base)
		require.NoError(t, err)
		insertProposal(t, b.st, p)

		got, err := b.st.ProposalGetByShareToken(ctx, p.ShareToken)
		require.NoError(t, err)
		require.Equal(t, p, got, "the token alone finds the proposal, whatever its account")
		var locked *proposal.Proposal
		tx(t, b.st, func(tx store.Tx) error {
			var err error
			locked, err = tx.ProposalGetByShareTokenForUpdate(ctx, p.ShareToken)
			return err
		})
		require.Equal(t, p.ID, locked.ID)

		_, err = b.st.ProposalGetByShareToken(ctx, proposal.NewShareToken())
		requireNotFound(t, err)
		_, err = b.st.ProposalGetByShareToken(ctx, "")
		requireNotFound(t, err) // drafts have no token: "" must not find them
	})

	t.Run("ShareTokensAreUnique", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p1, p2 := newProposal(t, b.acct.ID, base), newProposal(t, b.acct.ID, base)
		token := proposal.NewShareToken()
		_, err := p1.Share(token, base)
		require.NoError(t, err)
		_, err = p2.Share(token, base)
		require.NoError(t, err)
		insertProposal(t, b.st, p1)
		err = b.st.Tx(ctx, func(tx store.Tx) error { return tx.ProposalInsert(ctx, p2) })
		require.Error(t, err, "one token never opens two proposals")
		_, err = b.st.ProposalGet(ctx, b.acct.ID, p2.ID)
		requireNotFound(t, err)
	})

	t.Run("ProposalListPagesNewestFirst", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var ids []string
		for i := range 5 {
			p := newProposal(t, b.acct.ID, base.Add(time.Duration(i)*time.Second))
			insertProposal(t, b.st, p)
			ids = append(ids, p.ID)
		}
		insertProposal(t, b.st, newProposal(t, b.other.ID, base)) // never listed for acct

		first, err := b.st.ProposalList(ctx, &store.ListParams{AccountID: b.acct.ID, Limit: 2})
		require.NoError(t, err)
		require.Equal(t, []string{ids[4], ids[3]}, idsOfProposals(first))
		second, err := b.st.ProposalList(ctx, &store.ListParams{AccountID: b.acct.ID, Limit: 2, After: first[1].ID})
		require.NoError(t, err)
		require.Equal(t, []string{ids[2], ids[1]}, idsOfProposals(second))
		last, err := b.st.ProposalList(ctx, &store.ListParams{AccountID: b.acct.ID, Limit: 2, After: second[1].ID})
		require.NoError(t, err)
		require.Equal(t, []string{ids[0]}, idsOfProposals(last))
		require.Equal(t, "USD", last[0].Currency)
		require.Len(t, last[0].LineItems, 2, "listed proposals are complete")

		// A cursor naming another account's proposal, or none, is refused rather than followed.
		otherList, err := b.st.ProposalList(ctx, &store.ListParams{AccountID: b.other.ID, Limit: 10})
		require.NoError(t, err)
		require.Len(t, otherList, 1)
		_, err = b.st.ProposalList(ctx, &store.ListParams{AccountID: b.acct.ID, Limit: 2, After: otherList[0].ID})
		require.Equal(t, errs.Invalid, errs.CodeOf(err))
		_, err = b.st.ProposalList(ctx, &store.ListParams{AccountID: b.acct.ID, Limit: 2, After: "00000000-0000-4000-8000-000000000001"})
		require.Equal(t, errs.Invalid, errs.CodeOf(err))
	})

	t.Run("ProposalRolledBackInsertLeavesNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := newProposal(t, b.acct.ID, base)
		boom := errors.New("boom")
		var insertErr error
		err := b.st.Tx(ctx, func(tx store.Tx) error {
			if insertErr = tx.ProposalInsert(ctx, p); insertErr != nil {
				return insertErr
			}
			return boom
		})
		require.NoError(t, insertErr)
		require.ErrorIs(t, err, boom)
		_, err = b.st.ProposalGet(ctx, b.acct.ID, p.ID)
		requireNotFound(t, err)
	})

	t.Run("LeadSessionRoundTripAndUpdate", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		l := newLead(t, b.acct.ID, base)
		insertLead(t, b.st, l)
		got, err := b.st.LeadSessionGet(ctx, b.acct.ID, l.ID)
		require.NoError(t, err)
		require.Equal(t, l, got)

		empty := newLead(t, b.acct.ID, base)
		empty.Brief = ""
		insertLead(t, b.st, empty)
		got, err = b.st.LeadSessionGet(ctx, b.acct.ID, empty.ID)
		require.NoError(t, err)
		require.Equal(t, "", got.Brief, "an empty brief is stored as empty")

		event, err := l.Apply(proposal.LeadSessionUpdate{ClientName: str("Jane Doe"), Brief: str(""),
			Status: str(string(proposal.LeadProposalReady))}, base.Add(time.Minute))
		require.NoError(t, err)
		require.NotEmpty(t, event)
		var lockedStatus proposal.LeadStatus
		tx(t, b.st, func(tx store.Tx) error {
			locked, err := tx.LeadSessionGetForUpdate(ctx, b.acct.ID, l.ID)
			if err != nil {
				return err
			}
			lockedStatus = locked.Status
			return tx.LeadSessionUpdate(ctx, l)
		})
		require.Equal(t, proposal.LeadGatheringInfo, lockedStatus)
		got, err = b.st.LeadSessionGet(ctx, b.acct.ID, l.ID)
		require.NoError(t, err)
		require.Equal(t, l, got)
		require.True(t, got.CreatedAt.Equal(base))
	})

	t.Run("LeadSessionTenancy", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		l := newLead(t, b.acct.ID, base)
		insertLead(t, b.st, l)
		_, err := b.st.LeadSessionGet(ctx, b.other.ID, l.ID)
		requireNotFound(t, err)
		err = b.st.Tx(ctx, func(tx store.Tx) error {
			_, err := tx.LeadSessionGetForUpdate(ctx, b.other.ID, l.ID)
			return err
		})
		requireNotFound(t, err)
		foreign := *l
		foreign.AccountID, foreign.Status = b.other.ID, proposal.LeadAbandoned
		err = b.st.Tx(ctx, func(tx store.Tx) error { return tx.LeadSessionUpdate(ctx, &foreign) })
		requireNotFound(t, err)
		got, err := b.st.LeadSessionGet(ctx, b.acct.ID, l.ID)
		require.NoError(t, err)
		require.Equal(t, proposal.LeadGatheringInfo, got.Status)
	})

	t.Run("LeadSessionListPagesNewestFirst", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var ids []string
		for i := range 3 {
			l := newLead(t, b.acct.ID, base.Add(time.Duration(i)*time.Second))
			insertLead(t, b.st, l)
			ids = append(ids, l.ID)
		}
		foreign := newLead(t, b.other.ID, base)
		insertLead(t, b.st, foreign)

		first, err := b.st.LeadSessionList(ctx, &store.ListParams{AccountID: b.acct.ID, Limit: 2})
		require.NoError(t, err)
		require.Equal(t, []string{ids[2], ids[1]}, idsOfLeadSessions(first))
		rest, err := b.st.LeadSessionList(ctx, &store.ListParams{AccountID: b.acct.ID, Limit: 2, After: first[1].ID})
		require.NoError(t, err)
		require.Equal(t, []string{ids[0]}, idsOfLeadSessions(rest))
		_, err = b.st.LeadSessionList(ctx, &store.ListParams{AccountID: b.acct.ID, Limit: 2, After: foreign.ID})
		require.Equal(t, errs.Invalid, errs.CodeOf(err))
	})
}

func idsOfProposals(ps []*proposal.Proposal) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.ID
	}
	return out
}

func idsOfLeadSessions(ls []*proposal.LeadSession) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.ID
	}
	return out
}
