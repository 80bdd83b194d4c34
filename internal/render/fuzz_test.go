package render_test

import (
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/quikly/webhooks/internal/render"
)

// FuzzRender renders arbitrary values (names, client, a long text, a link; bytes kept raw in the
// JSON, invalid UTF-8 included) for an event picked by the first input, in every format, and
// checks that each body is valid JSON and that chat bodies keep Slack's and Discord's rules and
// limits. Seeds: testdata/fuzz/FuzzRender. Run: go test ./internal/render -fuzz FuzzRender.
func FuzzRender(f *testing.F) {
	f.Add(uint8(3), "Website redesign", "Acme Corp", "Could you split it?", "https://app.quikly.example/p/tok")
	f.Add(uint8(0), "<!channel> *bold*", "@everyone <@123>", "> quote\n# h", "javascript:alert(1)")
	evs := events()
	f.Fuzz(func(t *testing.T, pick uint8, name, client, long, url string) {
		event := evs[int(pick)%len(evs)]
		data := hostileData(name, client, long, url)
		for _, format := range render.Formats() {
			body, err := render.Body(format, render.Event{Type: event, Timestamp: at, WebhookID: "wh_1", Data: data})
			if err != nil {
				t.Fatalf("%s %s: %v", event, format, err)
			}
			if !json.Valid(body) {
				t.Fatalf("%s %s: not valid JSON: %q", event, format, body)
			}
			if format == render.JSON {
				continue
			}
			if !utf8.Valid(body) {
				t.Fatalf("%s %s: not valid UTF-8", event, format)
			}
			requireChatValid(t, format, body)
			for _, s := range chatTexts(t, format, body, url) {
				requireEscaped(t, format, s)
			}
		}
	})
}
