package browsertest_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/ui/browsertest"
)

// TestAxeFindsViolations proves the accessibility check can fail: axe-core, loaded as the browser
// tests load it, reports the low contrast and the unlabelled field of a deliberately bad page, and
// nothing on a good one.
func TestAxeFindsViolations(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if r.URL.Path == "/bad" {
			w.Write([]byte(`<!doctype html><html lang="en"><head><title>Bad</title></head><body><main>
<p id="faint" style="color:#bbb;background:#fff">Hard to read</p><input type="text" id="nameless"></main></body></html>`))
			return
		}
		w.Write([]byte(`<!doctype html><html lang="en"><head><title>Good</title></head><body><main>
<h1>Readable</h1><label for="name">Name</label> <input type="text" id="name"></main></body></html>`))
	}))
	t.Cleanup(srv.Close)
	b := browsertest.New(t, srv.URL)

	b.Open("/bad", "#faint")
	var ids []string
	for _, v := range b.Axe() {
		ids = append(ids, v.ID+"/"+v.Impact)
	}
	require.True(t, slices.Contains(ids, "color-contrast/serious"), ids)
	require.True(t, slices.Contains(ids, "label/critical"), ids)

	b.Open("/good", "#name")
	require.Empty(t, b.Axe())
}
