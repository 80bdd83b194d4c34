package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/webhook"
)

// BenchDeliveriesRead is the measured part of each driver's BenchmarkDeliveriesRead, over a store
// that holds rows events, deliveries and attempts laid out as those benchmarks describe: event i at
// base + i seconds for webhook "whb_<i%4>", failed when i % 8 == 0, delivery "dlv_<i>"; end is the
// time after the last.
func BenchDeliveriesRead(b *testing.B, st store.Store, acct string, rows int, base, end time.Time) {
	ctx := context.Background()
	const samples = 300
	rng := rand.New(rand.NewPCG(1, 2))
	randomTime := func() time.Time { return base.Add(time.Duration(rng.Int64N(int64(rows))) * time.Second) }
	measure := func(name string, fn func(i int) int) {
		b.Run(name, func(b *testing.B) {
			ds := make([]time.Duration, samples)
			n := 0
			for i := range samples {
				t0 := time.Now()
				n += fn(i)
				ds[i] = time.Since(t0)
			}
			slices.Sort(ds)
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
			b.ReportMetric(ms(ds[samples/2]), "p50-ms")
			b.ReportMetric(ms(ds[samples*99/100]), "p99-ms")
			b.ReportMetric(ms(ds[samples-1]), "max-ms")
			b.ReportMetric(float64(n)/samples, "rows/query")
		})
	}
	list := func(p *store.DeliveryListParams) int {
		ds, err := st.DeliveryList(ctx, p)
		require.NoError(b, err)
		return len(ds)
	}
	page := store.ListParams{AccountID: acct, Limit: 51}
	measure("FailedFirstPage", func(int) int {
		return list(&store.DeliveryListParams{ListParams: page, WebhookID: "whb_0", State: webhook.DeliveryFailed})
	})
	measure("FailedUntilRandom", func(int) int {
		return list(&store.DeliveryListParams{ListParams: page, WebhookID: "whb_0", State: webhook.DeliveryFailed, Until: randomTime()})
	})
	measure("FailedNextPage", func(i int) int {
		p := page
		p.After = fmt.Sprintf("dlv_%d", rng.IntN(rows/8)*8)
		return list(&store.DeliveryListParams{ListParams: p, WebhookID: "whb_0", State: webhook.DeliveryFailed})
	})
	measure("AllSinceRandom", func(int) int {
		return list(&store.DeliveryListParams{ListParams: page, WebhookID: "whb_1", Since: randomTime()})
	})
	measure("SucceededUntilRandom", func(int) int {
		return list(&store.DeliveryListParams{ListParams: page, WebhookID: "whb_1", State: webhook.DeliverySucceeded, Until: randomTime()})
	})
	events := func(p *store.EventListParams) int {
		es, err := st.EventList(ctx, p)
		require.NoError(b, err)
		return len(es)
	}
	measure("EventsSinceRandom", func(int) int {
		return events(&store.EventListParams{ListParams: page, Since: randomTime()})
	})
	measure("EventsSinceUntilRandom", func(int) int {
		since := randomTime()
		return events(&store.EventListParams{ListParams: page, Since: since, Until: since.Add(time.Hour)})
	})
	measure("EventsTypeSinceRandom", func(int) int {
		return events(&store.EventListParams{ListParams: page, Type: webhook.ProposalCreated, Since: randomTime()})
	})
	measure("Stats", func(int) int {
		_, err := st.WebhookStatsGet(ctx, "whb_0", end.Add(-24*time.Hour))
		require.NoError(b, err)
		return 1
	})
	b.Run("Recover100k", func(b *testing.B) {
		p := &store.DeliveryRecoverParams{AccountID: acct, WebhookID: "whb_0", Since: base,
			Until: base.Add(800_000 * time.Second), Now: end}
		t0 := time.Now()
		n, err := st.DeliveryCountRecoverable(ctx, p)
		require.NoError(b, err)
		count := time.Since(t0)
		require.Equal(b, 100_000, n)
		// As app.RecoverDeliveries does it: batches of store.DeliveryRecoverBatch, one transaction each.
		p.Limit = store.DeliveryRecoverBatch
		t0 = time.Now()
		total, txs := 0, 0
		for {
			require.NoError(b, st.Tx(ctx, func(tx store.Tx) error {
				n, err = tx.DeliveryRecover(ctx, p)
				return err
			}))
			total, txs = total+n, txs+1
			if n < store.DeliveryRecoverBatch {
				break
			}
		}
		took := time.Since(t0)
		require.Equal(b, 100_000, total)
		b.ReportMetric(float64(took.Milliseconds())/float64(txs), "ms/tx")
		b.ReportMetric(float64(count.Microseconds())/1000, "count-ms")
		b.ReportMetric(took.Seconds(), "recover-s")
	})
}
