// Package pgtest gives tests their own PostgreSQL database on the server named by
// QUIKLY_TEST_DATABASE_URL, so tests of any package run in parallel against real PostgreSQL without
// seeing each other's rows.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the environment variable that holds the test server's URL, for example
// postgres://root@127.0.0.1:5432/test. Its database is only connected to, to create and drop others.
const EnvURL = "QUIKLY_TEST_DATABASE_URL"

// adminTimeout bounds creating or dropping one database.
const adminTimeout = time.Minute

// BaseURL returns the URL of QUIKLY_TEST_DATABASE_URL. Without it the test is skipped, except on CI
// (CI set), where a missing database must fail loudly rather than pass by skipping every test.
func BaseURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvURL)
	if u == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set; CI must run the PostgreSQL tests", EnvURL)
		}
		t.Skipf("PostgreSQL tests skipped: set %s (e.g. postgres://root@127.0.0.1:5432/test) to run them", EnvURL)
	}
	return u
}

// NewDatabase creates an empty database for this test, named quikly_test_<random>, and returns its
// URL; at cleanup it drops it, with FORCE so connections left open cannot keep it alive. Register
// cleanups that close stores after calling NewDatabase, so they run before the drop.
func NewDatabase(t testing.TB) string {
	t.Helper()
	base := BaseURL(t)
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails
	name := "quikly_test_" + hex.EncodeToString(b[:])
	Exec(t, base, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	t.Cleanup(func() {
		Exec(t, base, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	})
	u, err := WithDatabase(base, name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return u
}

// WithDatabase returns connString (a URL or key=value string) pointed at the database name.
func WithDatabase(connString, name string) (string, error) {
	if !strings.HasPrefix(connString, "postgres://") && !strings.HasPrefix(connString, "postgresql://") {
		// In key=value form a later key wins.
		return connString + " dbname=" + name, nil
	}
	u, err := url.Parse(connString)
	if err != nil {
		return "", err
	}
	u.Path, u.RawPath = "/"+name, ""
	return u.String(), nil
}

// Exec runs sql on a short-lived connection to the database at connString and fails the test on
// error. Tests use it for what no store does: creating databases, killing connections.
func Exec(t testing.TB, connString, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("pgtest: %s: %v", sql, err)
	}
}
