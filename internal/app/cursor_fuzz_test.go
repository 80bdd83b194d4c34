package app

import (
	"encoding/base64"
	"errors"
	"testing"

	"github.com/quikly/webhooks/internal/errs"
	"github.com/quikly/webhooks/internal/proposal"
)

// FuzzCursor: listParams never panics on any ?cursor=; a cursor it accepts names an id of ours
// (which page makes into a cursor that reads back as the same id), and anything else is a
// validation error on "cursor" and nothing else. A cursor made by page from any id always reads
// back as that id. Seeds: testdata/fuzz/FuzzCursor. Run:
// go test ./internal/app -run '^$' -fuzz '^FuzzCursor$'.
func FuzzCursor(f *testing.F) {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	f.Add(enc("c1:wh_0123456789abcdefABCDEF01"), "wh_0123456789abcdefABCDEF01")
	f.Add(enc("c1:0b9e5c1e-8d0a-4b8e-9c3f-2a1d5e6f7a8b"), "0b9e5c1e-8d0a-4b8e-9c3f-2a1d5e6f7a8b")
	f.Add(enc("c1:"), "")
	f.Add(enc("c0:wh_1"), "wh_1")
	f.Add(enc("c1:wh_1\x00"), "wh_1\x00")
	f.Add(enc("c1:\xff\xfe"), "\xff")
	f.Add("Yz", "x")
	f.Add("====", "a b")
	f.Add("YzE6d2hfMQ==", "wh_1") // padded: not RawURLEncoding
	f.Add("YzE6d2hfMR", "wh_1")   // non-canonical trailing bits
	f.Add("%00", "-")
	f.Fuzz(func(t *testing.T, cursor, id string) {
		p, err := listParams("acct_1", 0, cursor)
		switch {
		case cursor == "":
			if err != nil || p.After != "" {
				t.Fatalf("no cursor: %+v, %v", p, err)
			}
		case err != nil:
			requireCursorError(t, cursor, err)
		default:
			if !idText(p.After) {
				t.Fatalf("cursor %q accepted with After %q, not an id", cursor, p.After)
			}
			again := page([]string{"x", p.After, "y"}, 2, func(s string) string { return s }).NextCursor
			if q, err := listParams("acct_1", 0, again); err != nil || q.After != p.After {
				t.Fatalf("cursor %q → %q → %q, %v: does not round-trip", cursor, p.After, again, err)
			}
		}

		// The UUID lists refuse, as a cursor error, an accepted cursor that names no UUID.
		if err == nil && p.After != "" && !proposal.ValidID(p.After) {
			_, err := listByUUID[string](t.Context(), "acct_1", 0, cursor, nil, nil) // never reaches the store
			requireCursorError(t, cursor, err)
		}

		// Any id page could be given makes a cursor that reads back as it, when it is one of ours.
		made := page([]string{id, "next"}, 1, func(s string) string { return s }).NextCursor
		q, err := listParams("acct_1", 0, made)
		if idText(id) {
			if err != nil || q.After != id {
				t.Fatalf("id %q → cursor %q → %+v, %v", id, made, q, err)
			}
		} else if err == nil && made != "" {
			t.Fatalf("id %q is not one of ours, yet its cursor %q was accepted as %q", id, made, q.After)
		}
	})
}

func requireCursorError(t *testing.T, cursor string, err error) {
	t.Helper()
	var e *errs.Error
	if !errors.As(err, &e) || e.Code != errs.Invalid || len(e.Fields) != 1 || e.Fields["cursor"] == "" {
		t.Fatalf("cursor %q: want a validation error on cursor alone, got %#v", cursor, err)
	}
}
