package main

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/app"
	"github.com/quikly/webhooks/internal/errs"
	"github.com/quikly/webhooks/internal/server"
	"github.com/quikly/webhooks/internal/testenv"
)

// apiStatus answers the status of GET /webhooks with key on a running quikly.
func apiStatus(t *testing.T, addr, key string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+addr+"/api/external/v1/webhooks", nil)
	req.Header.Set("X-API-Key", key)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	return res.StatusCode
}

// TestAPIKeyListAndRevoke: SPEC §15 — apikey list prints id, created and last used (never the key);
// apikey revoke makes the key answer 401 at once and ends the console sessions signed in with it.
func TestAPIKeyListAndRevoke(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := testenv.DatabaseURL(t)
	db := "QUIKLY_DATABASE_URL=" + dbURL
	key, _, code := quikly(t, []string{db}, "apikey", "create", "--account", "acme")
	require.Equal(t, 0, code)
	key = strings.TrimSpace(key)
	other, _, _ := quikly(t, []string{db}, "apikey", "create", "--account", "acme")
	other = strings.TrimSpace(other)

	cmd := exec.Command(binary, "serve", "--addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), db)
	p := startCmd(t, cmd)
	require.Equal(t, http.StatusOK, apiStatus(t, p.addr, key))

	list, _, code := quikly(t, []string{db}, "apikey", "list", "--account", "acme")
	require.Equal(t, 0, code)
	require.NotContains(t, list, key, "never the key")
	rows := regexp.MustCompile(`(?m)^(key_\S+)\s+(\S+)\s+(\S+)$`).FindAllStringSubmatch(list, -1)
	require.Len(t, rows, 2, "%s", list)
	require.NotEqual(t, "never", rows[0][3], "the key just used has a last-used time:\n%s", list)
	require.Equal(t, "never", rows[1][3], "the other was never used:\n%s", list)
	used := rows[0][1]

	st, err := server.OpenStore(ctx, &server.Config{DatabaseURL: dbURL})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	a := &app.App{Store: st}
	session, err := a.SignIn(ctx, key)
	require.NoError(t, err)
	otherSession, err := a.SignIn(ctx, other)
	require.NoError(t, err)

	out, _, code := quikly(t, []string{db}, "apikey", "revoke", used)
	require.Equal(t, 0, code)
	require.Contains(t, out, used)
	require.Equal(t, http.StatusUnauthorized, apiStatus(t, p.addr, key), "a revoked key answers 401 at once")
	require.Equal(t, http.StatusOK, apiStatus(t, p.addr, other))
	_, err = a.SessionAccount(ctx, session.ID)
	require.Equal(t, errs.Unauthorized, errs.CodeOf(err), "the console session signed in with it ended")
	_, err = a.SessionAccount(ctx, otherSession.ID)
	require.NoError(t, err)

	list, _, _ = quikly(t, []string{db}, "apikey", "list", "--account", "acme")
	require.NotContains(t, list, used)
	_, stderr, code := quikly(t, []string{db}, "apikey", "revoke", used)
	require.NotEqual(t, 0, code)
	require.Contains(t, stderr, used)
	_, stderr, code = quikly(t, []string{db}, "apikey", "list", "--account", "nobody")
	require.NotEqual(t, 0, code)
	require.Contains(t, stderr, "nobody")
}

// TestSecretsWrittenBeforeTheKeyAreSealedAtStart: issue 12 item 3 — a webhook created without
// --encryption-key has its secret sealed when a process starts with one: no clear secret is left in
// the database (the SQLite file, or PostgreSQL's column), and the secret that signs is unchanged.
func TestSecretsWrittenBeforeTheKeyAreSealedAtStart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := testenv.DatabaseURL(t)
	db := "QUIKLY_DATABASE_URL=" + dbURL
	key, _, _ := quikly(t, []string{db}, "apikey", "create", "--account", "acme")
	cmd := exec.Command(binary, "serve", "--addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), db)
	p := startCmd(t, cmd)
	secret := createHook(t, p.addr, strings.TrimSpace(key), "https://crm.example.com/h")
	p.cmd.Process.Signal(syscall.SIGTERM)
	require.NoError(t, <-p.done)

	encKey := "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	_, stderr, code := quikly(t, []string{db, "QUIKLY_ENCRYPTION_KEY=" + encKey}, "migrate")
	require.Equal(t, 0, code, stderr)

	if path, ok := strings.CutPrefix(dbURL, "sqlite:"); ok {
		// The database file and whatever sits beside it (write-ahead log, shared memory).
		matches, err := filepath.Glob(path + "*")
		require.NoError(t, err)
		require.NotEmpty(t, matches)
		for _, f := range matches {
			b, err := os.ReadFile(f)
			require.NoError(t, err)
			require.False(t, strings.Contains(string(b), secret), "a clear secret is left in %s", f)
		}
	} else {
		cfg, err := pgxpool.ParseConfig(dbURL) // the URL may carry pool parameters
		require.NoError(t, err)
		conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
		require.NoError(t, err)
		defer conn.Close(ctx)
		var stored string
		require.NoError(t, conn.QueryRow(ctx, `SELECT secret FROM webhooks`).Scan(&stored))
		require.NotContains(t, stored, secret)
		require.True(t, strings.HasPrefix(stored, "sealed:"), "stored: %.20s…", stored)
	}

	st, err := server.OpenStore(ctx, &server.Config{DatabaseURL: dbURL, EncryptionKey: encKey})
	require.NoError(t, err)
	defer st.Close()
	acct, err := (&app.App{Store: st}).Authenticate(ctx, strings.TrimSpace(key))
	require.NoError(t, err)
	page, err := (&app.App{Store: st}).ListWebhooks(ctx, acct.ID, 10, "")
	require.NoError(t, err)
	require.Len(t, page.Items, 1)
	require.Equal(t, secret, page.Items[0].Secret, "the same secret signs: signatures unchanged")
}
