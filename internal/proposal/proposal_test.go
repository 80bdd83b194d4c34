package proposal

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/errs"
	"github.com/quikly/webhooks/internal/webhook"
)

var (
	t0 = time.Date(2026, 4, 3, 14, 30, 0, 0, time.UTC)
	t1 = t0.Add(time.Hour)
)

func ptr[T any](v T) *T { return &v }

// requireFields asserts that err is a validation error whose fields are exactly the keys of want,
// each problem containing its value.
func requireFields(t *testing.T, err error, want map[string]string) {
	t.Helper()
	require.Error(t, err)
	var e *errs.Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, errs.Invalid, e.Code, "error: %v", err)
	keys := func(m map[string]string) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		return out
	}
	require.ElementsMatch(t, keys(want), keys(e.Fields), "fields: %v", e.Fields)
	for field, problem := range want {
		require.Contains(t, e.Fields[field], problem, "field %s", field)
	}
}

// requireConflict asserts that err is a conflict whose message contains msg.
func requireConflict(t *testing.T, err error, msg string) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, errs.Conflict, errs.CodeOf(err), "error: %v", err)
	require.Contains(t, err.Error(), msg)
}

func validCreate() ProposalCreate {
	return ProposalCreate{
		Name:       "Website redesign",
		ClientName: "Acme Corp",
		Currency:   "USD",
		LineItems: []LineItemInput{
			{Description: "Design", Quantity: "1", UnitPrice: "2500"},
			{Description: "Hosting", Quantity: "12", UnitPrice: "10.50"},
		},
	}
}

type testBundle struct {
	p *Proposal
}

// setup returns a valid proposal (USD, 2500.00 + 12 × 10.50) in status, shared already when the
// status implies it.
func setup(t *testing.T, status Status) *testBundle {
	t.Helper()
	p, err := NewProposal("acc_1", validCreate(), t0)
	require.NoError(t, err)
	if status != StatusDraft {
		p.Status = status
		p.ShareToken = "tok0000000000000000000000000000a"
	}
	if status == StatusAccepted || status == StatusRejected || status == StatusRevisionRequested {
		p.RespondedAt = t0
	}
	if status == StatusRevisionRequested {
		p.RevisionComment = "Cheaper, please."
	}
	return &testBundle{p: p}
}

var allStatuses = []Status{StatusDraft, StatusShared, StatusAccepted, StatusRejected, StatusRevisionRequested}

