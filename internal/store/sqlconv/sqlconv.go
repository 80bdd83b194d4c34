// Package sqlconv converts between Go values and the column encodings that every store driver
// shares: times as Unix milliseconds, optional text as NULL, proposal line items as JSON, rows into
// slices. It knows no SQL dialect, so both drivers read and write the same bytes.
package sqlconv

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/quikly/webhooks/internal/proposal"
)

// MS returns t as Unix milliseconds, the zero time as 0.
func MS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// NullMS is MS with NULL (nil) for the zero time, for nullable time columns.
func NullMS(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	v := t.UnixMilli()
	return &v
}

// FromMS returns the UTC time of Unix milliseconds v, the zero time for 0.
func FromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// FromNullMS is FromMS of a nullable column.
func FromNullMS(v *int64) time.Time {
	if v == nil {
		return time.Time{}
	}
	return FromMS(*v)
}

// NullText stores "" as NULL: optional text columns hold NULL for "none", and a UNIQUE one must,
// because its index lets many NULLs through but not many "".
func NullText(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Deref returns *s, or "" for NULL.
func Deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// lineItemRow is a line item as the line_items column holds it. The price is in minor units, an
// integer, so it never passes through a float on its way in or out.
type lineItemRow struct {
	Description    string `json:"description"`
	Quantity       int64  `json:"quantity"`
	UnitPriceMinor int64  `json:"unit_price_minor"`
}

// EncodeLineItems returns the JSON text of items.
func EncodeLineItems(items []proposal.LineItem) string {
	rows := make([]lineItemRow, len(items))
	for i, li := range items {
		rows[i] = lineItemRow{Description: li.Description, Quantity: li.Quantity, UnitPriceMinor: int64(li.UnitPrice)}
	}
	b, _ := json.Marshal(rows) // strings and integers always encode
	return string(b)
}

// DecodeLineItems reads what EncodeLineItems wrote.
func DecodeLineItems(text []byte) ([]proposal.LineItem, error) {
	var rows []lineItemRow
	if err := json.Unmarshal(text, &rows); err != nil {
		return nil, fmt.Errorf("line items: %w", err)
	}
	items := make([]proposal.LineItem, len(rows))
	for i, r := range rows {
		items[i] = proposal.LineItem{Description: r.Description, Quantity: r.Quantity, UnitPrice: proposal.Money(r.UnitPriceMinor)}
	}
	return items, nil
}

// Scanner is one row to scan: a single-row result or the current row of a result set.
type Scanner interface {
	Scan(dest ...any) error
}

// Rows is a result set (database/sql's *sql.Rows, pgx's Rows). Collect does not close it.
type Rows interface {
	Scanner
	Next() bool
	Err() error
}

// Collect scans every remaining row of rows with scan. The caller closes rows.
func Collect[T any](rows Rows, scan func(Scanner) (T, error)) ([]T, error) {
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
