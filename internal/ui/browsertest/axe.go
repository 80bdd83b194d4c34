package browsertest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// axe-core checks the pages for accessibility problems. It comes from npm, pinned to one version
// and checked against the registry's published integrity, so every run tests against the same rules.
// The package is fetched once with `npm pack` into AxeCacheEnv's directory (default: the user cache
// directory), never committed. A test that checks a page fails when axe cannot be had: a missing
// checker must not pass as "no violations".
const (
	AxeVersion = "4.14.1"
	// axeIntegrity is `npm view axe-core@4.14.1 dist.integrity`: the SHA-512 of the package tarball.
	axeIntegrity = "sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ=="
	// AxeCacheEnv names the directory the axe-core tarball is kept in between runs.
	AxeCacheEnv = "QUIKLY_AXE_CACHE"
)

var axeSource = sync.OnceValues(loadAxe)

// loadAxe returns axe.min.js of the pinned axe-core, from the cache or, the first time, from npm.
func loadAxe() (string, error) {
	dir := os.Getenv(AxeCacheEnv)
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("axe-core: no cache directory (set %s): %w", AxeCacheEnv, err)
		}
		dir = filepath.Join(cache, "quikly-test")
	}
	tgz := filepath.Join(dir, "axe-core-"+AxeVersion+".tgz")
	data, err := os.ReadFile(tgz)
	if err != nil || checkIntegrity(data) != nil {
		if data, err = fetchAxe(dir); err != nil {
			return "", err
		}
	}
	return axeFromTarball(data)
}

// fetchAxe runs `npm pack axe-core@AxeVersion` into dir and returns the tarball once its integrity
// is checked. It packs into a temporary directory first and renames, so packages testing at the same
// time never read half a file.
func fetchAxe(dir string) ([]byte, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("axe-core: %w", err)
	}
	tmp, err := os.MkdirTemp(dir, "pack-")
	if err != nil {
		return nil, fmt.Errorf("axe-core: %w", err)
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command("npm", "pack", "--silent", "axe-core@"+AxeVersion, "--pack-destination", tmp)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("axe-core: npm pack axe-core@%s (npm is needed for the accessibility checks): %w: %s",
			AxeVersion, err, strings.TrimSpace(stderr.String()))
	}
	name := "axe-core-" + AxeVersion + ".tgz"
	data, err := os.ReadFile(filepath.Join(tmp, name))
	if err != nil {
		return nil, fmt.Errorf("axe-core: %w", err)
	}
	if err := checkIntegrity(data); err != nil {
		return nil, err
	}
	if err := os.Rename(filepath.Join(tmp, name), filepath.Join(dir, name)); err != nil {
		return nil, fmt.Errorf("axe-core: %w", err)
	}
	return data, nil
}

func checkIntegrity(data []byte) error {
	sum := sha512.Sum512(data)
	if got := "sha512-" + base64.StdEncoding.EncodeToString(sum[:]); got != axeIntegrity {
		return fmt.Errorf("axe-core %s: tarball integrity %s, want %s", AxeVersion, got, axeIntegrity)
	}
	return nil
}

// axeFromTarball returns package/axe.min.js of an npm tarball.
func axeFromTarball(data []byte) (string, error) {
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return "", fmt.Errorf("axe-core: %w", err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return "", errors.New("axe-core: no package/axe.min.js in the tarball")
		}
		if err != nil {
			return "", fmt.Errorf("axe-core: %w", err)
		}
		if h.Name == "package/axe.min.js" {
			src, err := io.ReadAll(tr)
			if err != nil {
				return "", fmt.Errorf("axe-core: %w", err)
			}
			return string(src), nil
		}
	}
}

// AxeViolation is one rule a page breaks, with the elements that break it.
type AxeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target         []any  `json:"target"`
		FailureSummary string `json:"failureSummary"`
	} `json:"nodes"`
}

func (v AxeViolation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s): %s", v.ID, v.Impact, v.Help)
	for _, n := range v.Nodes {
		fmt.Fprintf(&b, "\n    %v: %s", n.Target, strings.ReplaceAll(n.FailureSummary, "\n", " "))
	}
	return b.String()
}

// Axe runs axe-core on the page as it is now (every rule axe enables by default, which include WCAG
// 2.x A and AA) and returns every violation.
func (b *Browser) Axe() []AxeViolation {
	b.T.Helper()
	src, err := axeSource()
	require.NoError(b.T, err, "the accessibility check needs axe-core")
	// DevTools evaluation is not subject to the page's Content-Security-Policy, so axe runs on the
	// pages exactly as served.
	_, err = chromedp.Run(b.Ctx, chromedp.Evaluate[any](src+"\n;undefined"))
	require.NoError(b.T, err, "inject axe-core")
	raw, err := chromedp.Run(b.Ctx, chromedp.Evaluate[string](
		`axe.run(document, {resultTypes: ["violations"]}).then(r => JSON.stringify(r.violations))`,
		chromedp.EvalAwaitPromise))
	require.NoError(b.T, err, "run axe-core")
	var out []AxeViolation
	require.NoError(b.T, json.Unmarshal([]byte(raw), &out))
	return out
}

// CheckA11y fails the test when the page has a serious or critical axe-core violation (SPEC: none on
// any page). name says which page, in the failure message.
func (b *Browser) CheckA11y(name string) {
	b.T.Helper()
	var bad []string
	for _, v := range b.Axe() {
		if v.Impact == "serious" || v.Impact == "critical" {
			bad = append(bad, v.String())
		}
	}
	if len(bad) > 0 {
		b.T.Errorf("accessibility: page %q (%s) has %d serious or critical axe-core %s violation(s):\n  %s",
			name, b.URL().Path, len(bad), AxeVersion, strings.Join(bad, "\n  "))
	}
}
