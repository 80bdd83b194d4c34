// Package browsertest drives a real headless Chromium (via chromedp) for the browser tests of the
// console and the share page, and checks pages with axe-core. It is for tests only.
package browsertest

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// Chromium is Debian's chromium, which .ci/install-chromium.sh installs.
const Chromium = "/usr/bin/chromium"

// ScreenshotsEnv names the directory the browser tests write screenshots to, when set.
const ScreenshotsEnv = "QUIKLY_SCREENSHOTS"

// Browser drives one headless Chromium tab for one test.
type Browser struct {
	T    *testing.T
	Ctx  context.Context
	Base string
	dir  string // screenshots; "" writes none
}

// New starts a fresh Chromium (own profile, loopback only) for the test, on pages under base.
// Without chromium it skips locally, but fails in CI so a missing browser cannot pass as green.
func New(t *testing.T, base string) *Browser {
	t.Helper()
	if _, err := os.Stat(Chromium); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("browser tests need %s (run .ci/install-chromium.sh): %v", Chromium, err)
		}
		t.Skipf("skipping browser test: %s is missing; run `bash .ci/install-chromium.sh` to install it", Chromium)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(Chromium),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox, // the tests run as root in CI containers
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 800),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-quic", true),
		// Only loopback is reachable: no proxy, and every host name but localhost fails to resolve.
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	// The first Do starts the browser and binds it to ctx, so it runs without the test's deadline.
	require.NoError(t, chromedp.Do(ctx))
	// A hang guard, not a timing assertion: every wait below is on a selector or a condition.
	tctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancel)
	b := &Browser{T: t, Ctx: tctx, Base: base, dir: os.Getenv(ScreenshotsEnv)}
	b.Do(chromedp.EmulateViewport(1280, 800))
	if b.dir != "" {
		require.NoError(t, os.MkdirAll(b.dir, 0o755))
	}
	return b
}

// Do runs steps in the tab and fails the test on an error.
func (b *Browser) Do(steps ...chromedp.Action[chromedp.Void]) {
	b.T.Helper()
	require.NoError(b.T, chromedp.Do(b.Ctx, steps...))
}

// Open navigates to path and waits for sel.
func (b *Browser) Open(path, sel string) {
	b.T.Helper()
	b.Do(chromedp.Navigate(b.Base+path), chromedp.WaitVisible(chromedp.CSS(sel)))
}

// Reload reloads the page, as the browser's reload button does (a GET of the current URL; never a
// form re-submission, which needs a confirmation the tab cannot give), and waits for sel.
func (b *Browser) Reload(sel string) {
	b.T.Helper()
	b.Do(chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(sel)))
}

// Click clicks sel and waits for next, a selector found only once the click has taken effect.
func (b *Browser) Click(sel, next string) {
	b.T.Helper()
	b.Do(chromedp.Click(chromedp.CSS(sel)), chromedp.WaitVisible(chromedp.CSS(next)))
}

// Text returns the text of sel.
func (b *Browser) Text(sel string) string {
	b.T.Helper()
	s, err := chromedp.Run(b.Ctx, chromedp.Text(chromedp.CSS(sel)))
	require.NoError(b.T, err)
	return s
}

// Value returns the value of the input sel.
func (b *Browser) Value(sel string) string {
	b.T.Helper()
	s, err := chromedp.Run(b.Ctx, chromedp.Value(chromedp.CSS(sel)))
	require.NoError(b.T, err)
	return s
}

// Attr returns attribute name of sel.
func (b *Browser) Attr(sel, name string) string {
	b.T.Helper()
	res, err := chromedp.Run(b.Ctx, chromedp.AttributeValue(chromedp.CSS(sel), name))
	require.NoError(b.T, err)
	return res.Value
}

// Count returns how many elements match sel.
func (b *Browser) Count(sel string) int {
	b.T.Helper()
	n, err := chromedp.Run(b.Ctx, chromedp.Evaluate[int](`document.querySelectorAll(`+JSString(sel)+`).length`))
	require.NoError(b.T, err)
	return n
}

// Path returns the path of the current URL.
func (b *Browser) Path() string {
	return b.URL().Path
}

// URL returns the current URL.
func (b *Browser) URL() *url.URL {
	b.T.Helper()
	loc, err := chromedp.Run(b.Ctx, chromedp.Location())
	require.NoError(b.T, err)
	u, err := url.Parse(loc)
	require.NoError(b.T, err)
	return u
}

// JSString quotes s as a JavaScript string literal.
func JSString(s string) string {
	data, _ := json.Marshal(s)
	return string(data)
}

// Shot writes name-desktop.png (1280×800) and name-phone.png (390×844, 2× pixels) of the whole page
// when QUIKLY_SCREENSHOTS is set, then goes back to the desktop viewport.
func (b *Browser) Shot(name string) {
	b.T.Helper()
	if b.dir == "" {
		return
	}
	for _, vp := range []struct {
		suffix string
		opts   []chromedp.EmulateViewportOption
		w, h   int64
	}{
		{"desktop", nil, 1280, 800},
		{"phone", []chromedp.EmulateViewportOption{chromedp.EmulateScale(2), chromedp.EmulateMobile}, 390, 844},
	} {
		b.Do(chromedp.EmulateViewport(vp.w, vp.h, vp.opts...))
		png, err := chromedp.Run(b.Ctx, chromedp.FullScreenshot(100))
		require.NoError(b.T, err)
		require.NoError(b.T, os.WriteFile(filepath.Join(b.dir, name+"-"+vp.suffix+".png"), png, 0o644))
	}
	b.Do(chromedp.EmulateViewport(1280, 800))
}
