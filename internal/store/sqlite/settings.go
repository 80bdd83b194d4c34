package sqlite

import (
	"context"
	"database/sql"
	"errors"
)

func (q *queries) SettingGet(ctx context.Context, name string) (string, error) {
	var v string
	err := q.queryRow(ctx, `SELECT value FROM settings WHERE name = ?`, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return v, err
}

func (q *queries) SettingSet(ctx context.Context, name, value string) error {
	_, err := q.exec(ctx, `INSERT INTO settings (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value)
	return err
}
