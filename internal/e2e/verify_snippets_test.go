package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/testenv"
)

// standardWebhooksNPM is the npm package the README's Node snippet uses, pinned.
const standardWebhooksNPM = "standardwebhooks@1.1.1"

// readmeSnippets returns the fenced code blocks of README.md that follow a `<!-- snippet: NAME -->`
// marker, by name, exactly as written.
func readmeSnippets(t *testing.T) map[string]string {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	re := regexp.MustCompile("(?s)<!-- snippet: ([a-z-]+) -->\n```[a-z]*\n(.*?)```\n")
	out := map[string]string{}
	for _, m := range re.FindAllStringSubmatch(string(readme), -1) {
		out[m[1]] = m[2]
	}
	return out
}

// snippetCase is one delivery a snippet is asked about: as received, or with another secret, or
// tampered with; Quikly and Standard say which of the two signatures should verify.
type snippetCase struct {
	Name     string            `json:"-"`
	Body     []byte            `json:"body"`
	Headers  map[string]string `json:"headers"`
	Secret   string            `json:"secret"`
	Quikly   bool              `json:"-"`
	Standard bool              `json:"-"`
}

func caseOf(name string, got testenv.Received, secret string, quikly, standard bool) snippetCase {
	h := map[string]string{}
	for k := range got.Header {
		h[strings.ToLower(k)] = got.Header.Get(k) // as Node and most frameworks present them
	}
	return snippetCase{Name: name, Body: got.Body, Headers: h, Secret: secret, Quikly: quikly, Standard: standard}
}

// TestReadmeVerifySnippets runs the README's "Verify a delivery" snippets, as written, on real
// deliveries of a real service: one signed with the first secret, one sent after the secret was
// regenerated (X-Quikly-Signature with the new secret only, webhook-signature with both), a wrong
// secret and a tampered body. The deliveries are also checked against the OpenAPI document.
func TestReadmeVerifySnippets(t *testing.T) {
	snippets := readmeSnippets(t)
	for _, name := range []string{"python", "python-standard", "node", "go"} {
		require.NotEmpty(t, snippets[name], "README.md has no snippet %q", name)
	}

	e := testenv.Start(t, testenv.Options{})
	rcv := testenv.NewReceiver(t)
	wh := e.Do(e.Key, "POST", "/webhooks", map[string]any{"name": "Snippets", "url": rcv.URL, "events": []string{"proposal.created"}})
	require.Equal(t, 201, wh.Status, "%s", wh.Body)
	id, secret1 := wh.JSON(t)["id"].(string), wh.JSON(t)["secret"].(string)
	res := e.Do(e.Key, "POST", "/proposals", map[string]any{"name": "Website — «redesign»", "client_name": "Zoë",
		"currency": "EUR", "line_items": []map[string]any{{"description": "Design", "quantity": 2, "unit_price": 10.5}}})
	require.Equal(t, 201, res.Status, "%s", res.Body)
	first := rcv.Next(t)
	e.CheckDelivery("proposal.created", first)

	res = e.Do(e.Key, "POST", "/webhooks/"+id+"/regenerate-secret", nil)
	require.Equal(t, 200, res.Status, "%s", res.Body)
	secret2 := res.JSON(t)["secret"].(string)
	res = e.Do(e.Key, "POST", "/webhooks/"+id+"/test", nil)
	require.Equal(t, 200, res.Status, "%s", res.Body)
	rotated := rcv.Next(t)
	e.CheckDelivery("test", rotated)
	require.Len(t, strings.Fields(rotated.Header.Get("webhook-signature")), 2, "signed with both secrets during the overlap")

	tampered := first
	tampered.Body = []byte(strings.Replace(string(first.Body), "Zo", "Jo", 1))
	require.NotEqual(t, first.Body, tampered.Body)
	cases := []snippetCase{
		caseOf("AsReceived", first, secret1, true, true),
		caseOf("AfterRotation", rotated, secret2, true, true),
		caseOf("AfterRotationOldSecret", rotated, secret1, false, true),
		caseOf("WrongSecret", first, secret2, false, false),
		caseOf("Tampered", tampered, secret1, false, false),
	}
	dir := t.TempDir()
	for i := range cases {
		data, err := json.Marshal(cases[i])
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, cases[i].Name+".json"), data, 0o600))
	}

	// run runs a prepared program on each case and compares its one line of output.
	run := func(t *testing.T, want func(c snippetCase) string, name string, args ...string) {
		for _, c := range cases {
			cmd := exec.CommandContext(t.Context(), name, append(args, filepath.Join(dir, c.Name+".json"))...)
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s: %s", c.Name, out)
			require.Equal(t, want(c), strings.TrimSpace(string(out)), c.Name)
		}
	}
	both := func(c snippetCase) string { return "quikly=" + yes(c.Quikly) + " standard=" + yes(c.Standard) }

	t.Run("Python", func(t *testing.T) {
		python := lookPath(t, "python3")
		script := snippets["python"] + "\n\n" + snippets["python-standard"] + pythonHarness
		require.NoError(t, os.WriteFile(filepath.Join(dir, "verify.py"), []byte(script), 0o600))
		run(t, both, python, "verify.py")
	})

	t.Run("Node", func(t *testing.T) {
		node, npm := lookPath(t, "node"), lookPath(t, "npm")
		nodeDir := t.TempDir()
		install := exec.CommandContext(t.Context(), npm, "install", "--no-audit", "--no-fund", "--silent", standardWebhooksNPM)
		install.Dir = nodeDir
		out, err := install.CombinedOutput()
		require.NoError(t, err, "npm install %s: %s", standardWebhooksNPM, out)
		script := filepath.Join(nodeDir, "verify.js")
		require.NoError(t, os.WriteFile(script, []byte(snippets["node"]+nodeHarness), 0o600))
		run(t, func(c snippetCase) string { return "standard=" + yes(c.Standard) }, node, script)
	})

	t.Run("Go", func(t *testing.T) {
		goBin := lookPath(t, "go")
		modDir := t.TempDir()
		sum, err := os.ReadFile("../../go.sum") // the library is this module's dependency, so its sums are here
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(modDir, "go.sum"), sum, 0o600))
		require.NoError(t, os.WriteFile(filepath.Join(modDir, "go.mod"), []byte(goSnippetMod), 0o600))
		src := "package main\n\n" + goHarnessImports + snippets["go"] + goHarness
		require.NoError(t, os.WriteFile(filepath.Join(modDir, "main.go"), []byte(src), 0o600))
		bin := filepath.Join(modDir, "verify")
		build := exec.CommandContext(t.Context(), goBin, "build", "-o", bin, ".")
		build.Dir = modDir
		build.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off")
		out, err := build.CombinedOutput()
		require.NoError(t, err, "go build of the README's Go snippet: %s\n%s", out, src)
		run(t, both, bin)
	})
}

