package api

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// redoclyCLI is the independent tool that must load the document with no errors (SPEC §14), pinned.
const redoclyCLI = "@redocly/cli@2.77.0"

// TestOpenAPIRedoclyLint lints the served document with Redocly's CLI (its recommended rules): any
// error fails; warnings are printed. npx installs the pinned CLI from the npm registry on first use
// and from its cache after that. Skipped when npx is not installed.
func TestOpenAPIRedoclyLint(t *testing.T) {
	npx, err := exec.LookPath("npx")
	if err != nil {
		t.Skipf("npx is not installed: %v", err)
	}
	dir := t.TempDir()
	doc := filepath.Join(dir, "openapi.json")
	require.NoError(t, os.WriteFile(doc, OpenAPI(), 0o600))
	cmd := exec.CommandContext(t.Context(), npx, "--yes", redoclyCLI, "lint", "--format=stylish", doc)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true")
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	require.NoError(t, err, "redocly lint found errors:\n%s", out)
}
