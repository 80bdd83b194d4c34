package webhook

// The event types of the catalogue, and TestEvent, which only the test operation sends.
const (
	ProposalCreated           = "proposal.created"
	ProposalUpdated           = "proposal.updated"
	ProposalShared            = "proposal.shared"
	ProposalAccepted          = "proposal.accepted"
	ProposalRejected          = "proposal.rejected"
	ProposalRevisionRequested = "proposal.revision_requested"
	LeadSessionCreated        = "lead_session.created"
	LeadSessionUpdated        = "lead_session.updated"
	WebhookDisabled           = "webhook.disabled"
	TestEvent                 = "test"
)

// CatalogueEntry describes an event a webhook can subscribe to.
type CatalogueEntry struct {
	Event       string
	Description string
}

// Catalogue lists the subscribable events in a stable order.
var Catalogue = []CatalogueEntry{
	{ProposalCreated, "A proposal was created (as a draft)."},
	{ProposalUpdated, "A proposal's requirements, settings or pricing changed."},
	{ProposalShared, "A proposal was shared with its client; share_url is set."},
	{ProposalAccepted, "The client accepted a proposal."},
	{ProposalRejected, "The client rejected a proposal."},
	{ProposalRevisionRequested, "The client asked for changes to a proposal; revision_comment holds their comment."},
	{LeadSessionCreated, "A lead session started (widget, Telegram or API)."},
	{LeadSessionUpdated, "A lead session's status changed."},
	{WebhookDisabled, "Another webhook of the account was disabled automatically because its endpoint kept failing; its deliveries are held until it is resumed. Never sent to the disabled webhook itself."},
}

// InCatalogue reports whether event is a subscribable event type.
func InCatalogue(event string) bool {
	for _, e := range Catalogue {
		if e.Event == event {
			return true
		}
	}
	return false
}
