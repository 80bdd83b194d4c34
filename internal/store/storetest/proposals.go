package storetest

import (
	"testing"

	"github.com/quikly/webhooks/internal/store"
)

// runProposals checks the proposal and lead session queries.
func runProposals(t *testing.T, open func(t *testing.T) store.Store) {}
