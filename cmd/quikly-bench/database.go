package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quikly/webhooks/internal/delivery"
	"github.com/quikly/webhooks/internal/randid"
	"github.com/quikly/webhooks/internal/server"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/webhook"
)

// databases hands out a fresh, empty database per scenario, so that no scenario sees another's queue.
type databases interface {
	// Kind is "sqlite" or "postgres".
	Kind() string
	// Create makes an empty database and returns its URL and a function that removes it.
	Create(ctx context.Context, name string) (dbURL string, drop func(context.Context) error, err error)
}

// openDatabases chooses the databases of --database: "sqlite" (files in dir) or a postgres:// URL.
func openDatabases(spec, dir string) (databases, error) {
	switch {
	case spec == "" || spec == "sqlite":
		return &sqliteDBs{dir: dir}, nil
	case strings.HasPrefix(spec, "postgres://") || strings.HasPrefix(spec, "postgresql://"):
		if _, err := url.Parse(spec); err != nil {
			return nil, fmt.Errorf("--database: %w", err)
		}
		return &postgresDBs{admin: spec, prefix: fmt.Sprintf("quikly_bench_%d_%d", os.Getpid(), time.Now().Unix())}, nil
	}
	return nil, fmt.Errorf("--database %q: use sqlite or a postgres:// URL", server.RedactURL(spec))
}

// sqliteDBs are SQLite files in a temporary directory.
type sqliteDBs struct{ dir string }

func (d *sqliteDBs) Kind() string { return "sqlite" }

func (d *sqliteDBs) Create(_ context.Context, name string) (string, func(context.Context) error, error) {
	path := filepath.Join(d.dir, name+".db")
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", nil, fmt.Errorf("remove old database: %w", err)
		}
	}
	drop := func(context.Context) error {
		var errs []error
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	return "sqlite:" + path, drop, nil
}

// postgresDBs are databases created on the server of admin (connecting to admin's own database to
// run CREATE and DROP DATABASE) and dropped after their scenario.
type postgresDBs struct {
	admin  string
	prefix string
}

func (d *postgresDBs) Kind() string { return "postgres" }

func (d *postgresDBs) Create(ctx context.Context, name string) (string, func(context.Context) error, error) {
	db := d.prefix + "_" + strings.ReplaceAll(name, "-", "_")
	if err := d.exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize()); err != nil {
		return "", nil, fmt.Errorf("create database %s: %w", db, err)
	}
	u, _ := url.Parse(d.admin) // parsed in openDatabases
	u.Path = "/" + db
	drop := func(ctx context.Context) error {
		// WITH (FORCE) ends connections a killed quikly may have left behind.
		if err := d.exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop database %s: %w", db, err)
		}
		return nil
	}
	return u.String(), drop, nil
}

func (d *postgresDBs) exec(ctx context.Context, sql string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, withoutPoolParams(d.admin))
	if err != nil {
		return fmt.Errorf("connect to %s: %w", server.RedactURL(d.admin), err)
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// withoutPoolParams drops the pgxpool settings (pool_max_conns…) from a database URL: quikly's pool
// takes them, but a single connection would send them to the server as unknown parameters.
func withoutPoolParams(dbURL string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		return dbURL
	}
	q := u.Query()
	for k := range q {
		if strings.HasPrefix(k, "pool_") {
			q.Del(k)
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// openStore opens the database of dbURL in this process, as a second writer beside quikly, through
// the same code quikly uses (so PostgreSQL works here as soon as quikly supports it).
func openStore(ctx context.Context, dbURL string) (store.Store, error) {
	st, err := server.OpenStore(ctx, &server.Config{DatabaseURL: dbURL})
	if err != nil {
		return nil, fmt.Errorf("open the database from the benchmark: %w", err)
	}
	return st, nil
}

// accountID returns the id of the account name (created by `quikly apikey create`).
func accountID(ctx context.Context, st store.Store, name string) (string, error) {
	var id string
	err := st.Tx(ctx, func(tx store.Tx) error {
		a, err := tx.AccountGetOrCreate(ctx, name, time.Now())
		if err != nil {
			return err
		}
		id = a.ID
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("account %s: %w", name, err)
	}
	return id, nil
}

// leadData is the data of a lead_session.created event, with a brief long enough that a delivery
// body is about as large as a typical one (bodySize).
type leadData struct {
	LeadSessionID string `json:"lead_session_id"`
	Channel       string `json:"channel"`
	ChannelID     string `json:"channel_id"`
	ClientName    string `json:"client_name"`
	Brief         string `json:"brief"`
	Status        string `json:"status"`
}

// benchBrief pads bodies of queued deliveries to about 400 bytes.
const benchBrief = "Needs a proposal for a website redesign: ten pages, a booking form, a blog and a " +
	"newsletter sign-up; budget around 8,000 EUR; wants to launch before the summer season starts."

func newLeadData(n int) leadData {
	return leadData{LeadSessionID: randid.New("ls_"), Channel: "api", ChannelID: fmt.Sprintf("c-%d", n),
		ClientName: "Bench Client", Brief: benchBrief, Status: "gathering_info"}
}

// publish publishes n lead_session.created events with delivery.Publish, as the service does, batch
// events to a transaction; every subscribed webhook of the account gets a delivery.
func publish(ctx context.Context, st store.Store, account string, n, batch int) error {
	for i := 0; i < n; i += batch {
		err := st.Tx(ctx, func(tx store.Tx) error {
			for j := i; j < min(n, i+batch); j++ {
				if _, _, err := delivery.Publish(ctx, tx, nil, account, webhook.LeadSessionCreated, newLeadData(j), time.Now()); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("publish events %d–%d: %w", i, min(n, i+batch), err)
		}
	}
	return nil
}

// queue inserts n pending deliveries of eventType to the one webhook hookID, each with its own event,
// batch to a transaction. It writes events and deliveries through the store directly rather than
// with delivery.Publish, which would look up the subscribed webhooks once per event: at a million
// deliveries that look-up is most of the time. The rows are the same.
func queue(ctx context.Context, st store.Store, account, hookID, eventType string, n, batch int) error {
	for i := 0; i < n; i += batch {
		end := min(n, i+batch)
		err := st.Tx(ctx, func(tx store.Tx) error {
			now := time.Now().UTC()
			ds := make([]*webhook.Delivery, 0, end-i)
			for j := i; j < end; j++ {
				e := &webhook.Event{ID: randid.New("evt_"), AccountID: account, Type: eventType, OccurredAt: now}
				if err := tx.EventInsert(ctx, e); err != nil {
					return err
				}
				data, err := json.Marshal(newLeadData(j))
				if err != nil {
					return err
				}
				ds = append(ds, &webhook.Delivery{
					ID: randid.New("dlv_"), AccountID: account, WebhookID: hookID, EventID: e.ID, EventType: eventType,
					Body: webhook.Body(eventType, now, hookID, data), State: webhook.DeliveryPending,
					NextAttemptAt: now, CreatedAt: now,
				})
			}
			return tx.DeliveryInsert(ctx, ds)
		})
		if err != nil {
			return fmt.Errorf("queue deliveries %d–%d: %w", i, end, err)
		}
	}
	return nil
}
