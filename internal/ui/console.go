package ui

import (
	"log/slog"
	"net/http"

	"github.com/quikly/webhooks/internal/app"
)

// NewConsole returns the handler of the web console at /.
func NewConsole(a *app.App, log *slog.Logger) http.Handler { return http.NotFoundHandler() }
