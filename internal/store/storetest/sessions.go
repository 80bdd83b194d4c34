package storetest

import (
	"testing"

	"github.com/quikly/webhooks/internal/store"
)

// runSessions checks the web UI session queries.
func runSessions(t *testing.T, open func(t *testing.T) store.Store) {}
