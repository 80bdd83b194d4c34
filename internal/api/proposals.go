package api

// proposalRoutes registers the proposal and lead session routes.
func (h *Handler) proposalRoutes() {}
