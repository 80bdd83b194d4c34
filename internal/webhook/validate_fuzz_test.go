package webhook_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/quikly/webhooks/internal/errs"
	"github.com/quikly/webhooks/internal/netguard"
	"github.com/quikly/webhooks/internal/webhook"
)

// FuzzValidateURL: ValidateURL never panics; it returns a URL exactly when it records no problem,
// and what it accepts is an absolute https (or, when allowed, http) URL with a host, no user
// information, a dialable port and no raw character that URLs may not hold. Then the accepted URL
// goes where a delivery would send it, an http.Transport dialling through netguard (no proxy, as the
// sender's), with names resolved by an injected resolver to the fuzzed address: a refused address
// never reaches the dial, which records the address and connects nowhere. Seeds:
// testdata/fuzz/FuzzValidateURL. Run: go test ./internal/webhook -run '^$' -fuzz '^FuzzValidateURL$'.
func FuzzValidateURL(f *testing.F) {
	for _, s := range []string{"https://crm.example.com/hooks", "https://crm.example.com:65535/h?q=%3Cx%3E", "http://localhost:3000/h",
		"https://127.0.0.1/", "https://[::1]:443/", "https://[fe80::1%25eth0]/", "https://user:pw@example.com/", "https://example.com:0/",
		"https://example.com/a b", "https://example.com/?q=%zz", "ftp://example.com/", "//example.com/", "https:///path",
		"https://１２７.０.０.１/", "https://127。0。0。1/", "https://ＬＯＣＡＬＨＯＳＴ/", "https://xn--nxasmq6b.example/", "https://[::ffff:10.0.0.1]/",
		"https://example.com\u202e/", "https://0x7f000001/", "https://2130706433/", "https://0177.0.0.1/"} {
		f.Add(s, false, []byte{10, 0, 0, 1})
	}
	f.Add("http://hooks.internal:8080/x", true, []byte{192, 168, 0, 10})
	f.Add("https://public.example/", false, netip.MustParseAddr("2606:4700:4700::1111").AsSlice())
	f.Fuzz(func(t *testing.T, raw string, allowHTTP bool, resolved []byte) {
		fields := errs.Fields{}
		u := webhook.ValidateURL(fields, raw, allowHTTP)
		if (u == nil) != (fields.Err() != nil) {
			t.Fatalf("ValidateURL(%q) = %v with problems %v: a URL comes back exactly when there is no problem", raw, u, fields)
		}
		if u == nil {
			if err, ok := fields.Err().(*errs.Error); !ok || err.Fields["url"] == "" || len(err.Fields) != 1 {
				t.Fatalf("ValidateURL(%q): want one problem, on url; got %#v", raw, fields.Err())
			}
			return
		}
		switch {
		case len(raw) > webhook.URLMaxLen, !utf8.ValidString(raw), strings.ContainsAny(raw, " \"<>\\^`{|}\x7f"),
			strings.ContainsFunc(raw, func(r rune) bool { return r < ' ' }):
			t.Fatalf("accepted %q, which no URL may be", raw)
		case u.Scheme != "https" && !(allowHTTP && u.Scheme == "http"):
			t.Fatalf("accepted %q with scheme %q", raw, u.Scheme)
		case u.User != nil, u.Hostname() == "":
			t.Fatalf("accepted %q with user %v, host %q", raw, u.User, u.Hostname())
		}

		var answer []netip.Addr
		if a, ok := netip.AddrFromSlice(resolved); ok {
			answer = []netip.Addr{a}
		}
		var dialled []string
		guard := &netguard.Dialer{
			AllowPrivate: allowHTTP, // as the service: --allow-private-targets lifts both
			Resolver: resolverFunc(func(context.Context, string, string) ([]netip.Addr, error) {
				return answer, nil
			}),
			Dial: func(_ context.Context, _, addr string) (net.Conn, error) {
				ap, err := netip.ParseAddrPort(addr)
				if err != nil {
					t.Fatalf("%q: dialled %q, not an ip:port", raw, addr)
				}
				if !allowHTTP && netguard.Refused(ap.Addr()) {
					t.Fatalf("%q: dialled %s, a refused address", raw, addr)
				}
				dialled = append(dialled, addr)
				return nil, errNotDialled
			},
		}
		tr := &http.Transport{Proxy: nil, DialContext: guard.DialContext, ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, raw, strings.NewReader("{}"))
		if err != nil {
			return // a URL the client cannot even build a request for is never sent
		}
		res, err := (&http.Client{Transport: tr}).Do(req)
		if res != nil {
			res.Body.Close()
			t.Fatalf("%q: got a response without connecting", raw)
		}
		if err == nil {
			t.Fatalf("%q: no error, yet nothing may connect", raw)
		}
	})
}

var errNotDialled = errors.New("test dial: not connecting")

// resolverFunc is a netguard.Resolver for tests.
type resolverFunc func(ctx context.Context, network, host string) ([]netip.Addr, error)

func (f resolverFunc) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	return f(ctx, network, host)
}