func TestNewProposal(t *testing.T) {
	t.Parallel()

	t.Run("Valid", func(t *testing.T) {
		t.Parallel()
		in := validCreate()
		in.Name = "  Website redesign \n"
		in.ClientEmail = " jane@example.com "
		in.Requirements = "  A blog.\nA contact form.\n"
		in.Currency = "usd"
		p, err := NewProposal("acc_1", in, t0)
		require.NoError(t, err)
		require.True(t, ValidID(p.ID))
		require.Equal(t, "acc_1", p.AccountID)
		require.Equal(t, "Website redesign", p.Name)
		require.Equal(t, "jane@example.com", p.ClientEmail)
		require.Equal(t, "A blog.\nA contact form.", p.Requirements)
		require.Equal(t, "USD", p.Currency)
		require.Equal(t, StatusDraft, p.Status)
		require.Empty(t, p.ShareToken)
		require.True(t, p.RespondedAt.IsZero())
		require.Equal(t, t0, p.CreatedAt)
		require.Equal(t, t0, p.UpdatedAt)
		require.Equal(t, []LineItem{{"Design", 1, 250000}, {"Hosting", 12, 1050}}, p.LineItems)
		require.Equal(t, "2626.00", p.Total().Format(p.Currency))
	})

	t.Run("UniqueIDs", func(t *testing.T) {
		t.Parallel()
		a, err := NewProposal("acc_1", validCreate(), t0)
		require.NoError(t, err)
		b, err := NewProposal("acc_1", validCreate(), t0)
		require.NoError(t, err)
		require.NotEqual(t, a.ID, b.ID)
	})

	items := func(n int) []LineItemInput {
		out := make([]LineItemInput, n)
		for i := range out {
			out[i] = LineItemInput{Description: "x", Quantity: "1", UnitPrice: "1"}
		}
		return out
	}

	tests := []struct {
		name   string
		modify func(in *ProposalCreate)
		want   map[string]string
	}{
		{"NameMissing", func(in *ProposalCreate) { in.Name = "" }, map[string]string{"name": "is required"}},
		{"NameBlank", func(in *ProposalCreate) { in.Name = " \t " }, map[string]string{"name": "is required"}},
		{"NameTooLong", func(in *ProposalCreate) { in.Name = strings.Repeat("é", NameMaxLen+1) }, map[string]string{"name": "at most 200 characters"}},
		{"NameNewline", func(in *ProposalCreate) { in.Name = "a\nb" }, map[string]string{"name": "single line"}},
		{"NameNUL", func(in *ProposalCreate) { in.Name = "a\x00b" }, map[string]string{"name": "control characters"}},
		{"NameInvalidUTF8", func(in *ProposalCreate) { in.Name = "a\xffb" }, map[string]string{"name": "valid UTF-8"}},
		{"ClientNameMissing", func(in *ProposalCreate) { in.ClientName = "" }, map[string]string{"client_name": "is required"}},
		{"ClientNameTooLong", func(in *ProposalCreate) { in.ClientName = strings.Repeat("a", ClientNameMaxLen+1) }, map[string]string{"client_name": "at most 200"}},
		{"EmailNoAt", func(in *ProposalCreate) { in.ClientEmail = "jane" }, map[string]string{"client_email": "e-mail address"}},
		{"EmailNoDot", func(in *ProposalCreate) { in.ClientEmail = "jane@example" }, map[string]string{"client_email": "e-mail address"}},
		{"EmailDisplayName", func(in *ProposalCreate) { in.ClientEmail = "Jane <jane@example.com>" }, map[string]string{"client_email": "e-mail address"}},
		{"EmailTwoAddresses", func(in *ProposalCreate) { in.ClientEmail = "a@example.com, b@example.com" }, map[string]string{"client_email": "e-mail address"}},
		{"EmailTooLong", func(in *ProposalCreate) { in.ClientEmail = strings.Repeat("a", 250) + "@example.com" }, map[string]string{"client_email": "at most 254"}},
		{"RequirementsTooLong", func(in *ProposalCreate) { in.Requirements = strings.Repeat("a", RequirementsMaxLen+1) }, map[string]string{"requirements": "at most 20000"}},
		{"RequirementsControl", func(in *ProposalCreate) { in.Requirements = "a\x07" }, map[string]string{"requirements": "control characters"}},
		{"CurrencyMissing", func(in *ProposalCreate) { in.Currency = "" }, map[string]string{"currency": "is required"}},
		{"CurrencyUnknown", func(in *ProposalCreate) { in.Currency = "XYZ" }, map[string]string{"currency": "ISO 4217"}},
		{"CurrencyUnknownStillChecksPrices", func(in *ProposalCreate) {
			in.Currency = "XYZ"
			in.LineItems[0].UnitPrice = "-1"
		}, map[string]string{"currency": "ISO 4217", "line_items[0].unit_price": "must not be negative"}},
		{"LineItemsMissing", func(in *ProposalCreate) { in.LineItems = nil }, map[string]string{"line_items": "at least one"}},
		{"LineItemsTooMany", func(in *ProposalCreate) { in.LineItems = items(LineItemsMax + 1) }, map[string]string{"line_items": "at most 100"}},
		{"DescriptionMissing", func(in *ProposalCreate) { in.LineItems[1].Description = " " }, map[string]string{"line_items[1].description": "is required"}},
		{"DescriptionTooLong", func(in *ProposalCreate) { in.LineItems[0].Description = strings.Repeat("a", DescriptionMaxLen+1) }, map[string]string{"line_items[0].description": "at most 500"}},
		{"QuantityMissing", func(in *ProposalCreate) { in.LineItems[0].Quantity = "" }, map[string]string{"line_items[0].quantity": "is required"}},
		{"QuantityZero", func(in *ProposalCreate) { in.LineItems[0].Quantity = "0" }, map[string]string{"line_items[0].quantity": "positive whole number"}},
		{"QuantityFraction", func(in *ProposalCreate) { in.LineItems[1].Quantity = "1.5" }, map[string]string{"line_items[1].quantity": "positive whole number"}},
		{"UnitPriceMissing", func(in *ProposalCreate) { in.LineItems[0].UnitPrice = "" }, map[string]string{"line_items[0].unit_price": "is required"}},
		{"UnitPriceNegative", func(in *ProposalCreate) { in.LineItems[0].UnitPrice = "-5" }, map[string]string{"line_items[0].unit_price": "must not be negative"}},
		{"UnitPriceTooPreciseJPY", func(in *ProposalCreate) { in.Currency = "JPY"; in.LineItems[0].UnitPrice = "0.1" }, map[string]string{
			"line_items[0].unit_price": "has more decimals than JPY allows (0)",
			"line_items[1].unit_price": "has more decimals than JPY allows (0)",
		}},
		{"UnitPriceTooPreciseUSD", func(in *ProposalCreate) { in.LineItems[1].UnitPrice = "1.0001" }, map[string]string{"line_items[1].unit_price": "has more decimals than USD allows (2)"}},
		{"UnitPriceHuge", func(in *ProposalCreate) { in.LineItems[0].UnitPrice = "1e20" }, map[string]string{"line_items[0].unit_price": "is too large"}},
		{"TotalTooLarge", func(in *ProposalCreate) {
			in.LineItems[0] = LineItemInput{Description: "x", Quantity: "1000", UnitPrice: "9999999999999"}
		}, map[string]string{"line_items": "make a total over the largest amount (9999999999999.99 USD)"}},
		{"Everything", func(in *ProposalCreate) { *in = ProposalCreate{} }, map[string]string{
			"name": "is required", "client_name": "is required", "currency": "is required", "line_items": "at least one",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := validCreate()
			in.LineItems = append([]LineItemInput(nil), in.LineItems...)
			tt.modify(&in)
			p, err := NewProposal("acc_1", in, t0)
			require.Nil(t, p)
			requireFields(t, err, tt.want)
		})
	}

	t.Run("ExponentAndKWD", func(t *testing.T) {
		t.Parallel()
		in := validCreate()
		in.Currency = "KWD"
		in.LineItems = []LineItemInput{{Description: "x", Quantity: "2", UnitPrice: "1.005"}, {Description: "y", Quantity: "1e1", UnitPrice: "1e2"}}
		p, err := NewProposal("acc_1", in, t0)
		require.NoError(t, err)
		require.Equal(t, "1002.010", p.Total().Format(p.Currency))
	})

	t.Run("ValidEmails", func(t *testing.T) {
		t.Parallel()
		for _, e := range []string{"jane@example.com", "jane.doe+quotes@mail.example.co.uk", "J_D@sub.example.org"} {
			in := validCreate()
			in.ClientEmail = e
			p, err := NewProposal("acc_1", in, t0)
			require.NoError(t, err, e)
			require.Equal(t, e, p.ClientEmail)
		}
	})
}

