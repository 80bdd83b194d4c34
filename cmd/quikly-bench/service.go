package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Subprocess limits.
const (
	// startLimit bounds how long quikly may take to listen.
	startLimit = 60 * time.Second
	// stopLimit bounds a graceful stop (in-flight attempts finish within the delivery timeout);
	// after it the process is killed.
	stopLimit = 60 * time.Second
	// tailLines is how much of quikly's log is kept to explain a failure.
	tailLines = 40
)

// buildQuikly builds ./cmd/quikly into dir, without -race: the benchmark measures the service, not
// the race detector. It names the package by import path, so it works from any directory of the module.
func buildQuikly(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "quikly")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/quikly/webhooks/cmd/quikly")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build quikly (run from the repository, or pass --quikly): %w\n%s", err, out.String())
	}
	return bin, nil
}

// service is a running `quikly serve` subprocess.
type service struct {
	cmd *exec.Cmd
	// Addr is where it listens, "127.0.0.1:NNNN".
	Addr string
	// Started is when the process was started; Ready when it logged that it serves (the dispatcher
	// starts right after that line).
	Started, Ready time.Time

	done     chan struct{}
	waitErr  error
	tailMu   sync.Mutex
	tail     []string
	stopOnce sync.Once
	stopErr  error
}

// servingLine matches the line quikly serve logs once it listens.
var servingLine = regexp.MustCompile(`msg="quikly serving".*\baddr=(127\.0\.0\.1:\d+)`)

// startQuikly starts `quikly serve` on a loopback port with args and waits until it listens. Its log
// goes to echo when echo is not nil.
func startQuikly(ctx context.Context, bin string, args []string, echo io.Writer) (*service, error) {
	return startProcess(ctx, bin, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...), servingLine, echo)
}

// startProcess starts quikly with argv (a command and its flags) and waits until it logs a line that
// matches ready, whose first group is the address it listens on.
func startProcess(ctx context.Context, bin string, argv []string, ready *regexp.Regexp, echo io.Writer) (*service, error) {
	cmd := exec.Command(bin, argv...)
	cmd.Stdout = io.Discard
	// Keep QUIKLY_* settings of the caller's environment out: the benchmark's flags say everything.
	cmd.Env = cleanEnv()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("start quikly: %w", err)
	}
	s := &service{cmd: cmd, done: make(chan struct{})}
	s.Started = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start quikly: %w", err)
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if m := ready.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
			s.tailMu.Lock()
			s.tail = append(s.tail, line)
			if len(s.tail) > tailLines {
				s.tail = s.tail[len(s.tail)-tailLines:]
			}
			s.tailMu.Unlock()
			if echo != nil {
				fmt.Fprintln(echo, "  quikly:", line)
			}
		}
		io.Copy(io.Discard, stderr)
		s.waitErr = cmd.Wait()
		close(s.done)
	}()
	timer := time.NewTimer(startLimit)
	defer timer.Stop()
	select {
	case s.Addr = <-found:
		s.Ready = time.Now()
		return s, nil
	case <-s.done:
		return nil, fmt.Errorf("quikly %s exited before listening (%v):\n%s", argv[0], s.waitErr, s.logTail())
	case <-timer.C:
		s.kill()
		return nil, fmt.Errorf("quikly %s did not listen within %v:\n%s", argv[0], startLimit, s.logTail())
	case <-ctx.Done():
		s.kill()
		return nil, ctx.Err()
	}
}

// cleanEnv is the environment without QUIKLY_* variables.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "QUIKLY_") {
			env = append(env, kv)
		}
	}
	return env
}

// Pid is the process id of quikly.
func (s *service) Pid() int { return s.cmd.Process.Pid }

// logTail returns the last lines quikly logged.
func (s *service) logTail() string {
	s.tailMu.Lock()
	defer s.tailMu.Unlock()
	return strings.Join(s.tail, "\n")
}

