package console

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/quikly/webhooks/internal/app"
)

// A create or a regenerate answers with a redirect (post/redirect/get, SPEC §15), so a reload or Back
// never rotates the secret again. The page the redirect leads to shows the secret once. What crosses
// the redirect is a reveal token, not the secret: the secret is read from the store when the page is
// shown, and the token only says "this session may see the secret it was just given, once, soon".
//
// The token is an HMAC keyed by the session id (the HttpOnly cookie, never on a page), over the
// webhook, a digest of the secret it reveals and an expiry. So it is worthless without the session's
// cookie, stops working when the secret changes again, and needs no shared state: any instance of
// quikly serve can check it. Shown-once is kept by a per-process list of used tokens; with several
// instances behind a load balancer, a reload that reaches another instance within revealTTL can show
// the same secret to the same session again (never a new one, never to anyone else).

// revealTTL is how long after a create or a regenerate its redirect may show the secret: the
// redirect is followed at once, so this only has to outlast a slow network.
const revealTTL = 5 * time.Minute

// revealKind says why the secret is shown, which words the page.
type revealKind string

const (
	revealCreated     revealKind = "c"
	revealRegenerated revealKind = "r"
)

// revealToken returns the token that lets session s see secret of webhook id once, until expires.
func revealToken(s *app.Session, id, secret string, kind revealKind, expires time.Time) string {
	exp := strconv.FormatInt(expires.Unix(), 10)
	return exp + "." + string(kind) + "." + revealMAC(s, id, secret, kind, exp)
}

func revealMAC(s *app.Session, id, secret string, kind revealKind, exp string) string {
	key := sha256.Sum256([]byte("quikly console reveal\x00" + s.ID))
	digest := sha256.Sum256([]byte(secret))
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte(id + "\x00" + string(kind) + "\x00" + exp + "\x00"))
	m.Write(digest[:])
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkReveal reports whether token lets session s see secret of webhook id now, and why it is shown.
func checkReveal(s *app.Session, id, secret, token string, now time.Time) (revealKind, bool) {
	exp, rest, ok := strings.Cut(token, ".")
	if !ok {
		return "", false
	}
	kind, mac, ok := strings.Cut(rest, ".")
	if !ok || (revealKind(kind) != revealCreated && revealKind(kind) != revealRegenerated) {
		return "", false
	}
	unix, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || !now.Before(time.Unix(unix, 0)) {
		return "", false
	}
	want := revealMAC(s, id, secret, revealKind(kind), exp)
	if !hmac.Equal([]byte(mac), []byte(want)) {
		return "", false
	}
	return revealKind(kind), true
}

// usedReveals remembers the tokens already shown, until they expire anyway. It holds at most one
// entry per create or regenerate of the last revealTTL.
type usedReveals struct {
	mu   sync.Mutex
	used map[string]time.Time // token → its expiry
}

// take marks token used and reports whether it was unused. Entries older than revealTTL, whose
// tokens have expired anyway, are dropped on the way.
func (u *usedReveals) take(token string, now time.Time) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.used == nil {
		u.used = map[string]time.Time{}
	}
	for t, exp := range u.used {
		if !now.Before(exp) {
			delete(u.used, t)
		}
	}
	if _, seen := u.used[token]; seen {
		return false
	}
	u.used[token] = now.Add(revealTTL)
	return true
}
