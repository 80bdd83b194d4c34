package errs_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/errs"
)

// TestHTTPStatus pins the one code → status table (SPEC §3) that the API, the console and the share
// page all answer with.
func TestHTTPStatus(t *testing.T) {
	for code, want := range map[errs.Code]int{
		errs.InvalidJSON:        http.StatusBadRequest,
		errs.Invalid:            http.StatusUnprocessableEntity,
		errs.Unauthorized:       http.StatusUnauthorized,
		errs.NotFound:           http.StatusNotFound,
		errs.MethodNotAllowed:   http.StatusMethodNotAllowed,
		errs.Conflict:           http.StatusConflict,
		errs.TooLarge:           http.StatusRequestEntityTooLarge,
		errs.UnsupportedMedia:   http.StatusUnsupportedMediaType,
		errs.RateLimited:        http.StatusTooManyRequests,
		errs.Internal:           http.StatusInternalServerError,
		errs.Code("unheard_of"): http.StatusInternalServerError,
	} {
		require.Equal(t, want, errs.Status(code), code)
		require.Equal(t, want, errs.HTTPStatus(fmt.Errorf("wrapped: %w", errs.Errorf(code, "x"))), code)
	}
	require.Equal(t, http.StatusInternalServerError, errs.HTTPStatus(errors.New("no code")))
	require.Equal(t, http.StatusNotFound, errs.HTTPStatus(errs.ErrNotFound))
}