func yes(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// lookPath finds a program, skipping the test when the machine lacks it.
func lookPath(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed: %v", name, err)
	}
	return p
}

// The harnesses call the snippets' functions on a case file (argv) and print what they said.
const pythonHarness = `

if __name__ == "__main__":
    import base64, json, sys
    case = json.load(open(sys.argv[1]))
    body = base64.b64decode(case["body"])
    headers = case["headers"]
    quikly = verify_quikly_signature(body, headers.get("x-quikly-signature", ""), case["secret"])
    standard = verify_standard_webhook(body, headers, case["secret"])
    print("quikly=%s standard=%s" % (str(quikly).lower(), str(standard).lower()))
`

const nodeHarness = `
const c = JSON.parse(require("fs").readFileSync(process.argv[2], "utf8"));
let ok;
try {
  const event = verifyQuiklyDelivery(Buffer.from(c.body, "base64").toString("utf8"), c.headers, c.secret);
  ok = typeof event === "object" && typeof event.event === "string";
} catch (e) {
  ok = false;
}
console.log("standard=" + ok);
`

const goSnippetMod = `module snippet

go 1.26

require github.com/standard-webhooks/standard-webhooks/libraries v0.0.1
`

// goHarnessImports avoids the packages the snippet imports itself (a second import of one name
// would not compile).
const goHarnessImports = `import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
)

`

const goHarness = `

func main() {
	data, err := os.ReadFile(os.Args[1])
	if err != nil {
		panic(err)
	}
	var c struct {
		Body    []byte            ` + "`json:\"body\"`" + `
		Headers map[string]string ` + "`json:\"headers\"`" + `
		Secret  string            ` + "`json:\"secret\"`" + `
	}
	if err := json.Unmarshal(data, &c); err != nil {
		panic(err)
	}
	r := httptest.NewRequest("POST", "/hooks/quikly", bytes.NewReader(c.Body))
	for k, v := range c.Headers {
		r.Header.Set(k, v)
	}
	body, err := verifyQuiklyDelivery(r, c.Secret)
	if !bytes.Equal(body, c.Body) {
		panic("verifyQuiklyDelivery did not return the body")
	}
	fmt.Printf("quikly=%t standard=%t\n", verifyQuiklySignature(body, r.Header.Get("X-Quikly-Signature"), c.Secret), err == nil)
}
`
