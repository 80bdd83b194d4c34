package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// hangGuard bounds every wait of these tests; it is not a timing assertion.
const hangGuard = 30 * time.Second

type serverBundle struct {
	addr     string
	release  chan struct{} // lets /slow answer
	received atomic.Int64  // body bytes /upload read
}

// serverSetup runs the real service (SQLite in t.TempDir()) with cfg's HTTP limits on loopback, with
// a handler that reads uploads whole and answers /slow only when released.
func serverSetup(t *testing.T, cfg Config) *serverBundle {
	t.Helper()
	cfg.DatabaseURL = "sqlite:" + filepath.Join(t.TempDir(), "quikly.db")
	st, err := OpenStore(t.Context(), &cfg)
	require.NoError(t, err)
	svc, err := New(&cfg, st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	b := &serverBundle{release: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		b.received.Add(n)
		if err != nil {
			http.Error(w, "incomplete body", http.StatusBadRequest)
			return
		}
		io.WriteString(w, "stored")
	})
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		<-b.release
		io.WriteString(w, "done")
	})
	mux.HandleFunc("GET /quick", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	b.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx, ln, mux) }()
	t.Cleanup(func() {
		select {
		case <-b.release:
		default:
			close(b.release)
		}
		cancel()
		require.NoError(t, <-done)
	})
	return b
}

// dial opens a raw connection to the server, with the hang guard as its deadline.
func (b *serverBundle) dial(t *testing.T) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", b.addr)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	require.NoError(t, conn.SetDeadline(time.Now().Add(hangGuard)))
	return conn
}

// closedByServer reads from conn until the server closes it, and reports whether it did (rather
// than the hang guard ending the wait).
func closedByServer(conn net.Conn) bool {
	_, err := io.Copy(io.Discard, conn)
	var netErr net.Error
	return !(errors.As(err, &netErr) && netErr.Timeout())
}

// TestServerBoundsSlowClients (SPEC §15): a client that trickles its request body is cut off once
// ReadTimeout has passed, long before it has sent the body; a handler that takes longer than
// ReadTimeout to answer (a synchronous test send) still answers in full.
func TestServerBoundsSlowClients(t *testing.T) {
	t.Parallel()
	b := serverSetup(t, Config{ReadTimeout: 300 * time.Millisecond, IdleTimeout: time.Hour})

	// A slow answer, asked for before the trickling starts.
	slow := b.dial(t)
	_, err := io.WriteString(slow, "GET /slow HTTP/1.1\r\nHost: quikly\r\n\r\n")
	require.NoError(t, err)

	const bodySize = 1 << 20
	trickler := b.dial(t)
	_, err = io.WriteString(trickler, "POST /upload HTTP/1.1\r\nHost: quikly\r\nContent-Type: application/octet-stream\r\nContent-Length: 1048576\r\n\r\n")
	require.NoError(t, err)
	sent := make(chan int, 1)
	go func() {
		n := 0
		for ; n < bodySize; n++ {
			if _, err := trickler.Write([]byte{'x'}); err != nil {
				break
			}
			time.Sleep(10 * time.Millisecond) // a slow client, not synchronisation
		}
		sent <- n
	}()
	require.True(t, closedByServer(trickler), "the server closed the trickling connection")
	trickler.Close()
	n := <-sent
	require.Less(t, n, bodySize, "cut off before the body was complete")
	require.Less(t, b.received.Load(), int64(bodySize), "the handler never got a whole body")

	// ReadTimeout has demonstrably passed for the slow request too; it was not cut.
	close(b.release)
	res, err := http.ReadResponse(bufio.NewReader(slow), nil)
	require.NoError(t, err)
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "done", string(body))
}

// TestServerClosesIdleConnections (SPEC §15): a keep-alive connection that carries no further
// request is closed after IdleTimeout. ReadTimeout, which Go would fall back on, is far longer than
// the hang guard, so only IdleTimeout can close it in time.
func TestServerClosesIdleConnections(t *testing.T) {
	t.Parallel()
	b := serverSetup(t, Config{ReadTimeout: time.Hour, IdleTimeout: 200 * time.Millisecond})
	conn := b.dial(t)
	rd := bufio.NewReader(conn)
	for range 2 { // kept alive between requests
		_, err := io.WriteString(conn, "GET /quick HTTP/1.1\r\nHost: quikly\r\n\r\n")
		require.NoError(t, err)
		res, err := http.ReadResponse(rd, nil)
		require.NoError(t, err)
		body, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		require.Equal(t, "ok", string(body))
		require.False(t, res.Close)
	}
	_, err := rd.ReadByte()
	var netErr net.Error
	require.False(t, errors.As(err, &netErr) && netErr.Timeout(), "the server closed the idle connection: %v", err)
	require.ErrorIs(t, err, io.EOF)
}

func TestServerLimitsDefaultToSpec(t *testing.T) {
	t.Parallel()
	svc := &Service{cfg: &Config{}}
	srv := svc.HTTPServer(nil)
	require.Equal(t, 30*time.Second, srv.ReadTimeout, "SPEC §15: a whole request within 30 s")
	require.Equal(t, 120*time.Second, srv.IdleTimeout, "SPEC §15: idle close after 120 s")
	require.LessOrEqual(t, srv.ReadHeaderTimeout, srv.ReadTimeout)
	require.Zero(t, srv.WriteTimeout, "a write timeout would cut a synchronous test send")
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, (&Config{}).Validate(), "the zero value takes the defaults")
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Workers: -1}, "workers must be at least 1"},
		{Config{PerWebhook: -3}, "per-webhook must be at least 1"},
		{Config{RateLimit: -1}, "rate limit must be 0 (disabled) or a positive number"},
		{Config{DeliveryTimeout: -time.Second}, "delivery timeout must be positive"},
		{Config{LogRetention: -time.Hour}, "log retention must be positive"},
		{Config{ReadTimeout: -time.Second}, "read timeout must be positive"},
		{Config{RetrySchedule: []time.Duration{time.Second, 0}}, "retry schedule entry 2 must be positive"},
	} {
		err := tc.cfg.Validate()
		require.Error(t, err, tc.want)
		require.True(t, strings.Contains(err.Error(), tc.want), "%q does not say %q", err, tc.want)
		_, err = New(&tc.cfg, nil, slog.Default())
		require.ErrorContains(t, err, tc.want, "New refuses it too")
	}
}