func TestProposalApply(t *testing.T) {
	t.Parallel()

	t.Run("ByStatus", func(t *testing.T) {
		t.Parallel()
		for _, status := range allStatuses {
			t.Run(string(status), func(t *testing.T) {
				t.Parallel()
				b := setup(t, status)
				before := *b.p
				changed, err := b.p.Apply(ProposalUpdate{Name: ptr("New name")}, t1)
				if status.Final() {
					requireConflict(t, err, "This proposal was already "+string(status)+" and can no longer be changed.")
					require.False(t, changed)
					require.Equal(t, before, *b.p)
					return
				}
				require.NoError(t, err)
				require.True(t, changed)
				require.Equal(t, "New name", b.p.Name)
				require.Equal(t, status, b.p.Status, "editing keeps the status")
				require.Equal(t, before.ShareToken, b.p.ShareToken, "editing keeps the link")
				require.Equal(t, before.RevisionComment, b.p.RevisionComment)
				require.Equal(t, before.RespondedAt, b.p.RespondedAt)
				require.Equal(t, t1, b.p.UpdatedAt)
				require.Equal(t, t0, b.p.CreatedAt)
			})
		}
	})

	t.Run("ConflictBeforeValidation", func(t *testing.T) {
		t.Parallel()
		b := setup(t, StatusAccepted)
		_, err := b.p.Apply(ProposalUpdate{Name: ptr("")}, t1)
		requireConflict(t, err, "already accepted")
	})

	tests := []struct {
		name    string
		update  ProposalUpdate
		changed bool
		check   func(t *testing.T, p *Proposal)
	}{
		{"Empty", ProposalUpdate{}, false, nil},
		{"SameValues", ProposalUpdate{
			Name:       ptr(" Website redesign "),
			ClientName: ptr("Acme Corp"),
			Currency:   ptr("usd"),
			LineItems: &[]LineItemInput{
				{Description: "Design", Quantity: "1", UnitPrice: "2500.00"},
				{Description: "Hosting", Quantity: "12.0", UnitPrice: "1.05e1"},
			},
		}, false, nil},
		{"ClearEmptyOptional", ProposalUpdate{ClientEmail: ptr(""), Requirements: ptr("")}, false, nil},
		{"ClientName", ProposalUpdate{ClientName: ptr("Globex")}, true, func(t *testing.T, p *Proposal) {
			require.Equal(t, "Globex", p.ClientName)
		}},
		{"EmailAndRequirements", ProposalUpdate{ClientEmail: ptr("a@example.com"), Requirements: ptr("More pages.")}, true, func(t *testing.T, p *Proposal) {
			require.Equal(t, "a@example.com", p.ClientEmail)
			require.Equal(t, "More pages.", p.Requirements)
		}},
		{"LineItems", ProposalUpdate{LineItems: &[]LineItemInput{{Description: "Audit", Quantity: "3", UnitPrice: "0.1"}}}, true, func(t *testing.T, p *Proposal) {
			require.Equal(t, []LineItem{{"Audit", 3, 10}}, p.LineItems)
			require.Equal(t, "0.30", p.Total().Format(p.Currency))
		}},
		{"CurrencySameDecimals", ProposalUpdate{Currency: ptr("EUR")}, true, func(t *testing.T, p *Proposal) {
			require.Equal(t, "EUR", p.Currency)
			require.Equal(t, Money(1050), p.LineItems[1].UnitPrice)
			require.Equal(t, "2626.00", p.Total().Format(p.Currency))
		}},
		{"CurrencyMoreDecimals", ProposalUpdate{Currency: ptr("KWD")}, true, func(t *testing.T, p *Proposal) {
			require.Equal(t, []LineItem{{"Design", 1, 2500000}, {"Hosting", 12, 10500}}, p.LineItems)
			require.Equal(t, "2626.000", p.Total().Format(p.Currency))
		}},
		{"CurrencyAndLineItems", ProposalUpdate{Currency: ptr("JPY"), LineItems: &[]LineItemInput{{Description: "Design", Quantity: "3", UnitPrice: "1500"}}}, true, func(t *testing.T, p *Proposal) {
			require.Equal(t, "JPY", p.Currency)
			require.Equal(t, "4500", p.Total().Format(p.Currency))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, StatusShared)
			before := *b.p
			changed, err := b.p.Apply(tt.update, t1)
			require.NoError(t, err)
			require.Equal(t, tt.changed, changed)
			if !changed {
				require.Equal(t, before, *b.p)
				return
			}
			require.Equal(t, t1, b.p.UpdatedAt)
			require.Equal(t, StatusShared, b.p.Status)
			tt.check(t, b.p)
		})
	}

	t.Run("CurrencyFewerDecimalsWhole", func(t *testing.T) {
		t.Parallel()
		b := setup(t, StatusDraft)
		_, err := b.p.Apply(ProposalUpdate{LineItems: &[]LineItemInput{{Description: "x", Quantity: "1", UnitPrice: "1500"}}}, t1)
		require.NoError(t, err)
		changed, err := b.p.Apply(ProposalUpdate{Currency: ptr("JPY")}, t1)
		require.NoError(t, err)
		require.True(t, changed)
		require.Equal(t, []LineItem{{"x", 1, 1500}}, b.p.LineItems)
		require.Equal(t, "1500", b.p.Total().Format("JPY"))
	})

	invalid := []struct {
		name   string
		setup  func(p *Proposal)
		update ProposalUpdate
		want   map[string]string
	}{
		{"NameEmpty", nil, ProposalUpdate{Name: ptr(" ")}, map[string]string{"name": "is required"}},
		{"ClientNameEmpty", nil, ProposalUpdate{ClientName: ptr("")}, map[string]string{"client_name": "is required"}},
		{"Email", nil, ProposalUpdate{ClientEmail: ptr("nope")}, map[string]string{"client_email": "e-mail address"}},
		{"CurrencyEmpty", nil, ProposalUpdate{Currency: ptr("")}, map[string]string{"currency": "is required"}},
		{"CurrencyUnknown", nil, ProposalUpdate{Currency: ptr("ABC")}, map[string]string{"currency": "ISO 4217"}},
		{"LineItemsEmpty", nil, ProposalUpdate{LineItems: &[]LineItemInput{}}, map[string]string{"line_items": "at least one"}},
		{"LineItemPrice", nil, ProposalUpdate{LineItems: &[]LineItemInput{{Description: "x", Quantity: "1", UnitPrice: "0.001"}}},
			map[string]string{"line_items[0].unit_price": "has more decimals than USD allows (2)"}},
		{"NewLineItemsCheckedInNewCurrency", nil, ProposalUpdate{Currency: ptr("JPY"), LineItems: &[]LineItemInput{{Description: "x", Quantity: "1", UnitPrice: "0.1"}}},
			map[string]string{"line_items[0].unit_price": "has more decimals than JPY allows (0)"}},
		{"CurrencyFewerDecimals", nil, ProposalUpdate{Currency: ptr("JPY")},
			map[string]string{"currency": "JPY allows 0 decimals but line_items[1].unit_price is 10.50; send line_items along with the new currency"}},
		{"CurrencyMakesPriceTooLarge", func(p *Proposal) { p.Currency, p.LineItems = "JPY", []LineItem{{"x", 1, MaxAmount}} }, ProposalUpdate{Currency: ptr("USD")},
			map[string]string{"currency": "makes line_items[0].unit_price too large"}},
		{"CurrencyMakesTotalTooLarge", func(p *Proposal) {
			p.Currency, p.LineItems = "JPY", []LineItem{{"x", 1, MaxAmount / 100}, {"y", 1, MaxAmount / 100}}
		}, ProposalUpdate{Currency: ptr("USD")}, map[string]string{"currency": "makes the total too large"}},
		{"Several", nil, ProposalUpdate{Name: ptr(""), ClientEmail: ptr("x"), LineItems: &[]LineItemInput{{Quantity: "-1", UnitPrice: "x"}}},
			map[string]string{"name": "is required", "client_email": "e-mail", "line_items[0].description": "is required",
				"line_items[0].quantity": "positive whole number", "line_items[0].unit_price": "must be a number"}},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, StatusShared)
			if tt.setup != nil {
				tt.setup(b.p)
			}
			before := *b.p
			// Valid fields alongside must not be applied either.
			tt.update.Requirements = ptr("changed")
			changed, err := b.p.Apply(tt.update, t1)
			requireFields(t, err, tt.want)
			require.False(t, changed)
			require.Equal(t, before, *b.p)
		})
	}
}

