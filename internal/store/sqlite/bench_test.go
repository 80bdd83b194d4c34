package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/account"
	"github.com/quikly/webhooks/internal/delivery"
	"github.com/quikly/webhooks/internal/randid"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/store/sqlite"
	"github.com/quikly/webhooks/internal/store/storetest"
	"github.com/quikly/webhooks/internal/webhook"
)

// The benchmarks drive the store as the dispatcher does, one delivery per b.N, and report the
// process's CPU time (user + system, every goroutine: the writer's included) per delivery as
// cpu-µs/op. Run them with a fixed count so that each run sees the same queue depth:
//
//	go test -run '^$' -bench . -benchtime 20000x ./internal/store/sqlite/
//
// -cpuprofile also profiles the set-up (queueing the backlog); to profile only the measured part, name
// a file in BENCH_CPUPROFILE and run one benchmark:
//
//	BENCH_CPUPROFILE=cpu.out go test -run '^$' -bench 'Drain/Complete64' -benchtime 20000x ./internal/store/sqlite/

// benchBundle is an open store with one account and one active webhook.
type benchBundle struct {
	st   *sqlite.DB
	acct *account.Account
	hook *webhook.Webhook
}

func benchSetup(b *testing.B) *benchBundle {
	b.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "quikly.db"), sqlite.Options{})
	require.NoError(b, err)
	b.Cleanup(func() { st.Close() })
	bb := &benchBundle{st: st}
	bb.hook = bb.newWebhook(b, webhook.LeadSessionCreated)
	return bb
}

func (bb *benchBundle) newWebhook(b *testing.B, eventType string) *webhook.Webhook {
	b.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	w := &webhook.Webhook{ID: randid.New("wh_"), Name: "bench", URL: "https://example.com/hook",
		Events: []string{eventType}, IsActive: true, Secret: webhook.NewSecret(), CreatedAt: now, UpdatedAt: now}
	require.NoError(b, bb.st.Tx(ctx, func(tx store.Tx) error {
		if bb.acct == nil {
			var err error
			if bb.acct, err = tx.AccountGetOrCreate(ctx, "bench", now); err != nil {
				return err
			}
		}
		w.AccountID = bb.acct.ID
		return tx.WebhookInsert(ctx, w)
	}))
	return w
}

// benchData is the data of a lead_session.created event, about the size quikly-bench sends.
type benchData struct {
	LeadSessionID string `json:"lead_session_id"`
	Channel       string `json:"channel"`
	ChannelID     string `json:"channel_id"`
	ClientName    string `json:"client_name"`
	Brief         string `json:"brief"`
	Status        string `json:"status"`
}

func newBenchData(i int) benchData {
	return benchData{LeadSessionID: randid.New("ls_"), Channel: "api", ChannelID: fmt.Sprintf("c-%d", i),
		ClientName: "Bench Client", Brief: "A two-page marketing site with a contact form and a blog.",
		Status: "gathering_info"}
}

// queue publishes n events to w's event type, batch to a transaction, due at at.
func (bb *benchBundle) queue(b *testing.B, eventType string, n int, at time.Time) {
	b.Helper()
	ctx := context.Background()
	const batch = 500
	for i := 0; i < n; i += batch {
		require.NoError(b, bb.st.Tx(ctx, func(tx store.Tx) error {
			for j := i; j < min(n, i+batch); j++ {
				if _, _, err := delivery.Publish(ctx, tx, nil, bb.acct.ID, eventType, newBenchData(j), at); err != nil {
					return err
				}
			}
			return nil
		}))
	}
}