// stop asks quikly to finish (SIGTERM: in-flight attempts finish, within the delivery timeout) and
// waits; after stopLimit it kills it. It reports an exit that was not clean. Safe to call twice.
func (s *service) stop() error {
	s.stopOnce.Do(func() {
		s.cmd.Process.Signal(syscall.SIGTERM)
		t := time.NewTimer(stopLimit)
		defer t.Stop()
		select {
		case <-s.done:
			if s.waitErr != nil {
				s.stopErr = fmt.Errorf("quikly %s exited with %v after SIGTERM:\n%s", s.cmd.Args[1], s.waitErr, s.logTail())
			}
		case <-t.C:
			s.kill()
			s.stopErr = fmt.Errorf("quikly %s did not stop within %v of SIGTERM; killed", s.cmd.Args[1], stopLimit)
		}
	})
	return s.stopErr
}

func (s *service) kill() {
	s.cmd.Process.Kill()
	<-s.done
}

// memory reads the peak (VmHWM) and current (VmRSS) resident set size of the process, in bytes.
func memory(pid int) (peak, current int64, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("read memory of quikly: %w", err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok || (name != "VmHWM" && name != "VmRSS") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(value), "kB")), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("read memory of quikly: %s: %w", line, err)
		}
		if name == "VmHWM" {
			peak = kb << 10
		} else {
			current = kb << 10
		}
	}
	if peak == 0 {
		return 0, 0, errors.New("read memory of quikly: no VmHWM in /proc status")
	}
	return peak, current, nil
}

// createAPIKey runs `quikly apikey create`, which also applies the migrations.
func createAPIKey(ctx context.Context, bin, dbURL, account string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, "apikey", "create", "--account", account, "--database", dbURL)
	cmd.Env = cleanEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("quikly apikey create: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	key := strings.TrimSpace(stdout.String())
	if !strings.HasPrefix(key, "qk_") {
		return "", fmt.Errorf("quikly apikey create printed %q, not a key", key)
	}
	return key, nil
}

// apiClient calls the external API of a running quikly. Safe for concurrent use.
type apiClient struct {
	base string // "http://127.0.0.1:NNNN/api/external/v1"
	key  string
	http *http.Client
}

// newAPIClient returns a client of the API at addr whose connections are kept alive for up to
// conns concurrent callers.
func newAPIClient(addr, key string, conns int) *apiClient {
	tr := &http.Transport{
		Proxy:               nil, // loopback only, never through a proxy
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	return &apiClient{base: "http://" + addr + "/api/external/v1", key: key,
		http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

func (a *apiClient) close() { a.http.CloseIdleConnections() }

// do sends a JSON request and decodes a JSON answer into out when the status is want.
func (a *apiClient) do(ctx context.Context, method, path string, body []byte, want int, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("X-API-Key", a.key)
	req.Header.Set("Content-Type", "application/json")
	res, err := a.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return res.StatusCode, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if res.StatusCode != want {
		return res.StatusCode, fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, bytes.TrimSpace(data))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return res.StatusCode, fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return res.StatusCode, nil
}

// createWebhook creates a webhook to url subscribed to events and returns its id and secret.
func (a *apiClient) createWebhook(ctx context.Context, name, url string, events ...string) (id, secret string, err error) {
	body, _ := json.Marshal(map[string]any{"name": name, "url": url, "events": events})
	var out struct{ ID, Secret string }
	if _, err := a.do(ctx, http.MethodPost, "/webhooks", body, http.StatusCreated, &out); err != nil {
		return "", "", fmt.Errorf("create webhook: %w", err)
	}
	if out.ID == "" || out.Secret == "" {
		return "", "", errors.New("create webhook: answer without id or secret")
	}
	return out.ID, out.Secret, nil
}

// createLeadSession creates lead session number n through the API (which publishes
// lead_session.created) and returns its id and the HTTP status (0 when no answer came).
func (a *apiClient) createLeadSession(ctx context.Context, n int) (string, int, error) {
	body := fmt.Appendf(nil, `{"channel":"api","channel_id":"c-%d","client_name":"Bench","brief":""}`, n)
	var out struct{ ID string }
	status, err := a.do(ctx, http.MethodPost, "/lead-sessions", body, http.StatusCreated, &out)
	if err != nil {
		return "", status, fmt.Errorf("create lead session: %w", err)
	}
	if out.ID == "" {
		return "", status, errors.New("create lead session: answer without id")
	}
	return out.ID, status, nil
}