func TestProposalShare(t *testing.T) {
	t.Parallel()

	tests := []struct {
		from     Status
		event    string
		conflict string
	}{
		{StatusDraft, webhook.ProposalShared, ""},
		{StatusShared, "", ""},
		{StatusRevisionRequested, webhook.ProposalShared, ""},
		{StatusAccepted, "", "This proposal was already accepted; it cannot be shared again."},
		{StatusRejected, "", "This proposal was already rejected; it cannot be shared again."},
	}
	for _, tt := range tests {
		t.Run(string(tt.from), func(t *testing.T) {
			t.Parallel()
			b := setup(t, tt.from)
			before := *b.p
			event, err := b.p.Share("newtoken000000000000000000000000", t1)
			if tt.conflict != "" {
				requireConflict(t, err, tt.conflict)
				require.Equal(t, before, *b.p)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.event, event)
			require.Equal(t, StatusShared, b.p.Status)
			if tt.event == "" {
				require.Equal(t, before, *b.p, "sharing a shared proposal changes nothing")
				return
			}
			require.Equal(t, t1, b.p.UpdatedAt)
			require.True(t, b.p.RespondedAt.IsZero())
			require.Empty(t, b.p.RevisionComment)
			if before.ShareToken == "" {
				require.Equal(t, "newtoken000000000000000000000000", b.p.ShareToken)
			} else {
				require.Equal(t, before.ShareToken, b.p.ShareToken, "sharing again keeps the link")
			}
		})
	}

	t.Run("GeneratesToken", func(t *testing.T) {
		t.Parallel()
		b := setup(t, StatusDraft)
		event, err := b.p.Share("", t1)
		require.NoError(t, err)
		require.Equal(t, webhook.ProposalShared, event)
		require.True(t, ValidShareToken(b.p.ShareToken))
		require.Equal(t, "https://q.example/p/"+b.p.ShareToken, b.p.ShareURL("https://q.example/"))
	})

	t.Run("FullCycle", func(t *testing.T) {
		t.Parallel()
		b := setup(t, StatusDraft)
		_, err := b.p.Share("", t0)
		require.NoError(t, err)
		link := b.p.ShareURL("https://q.example")
		event, err := b.p.Answer(RequestChanges, "Cheaper?", t1)
		require.NoError(t, err)
		require.Equal(t, webhook.ProposalRevisionRequested, event)
		changed, err := b.p.Apply(ProposalUpdate{LineItems: &[]LineItemInput{{Description: "x", Quantity: "1", UnitPrice: "100"}}}, t1)
		require.NoError(t, err)
		require.True(t, changed)
		require.Equal(t, StatusRevisionRequested, b.p.Status)
		require.Equal(t, "Cheaper?", b.p.RevisionComment)
		event, err = b.p.Share("", t1)
		require.NoError(t, err)
		require.Equal(t, webhook.ProposalShared, event)
		require.Equal(t, link, b.p.ShareURL("https://q.example"))
		event, err = b.p.Answer(Accept, "", t1)
		require.NoError(t, err)
		require.Equal(t, webhook.ProposalAccepted, event)
	})
}

