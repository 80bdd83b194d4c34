package render_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/render"
	"github.com/quikly/webhooks/internal/render/chatcheck"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.golden from the current output")

// TestGolden renders every event × data variant × format and compares the body with
// testdata/golden/<event>.<variant>.<format>.golden (indented for reading; json.Indent changes only
// white space between tokens). Run with -update after a deliberate change and review the diff.
func TestGolden(t *testing.T) {
	t.Parallel()
	for _, event := range events() {
		for _, variant := range variants {
			for _, f := range render.Formats() {
				name := event + "." + variant + "." + string(f)
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					body, err := render.Body(f, render.Event{Type: event, Timestamp: at, WebhookID: "wh_2mZ9fQkT3xYcLp8R",
						Data: variantData(event, variant)})
					require.NoError(t, err)
					switch f {
					case render.Slack:
						require.NoError(t, chatcheck.Slack(body))
					case render.Discord:
						require.NoError(t, chatcheck.Discord(body))
					}
					var pretty bytes.Buffer
					require.NoError(t, json.Indent(&pretty, body, "", "  "))
					pretty.WriteByte('\n')
					path := filepath.Join("testdata", "golden", name+".golden")
					if *update {
						require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
						require.NoError(t, os.WriteFile(path, pretty.Bytes(), 0o644))
						return
					}
					want, err := os.ReadFile(path)
					require.NoError(t, err, "run go test ./internal/render -run TestGolden -update to create it")
					require.Equal(t, string(want), pretty.String())
				})
			}
		}
	}
}
