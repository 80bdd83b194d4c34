package e2e_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/testenv"
)

// TestProposalNullClearsOptionalFields: a client may send back the nulls it read.
func TestProposalNullClearsOptionalFields(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{})
	p := srcCall(t, e, e.Key, "POST", "/proposals", srcProposalBody(), http.StatusCreated)
	require.NotNil(t, p["client_email"])
	cleared := srcCall(t, e, e.Key, "PUT", "/proposals/"+p["id"].(string),
		map[string]any{"client_email": nil, "requirements": nil}, http.StatusOK)
	require.Nil(t, cleared["client_email"])
	require.Nil(t, cleared["requirements"])
	res := e.Do(e.Key, "PUT", "/proposals/"+p["id"].(string), map[string]any{"name": nil})
	require.Contains(t, errorOf(t, res, 422, "validation_failed"), "name", "null is not a way to clear a required field")
}