func TestProposalAnswer(t *testing.T) {
	t.Parallel()

	answers := []struct {
		answer Answer
		status Status
		event  string
	}{
		{Accept, StatusAccepted, webhook.ProposalAccepted},
		{Reject, StatusRejected, webhook.ProposalRejected},
		{RequestChanges, StatusRevisionRequested, webhook.ProposalRevisionRequested},
	}
	conflicts := map[Status]string{
		StatusDraft:             "This proposal has not been shared yet.",
		StatusAccepted:          "This proposal was already accepted.",
		StatusRejected:          "This proposal was already rejected.",
		StatusRevisionRequested: "Changes were requested; the team must share it again before it can be answered.",
	}
	for _, from := range allStatuses {
		for _, a := range answers {
			t.Run(string(from)+"_"+string(a.answer), func(t *testing.T) {
				t.Parallel()
				b := setup(t, from)
				before := *b.p
				event, err := b.p.Answer(a.answer, "  Split it in two phases.  ", t1)
				if msg, ok := conflicts[from]; ok {
					requireConflict(t, err, msg)
					require.Equal(t, msg, err.Error())
					require.Empty(t, event)
					require.Equal(t, before, *b.p)
					return
				}
				require.NoError(t, err)
				require.Equal(t, a.event, event)
				require.Equal(t, a.status, b.p.Status)
				require.Equal(t, t1, b.p.RespondedAt)
				require.Equal(t, t1, b.p.UpdatedAt)
				require.Equal(t, before.ShareToken, b.p.ShareToken)
				if a.answer == RequestChanges {
					require.Equal(t, "Split it in two phases.", b.p.RevisionComment)
				} else {
					require.Empty(t, b.p.RevisionComment, "a comment goes only with a request for changes")
				}
			})
		}
	}

	t.Run("RequestChangesWithoutComment", func(t *testing.T) {
		t.Parallel()
		b := setup(t, StatusShared)
		_, err := b.p.Answer(RequestChanges, "", t1)
		require.NoError(t, err)
		require.Empty(t, b.p.RevisionComment)
		require.Nil(t, b.p.EventData("").(ProposalData).RevisionComment)
	})

	t.Run("CommentTooLong", func(t *testing.T) {
		t.Parallel()
		b := setup(t, StatusShared)
		before := *b.p
		_, err := b.p.Answer(RequestChanges, strings.Repeat("a", RevisionCommentMaxLen+1), t1)
		requireFields(t, err, map[string]string{"comment": "at most 2000"})
		require.Equal(t, before, *b.p)
	})

	t.Run("CommentMultiLine", func(t *testing.T) {
		t.Parallel()
		b := setup(t, StatusShared)
		_, err := b.p.Answer(RequestChanges, "One.\r\nTwo.", t1)
		require.NoError(t, err)
		require.Equal(t, "One.\r\nTwo.", b.p.RevisionComment)
	})

	t.Run("UnknownAnswer", func(t *testing.T) {
		t.Parallel()
		b := setup(t, StatusAccepted)
		_, err := b.p.Answer("maybe", "", t1)
		requireFields(t, err, map[string]string{"answer": "accept, reject or request_changes"})
	})
}

