// Package ui serves the web pages: the console (Settings → Webhooks, logs) and the client's share
// pages. Templates and static files are embedded.
package ui

import (
	"log/slog"
	"net/http"

	"github.com/quikly/webhooks/internal/app"
)

// NewSharePages returns the handler of the client's share pages under /p/.
func NewSharePages(a *app.App, log *slog.Logger) http.Handler { return http.NotFoundHandler() }