// cpuTime is the CPU time this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measure runs fn with the timer and the CPU clock on, and reports CPU µs per b.N.
func measure(b *testing.B, fn func()) {
	b.Helper()
	b.ReportAllocs()
	b.ResetTimer()
	if path := os.Getenv("BENCH_CPUPROFILE"); path != "" && b.N > 1 { // not the probing run of one
		f, err := os.Create(path)
		require.NoError(b, err)
		require.NoError(b, pprof.StartCPUProfile(f))
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	start, written := cpuTime(b), bytesWritten()
	fn()
	cpu := cpuTime(b) - start
	b.StopTimer()
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
	if written >= 0 {
		b.ReportMetric(float64(bytesWritten()-written)/float64(b.N), "written-B/op")
	}
}

// bytesWritten is how many bytes this process has written with write(2) and its kin (the WAL, and
// the database file at checkpoints), or -1 where Linux's /proc/self/io is missing.
func bytesWritten() int64 {
	raw, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "wchar: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}

// outcome is a successful attempt of c, as the dispatcher makes it.
func outcome(c *store.ClaimedDelivery, now time.Time) *store.DeliveryOutcome {
	ts := fmt.Sprint(now.Unix())
	res := delivery.Result{Succeeded: true, StatusCode: 200, ResponseBody: "ok", Duration: time.Millisecond,
		Headers: map[string]string{
			"Content-Type": "application/json", "User-Agent": "Quikly-Webhooks/1.0", "X-Quikly-Event": c.EventType,
			"X-Quikly-Signature": "sha256=" + randid.Base62(43), "X-Quikly-Timestamp": ts,
			"X-Quikly-Webhook-Id": c.WebhookID, "webhook-id": c.EventID, "webhook-timestamp": ts,
			"webhook-signature": "v1," + randid.Base62(43),
		}}
	return delivery.Outcome(c, res, delivery.RetryPolicy{}, now)
}

// drain claims everything due in claims of claimBatch and completes each claim in transactions of
// completeBatch outcomes, as the dispatcher does, and returns how many it completed.
func (bb *benchBundle) drain(b *testing.B, claimBatch, completeBatch int, exclude []string) int {
	b.Helper()
	ctx := context.Background()
	done := 0
	for {
		now := time.Now()
		var cs []*store.ClaimedDelivery
		require.NoError(b, bb.st.Tx(ctx, func(tx store.Tx) error {
			var err error
			cs, err = storetest.ClaimDue(ctx, tx, now, now.Add(25*time.Second), claimBatch, exclude...)
			return err
		}))
		if len(cs) == 0 {
			return done
		}
		for i := 0; i < len(cs); i += completeBatch {
			part := cs[i:min(len(cs), i+completeBatch)]
			outs := make([]*store.DeliveryOutcome, len(part))
			for j, c := range part {
				outs[j] = outcome(c, now)
			}
			require.NoError(b, bb.st.Tx(ctx, func(tx store.Tx) error { return tx.DeliveryComplete(ctx, outs, nil) }))
		}
		done += len(cs)
	}
}

// BenchmarkDrain drains a backlog of b.N deliveries to one webhook: claims of 64, outcomes written
// in transactions of 64 or 16.
func BenchmarkDrain(b *testing.B) {
	for _, completeBatch := range []int{64, 16} {
		b.Run(fmt.Sprintf("Complete%d", completeBatch), func(b *testing.B) {
			bb := benchSetup(b)
			bb.queue(b, webhook.LeadSessionCreated, b.N, time.Now().Add(-time.Minute))
			measure(b, func() {
				require.Equal(b, b.N, bb.drain(b, 64, completeBatch, nil))
			})
		})
	}
}

// BenchmarkDrainBesideHung drains b.N deliveries to one webhook while 5,000 deliveries of an
// excluded webhook are due before all of them (quikly-bench's isolation scenario).
func BenchmarkDrainBesideHung(b *testing.B) {
	bb := benchSetup(b)
	hung := bb.newWebhook(b, webhook.ProposalCreated)
	bb.queue(b, webhook.ProposalCreated, 5000, time.Now().Add(-2*time.Minute))
	bb.queue(b, webhook.LeadSessionCreated, b.N, time.Now().Add(-time.Minute))
	measure(b, func() {
		require.Equal(b, b.N, bb.drain(b, 64, 64, []string{hung.ID}))
	})
}

// BenchmarkRelease claims b.N deliveries in claims of 64 and releases each claim whole.
func BenchmarkRelease(b *testing.B) {
	bb := benchSetup(b)
	bb.queue(b, webhook.LeadSessionCreated, b.N, time.Now().Add(-time.Minute))
	ctx := context.Background()
	measure(b, func() {
		released := 0
		for released < b.N {
			now := time.Now()
			require.NoError(b, bb.st.Tx(ctx, func(tx store.Tx) error {
				cs, err := storetest.ClaimDue(ctx, tx, now, now.Add(25*time.Second), 64)
				if err != nil {
					return err
				}
				released += len(cs)
				// Released due in the future, so the next claim takes new ones.
				return tx.DeliveryRelease(ctx, cs, now.Add(time.Hour))
			}))
		}
	})
}

// BenchmarkPublish publishes b.N events, each in its own transaction from 32 concurrent callers (an
// API under load; group commit gathers them), each to one webhook.
func BenchmarkPublish(b *testing.B) {
	bb := benchSetup(b)
	ctx := context.Background()
	const callers = 32
	measure(b, func() {
		var wg sync.WaitGroup
		for c := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := c; i < b.N; i += callers {
					err := bb.st.Tx(ctx, func(tx store.Tx) error {
						_, _, err := delivery.Publish(ctx, tx, nil, bb.acct.ID, webhook.LeadSessionCreated, newBenchData(i), time.Now())
						return err
					})
					if err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
	})
}

// BenchmarkClaimAllExcluded claims, b.N times, while the only due deliveries (a backlog of 20,000)
// belong to an excluded webhook: what the dispatcher does while draining one webhook at its cap.
func BenchmarkClaimAllExcluded(b *testing.B) {
	bb := benchSetup(b)
	bb.queue(b, webhook.LeadSessionCreated, 20000, time.Now().Add(-time.Minute))
	ctx := context.Background()
	exclude := []string{bb.hook.ID}
	measure(b, func() {
		for range b.N {
			now := time.Now()
			require.NoError(b, bb.st.Tx(ctx, func(tx store.Tx) error {
				cs, err := storetest.ClaimDue(ctx, tx, now, now.Add(25*time.Second), 32, exclude...)
				if len(cs) != 0 {
					return fmt.Errorf("claimed %d of an excluded webhook", len(cs))
				}
				return err
			}))
		}
	})
}