func TestProposalEventData(t *testing.T) {
	t.Parallel()

	t.Run("Draft", func(t *testing.T) {
		t.Parallel()
		b := setup(t, StatusDraft)
		b.p.ID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
		body, err := json.Marshal(b.p.EventData("https://q.example"))
		require.NoError(t, err)
		require.Equal(t, `{"proposal_id":"7c9e6679-7425-40de-944b-e07fc1f90ae7","name":"Website redesign","status":"draft",`+
			`"client_name":"Acme Corp","total":2626.00,"currency":"USD","share_url":null,"responded_at":null,"revision_comment":null}`, string(body))
	})

	t.Run("RevisionRequested", func(t *testing.T) {
		t.Parallel()
		b := setup(t, StatusShared)
		b.p.ID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
		_, err := b.p.Answer(RequestChanges, "Cheaper?", time.Date(2026, 4, 3, 16, 30, 0, 0, time.FixedZone("CEST", 2*3600)))
		require.NoError(t, err)
		body, err := json.Marshal(b.p.EventData("https://q.example/"))
		require.NoError(t, err)
		require.Equal(t, `{"proposal_id":"7c9e6679-7425-40de-944b-e07fc1f90ae7","name":"Website redesign","status":"revision_requested",`+
			`"client_name":"Acme Corp","total":2626.00,"currency":"USD","share_url":"https://q.example/p/tok0000000000000000000000000000a",`+
			`"responded_at":"2026-04-03T14:30:00Z","revision_comment":"Cheaper?"}`, string(body))
	})

	t.Run("KWDTotal", func(t *testing.T) {
		t.Parallel()
		b := setup(t, StatusDraft)
		_, err := b.p.Apply(ProposalUpdate{Currency: ptr("KWD"), LineItems: &[]LineItemInput{{Description: "x", Quantity: "1", UnitPrice: "0.3"}}}, t1)
		require.NoError(t, err)
		body, err := json.Marshal(b.p.EventData(""))
		require.NoError(t, err)
		require.Contains(t, string(body), `"total":0.300,"currency":"KWD"`)
	})

	t.Run("Sample", func(t *testing.T) {
		t.Parallel()
		body, err := json.Marshal(SampleProposalData("https://q.example", t0))
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, json.Unmarshal(body, &m))
		require.Len(t, m, 9)
		for _, k := range []string{"proposal_id", "name", "status", "client_name", "total", "currency", "share_url", "responded_at", "revision_comment"} {
			require.NotNil(t, m[k], k)
		}
		require.Equal(t, `{"proposal_id":"00000000-0000-4000-8000-000000000000","name":"Website redesign","status":"revision_requested",`+
			`"client_name":"Acme Corp","total":6606.00,"currency":"USD","share_url":"https://q.example/p/SampleShareTokenOfTheTestEvent00",`+
			`"responded_at":"2026-04-03T14:30:00Z","revision_comment":"Could you split the design work into two phases?"}`, string(body))
		require.True(t, ValidID(SampleProposalID))
		require.True(t, ValidShareToken(SampleShareToken))
	})
}
